"""The least a receiver that writes to Redis can do per push: a bare WSGI app that reads the
body and makes one XADD of three fields on a raw blocking socket of its thread (hiredis packs
and parses), then answers `ok`. Between hello and it lies the cost of one Redis round trip;
between it and the receiver, everything the receiver does. `BENCH_REDIS_URL` names the Redis."""
from __future__ import annotations

import os
import socket
import threading
from typing import Callable, Iterable
from urllib.parse import urlsplit

import hiredis

_URL = urlsplit(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
_BODY = b"ok"
_HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(_BODY)))]
_local = threading.local()


def _line() -> tuple[socket.socket, hiredis.Reader]:
    line = getattr(_local, "line", None)
    if line is None:
        sock = socket.create_connection((_URL.hostname, _URL.port or 6379))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        line = _local.line = (sock, hiredis.Reader())
    return line


def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
    """`/healthz` answers `ok`; any other URL XADDs one entry to `sms:dlr`, then answers."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    if environ.get("PATH_INFO") != "/healthz":
        sock, reader = _line()
        sock.sendall(hiredis.pack_command(("XADD", "sms:dlr", "*", "body", body[:64],
                                           "mobile", "", "status", "")))
        reply = reader.gets()
        while reply is False:
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("Redis closed the connection")
            reader.feed(data)
            reply = reader.gets()
        if isinstance(reply, hiredis.ReplyError):
            raise reply
    start_response("200 OK", _HEADERS)
    return [_BODY]
