"""End-to-end helpers: run gunicorn (or `receiver serve`) as a subprocess, talk raw HTTP to it.

Nothing here sleeps as an assertion: every wait polls with a deadline and fails loudly, showing
the server's output, when the deadline passes.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping, TypeVar

import redis

from receiver.redis_server import free_port, stop_process  # noqa: F401 (free_port: for the tests)

ROOT = Path(__file__).resolve().parent.parent  # the repository root: wsgi.py lives there
T = TypeVar("T")


def wait_for(check: Callable[[], T], timeout: float, what: str | Callable[[], str],
             interval: float = 0.05) -> T:
    """Poll `check` until it returns something truthy; AssertionError after `timeout` s
    (`what` may be a callable, e.g. to show a server's output as it is at the deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            text = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout} s waiting for {text[-4000:]}")
        time.sleep(interval)


def gunicorn_command(port: int, workers: int = 1, *, bind: str | None = None,
                     script: bool = False, config: bool = True) -> list[str]:
    """gunicorn on wsgi:app with the receiver's config (or, without `config`, gunicorn's own
    defaults), bound to 127.0.0.1:<port> (or `bind`), run as `python -m gunicorn` or, with
    `script`, as the `gunicorn` script deploy/ uses."""
    launcher = ([str(Path(sys.executable).with_name("gunicorn"))] if script
                else [sys.executable, "-m", "gunicorn"])
    return [*launcher, *(["-c", "python:receiver.gunicorn_conf"] if config else []),
            "--bind", bind or f"127.0.0.1:{port}", "--workers", str(workers), "wsgi:app"]


def serve_command(*args: str) -> list[str]:
    """The installed `receiver` console script (next to this Python), with arguments."""
    script = Path(sys.executable).with_name("receiver")
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-c", "from receiver.cli import main; main()", *args]


def clean_env(**env: str | None) -> dict[str, str]:
    """os.environ without any RECEIVER_* variable, plus `env` (a None value removes a name)."""
    out = {k: v for k, v in os.environ.items() if not k.startswith("RECEIVER_")}
    for name, value in env.items():
        if value is None:
            out.pop(name, None)
        else:
            out[name] = value
    return out


class Process:
    """A server subprocess whose stdout and stderr go to a file (no pipe can fill and block)."""

    def __init__(self, command: list[str], env: Mapping[str, str], cwd: Path = ROOT) -> None:
        self.command = command
        self.log = tempfile.NamedTemporaryFile(prefix="e2e-", suffix=".log", delete=False)
        self.scratch: list[str] = []  # directories removed on exit
        self.process = subprocess.Popen(command, env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL,
                                        stdout=self.log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        """Everything the process printed so far."""
        return Path(self.log.name).read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait(self, timeout: float) -> int:
        """The exit code, waiting at most `timeout` s (AssertionError, with the output, if not)."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.command[:3]} still running after {timeout} s:\n"
                                 f"{self.output()[-3000:]}") from None

    def signal(self, signum: int) -> None:
        if self.alive():
            self.process.send_signal(signum)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL if it outlives `timeout`; returns the exit code."""
        code = stop_process(self.process, timeout)
        self.log.close()
        return code

    def __enter__(self) -> "Process":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        try:
            os.unlink(self.log.name)
        except OSError:
            pass
        for directory in self.scratch:
            shutil.rmtree(directory, ignore_errors=True)


def start_gunicorn(port: int, redis_url: str, *, workers: int = 1, timeout: float = 30.0,
                   config: bool = True, **env: str) -> Process:
    """gunicorn serving the receiver on `port`, answering /healthz, against `redis_url`
    (with the receiver's config unless `config` is False: see `gunicorn_command`).

    Unless `env` says otherwise, the receiver's data (spool) and gunicorn's control socket go
    to a fresh temporary directory, not the repository or $HOME (shared with other servers).
    """
    scratch = tempfile.mkdtemp(prefix="e2e-gunicorn-")
    env = {"RECEIVER_DATA_DIR": scratch, "XDG_RUNTIME_DIR": scratch, **env}
    server = Process(gunicorn_command(port, workers, config=config),
                     clean_env(RECEIVER_REDIS_URL=redis_url, **env))
    server.scratch.append(scratch)
    try:
        wait_ready(server, port, timeout)
        wait_for(lambda: len(children(server.pid)) == workers, timeout, f"{workers} workers")
    except BaseException:
        server.stop()
        raise
    return server


def wait_ready(server: Process, port: int, timeout: float = 30.0) -> None:
    """Poll GET /healthz until it answers 200; fail early (with the output) if the server dies."""
    def ready() -> bool:
        if not server.alive():
            raise AssertionError(f"server exited with {server.process.returncode}:\n"
                                 f"{server.output()[-3000:]}")
        try:
            return request(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", timeout=2).status == 200
        except OSError:
            return False
    wait_for(ready, timeout, f"the server on port {port} to answer /healthz", interval=0.1)


def children(pid: int) -> list[int]:
    """Pids of the live children of `pid` (the workers of a gunicorn master)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(p) for p in task.read_text().split()]
        except OSError:
            continue
    return [p for p in found if _running(p)]


def _running(pid: int) -> bool:
    """True unless `pid` is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def gone(pid: int) -> bool:
    """The process `pid` no longer runs (exited, possibly not yet reaped)."""
    return not _running(pid)


def listen_queues(port: int) -> list[int]:
    """Per socket listening on `port`, the connections waiting in its accept queue (the rx_queue
    of a LISTEN row in /proc/net/tcp): one socket per worker, as the receiver uses SO_REUSEPORT."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local, state, queues = fields[1], fields[3], fields[4]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                found.append(int(queues.split(":")[1], 16))
    return found


def accept_queue(port: int) -> int | None:
    """Connections waiting to be accepted on `port`, over all its listening sockets, or None
    when nothing listens there."""
    queues = listen_queues(port)
    return sum(queues) if queues else None


@dataclass
class Response:
    """One parsed HTTP response."""

    status: int
    reason: str
    headers: dict[str, str] = field(default_factory=dict)  # names lower-cased
    body: bytes = b""

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


class Connection:
    """A raw HTTP/1.1 connection: send exact bytes, read one response at a time."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buffer += chunk
        return bool(chunk)

    def read_response(self) -> Response:
        """Read one response (status line, headers, Content-Length or chunked or to-EOF body)."""
        while b"\r\n\r\n" not in self.buffer:
            if not self._fill():
                raise ConnectionError(f"connection closed before a response: {self.buffer!r}")
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        _version, status, reason = (status_line.split(" ", 2) + [""])[:3]
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        response = Response(int(status), reason, headers)
        if 100 <= response.status < 200 or response.status in (204, 304):
            return response
        if "chunked" in headers.get("transfer-encoding", "").lower():
            response.body = self._chunked()
        elif "content-length" in headers:
            length = int(headers["content-length"])
            while len(self.buffer) < length:
                if not self._fill():
                    raise ConnectionError("connection closed inside a response body")
            response.body, self.buffer = self.buffer[:length], self.buffer[length:]
        else:
            while self._fill():
                pass
            response.body, self.buffer = self.buffer, b""
        return response

    def _chunked(self) -> bytes:
        body = b""
        while True:
            while b"\r\n" not in self.buffer:
                if not self._fill():
                    raise ConnectionError("connection closed inside a chunked body")
            size_line, self.buffer = self.buffer.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0], 16)
            while len(self.buffer) < size + 2:
                if not self._fill():
                    raise ConnectionError("connection closed inside a chunk")
            body += self.buffer[:size]
            self.buffer = self.buffer[size + 2:]
            if size == 0:
                return body

    def closed_by_peer(self, timeout: float = 5.0) -> bool:
        """True when the server has closed its side (EOF or reset) within `timeout` s."""
        self.sock.settimeout(timeout)
        try:
            while self._fill():
                pass
            return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def request(port: int, raw: bytes, timeout: float = 10.0) -> Response:
    """Send one raw request on a new connection and read its response."""
    with Connection(port, timeout) as conn:
        conn.send(raw)
        return conn.read_response()


def http_request(method: str, target: bytes, body: bytes = b"", *,
                 content_type: str | None = None, headers: Iterable[tuple[str, str]] = (),
                 close: bool = True) -> bytes:
    """The bytes of an HTTP/1.1 request, the target (path and query) sent exactly as given."""
    lines = [method.encode() + b" " + target + b" HTTP/1.1", b"Host: receiver.example"]
    if content_type:
        lines.append(b"Content-Type: " + content_type.encode())
    if body or method == "POST":
        lines.append(b"Content-Length: " + str(len(body)).encode())
    lines += [f"{k}: {v}".encode("latin-1") for k, v in headers]
    lines.append(b"Connection: close" if close else b"Connection: keep-alive")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def embedded_redis_url(serve: Process, timeout: float = 30.0) -> str:
    """The URL `receiver serve` printed for its embedded Redis."""
    pattern = re.compile(r"embedded Redis \(.*?\) at (redis://127\.0\.0\.1:\d+/0)")

    def found() -> str | None:
        match = pattern.search(serve.output())
        if match is None and not serve.alive():
            raise AssertionError(f"receiver serve exited with {serve.process.returncode}:\n"
                                 f"{serve.output()[-3000:]}")
        return match.group(1) if match else None
    return wait_for(found, timeout, "receiver serve to report its embedded Redis")


def stream(client: redis.Redis, name: str) -> list[dict[str, bytes]]:
    """A stream's entries, field names decoded, values as raw bytes."""
    return [{k.decode(): v for k, v in fields.items()} for _id, fields in client.xrange(name)]


def kill(pid: int, signum: int = signal.SIGKILL) -> None:
    """Signal one process by its pid."""
    os.kill(pid, signum)
