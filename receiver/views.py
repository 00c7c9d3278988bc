"""The one view: the HTTP side of every vendor (access, size limit, decode, publish, ack).

It is a plain WSGI app that `create_app` mounts in front of Flask for `/push/...`; every other
URL goes on to Flask. Flask's per-request machinery (request and app contexts, URL matching,
hooks, its Response) cost ~120 us of a single push's ~450 us of CPU, measured in process;
this view builds one Werkzeug request, answers errors the same way Flask's handler does
(`plain_error`), and writes its ack with precomputed headers.
"""
from __future__ import annotations

import hmac
import ipaddress
import logging
from typing import Any, Callable, Iterable

from flask import Flask, current_app, request
from werkzeug.exceptions import (BadRequest, ClientDisconnected, Forbidden, HTTPException,
                                 InternalServerError, MethodNotAllowed, NotFound,
                                 RequestEntityTooLarge, ServiceUnavailable)
from werkzeug.wrappers import Request, Response
from werkzeug.wsgi import get_content_length

from . import events
from .settings import Settings, VendorSettings
from .spool import SpoolError
from .vendors import REGISTRY, Options, Push, Undecodable

log = logging.getLogger("receiver")

PREFIX = "/push/"
WSGIApp = Callable[[dict, Callable], Iterable[bytes]]


class PushRequest(Request):
    """A push as the view sees it: `view_args` names the vendor (and the secret, if sent),
    as a Flask route's would, for the archive and `public_path`."""

    view_args: dict[str, str]


class PushView:
    """`/push/<vendor>` and `/push/<vendor>/<secret>`, GET or POST, for every vendor."""

    def __init__(self, app: Flask, fallback: WSGIApp) -> None:
        self.app = app
        self.fallback = fallback  # Flask itself: every other URL
        self.settings: Settings = app.config["RECEIVER"]
        # The ack of each vendor, encoded once: (body, headers), as a Flask text response.
        self.acks = {slug: _ack(config.ack_body.encode())
                     for slug, config in self.settings.vendors.items()}

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if not environ.get("PATH_INFO", "").startswith(PREFIX):
            return self.fallback(environ, start_response)
        # Not stored in the environ (Werkzeug's default): that made each request a reference
        # cycle, environ <-> request, that held gunicorn's request objects and the body until
        # the garbage collector freed ~1,000 requests at a time, 10-30 ms with the worker's
        # threads stopped (p99 of single pushes 30-40 ms; 6-8 ms without the cycle).
        req = PushRequest(environ, populate_request=False)
        vendor, slash, token = req.path[len(PREFIX):].partition("/")
        req.view_args = {"vendor": vendor, **({"token": token} if slash else {})}
        archived: dict[str, Any] = {"received_at": events.now()}  # body, entries, outcome
        status = 500
        try:
            if not vendor or (slash and (not token or "/" in token)):
                raise NotFound()  # /push/, /push/x/, /push/x/y/z: no such route
            if req.method not in ("GET", "POST"):
                # HEAD too: a probe must not be taken for a push.
                raise MethodNotAllowed(["GET", "POST"])
            self.push(req, vendor, token if slash else None, archived)
            status = 200
            body, headers = self.acks[vendor]
            start_response("200 OK", list(headers))
            return [body]
        except HTTPException as error:
            status = error.code or 500
            response = plain_error(error, req, self.settings.max_body)
        except Exception:
            if self.app.testing or self.app.config.get("PROPAGATE_EXCEPTIONS"):
                raise
            log.exception("push to %s failed", public_path(req))
            response = plain_error(InternalServerError(), req, self.settings.max_body)
        finally:
            archive = self.app.extensions.get("receiver.archive")
            if archive is not None:
                # Every request that reaches the view, whatever its answer, is archived.
                archive.record(req, status, **archived)  # never raises
        return response(environ, start_response)

    def push(self, req: PushRequest, vendor: str, token: str | None,
             archived: dict[str, Any]) -> None:
        """Access, size limit, decode, publish; returns once durable, or raises the HTTP error
        that says why not."""
        settings = self.settings
        if vendor not in REGISTRY:
            raise NotFound(f"unknown vendor {vendor!r}")
        config = settings.vendors[vendor]
        if config.token or token is not None:
            # Constant-time comparison; a wrong or unexpected secret looks like no such URL.
            if not hmac.compare_digest((token or "").encode(), config.token.encode()):
                raise NotFound("no such push URL")
        if config.allowed_ips and not _allowed(req.remote_addr, config):
            raise Forbidden(f"source address {req.remote_addr} is not allowed for {vendor}")

        received_at = archived["received_at"]
        body = _body(req, settings.max_body)
        archived["body"] = body
        raw = Push(method=req.method, query=req.query_string, body=body,
                   content_type=req.environ.get("CONTENT_TYPE") or "")
        entries = _entries(vendor, raw, config, received_at, req)
        archived["entries"] = entries
        try:
            outcome = archived["outcome"] = self.app.extensions["receiver"].store(entries)
        except SpoolError as problem:
            log.error("push to %s refused: Redis and the spool both failed: %s", vendor, problem)
            raise ServiceUnavailable("storage unavailable, nothing was accepted; retry later")
        # A clean push is in gunicorn's access log and the archive already: its summary is
        # DEBUG. One with dead letters, duplicates or a spooled batch is worth an INFO line.
        clean = outcome == "0 duplicates" and all(kind != "deadletter" for kind, _, _ in entries)
        level = logging.DEBUG if clean else logging.INFO
        if log.isEnabledFor(level):
            kinds = [kind for kind, _, _ in entries]
            log.log(level, "push %s from %s: %d dlr, %d mo, %d dead letters, %s", vendor,
                    req.remote_addr, kinds.count("dlr"), kinds.count("mo"),
                    kinds.count("deadletter"), outcome)


def _body(req: Request, limit: int) -> bytes:
    """The whole request body, or the HTTP error that says why not: 413 past `limit` (one
    byte past it is read to tell: Werkzeug silently cuts a chunked body at its limit, and a
    cut batch must not be acked), 400 for a body shorter than its Content-Length (the client
    went away mid-body: half a record is not a record)."""
    length = get_content_length(req.environ)
    if length is not None and length > limit:
        raise RequestEntityTooLarge()
    stream = req.environ.get("wsgi.input")
    if req.environ.get("wsgi.input_terminated") and stream is not None:
        # The server ends the stream where the body ends (gunicorn does, chunked bodies
        # included): read it as is. get_data wraps it in a LimitedStream first: 13-17 us
        # against 1.3 for this (a single push's body, in process).
        body = stream.read(limit + 1)
    else:
        req.max_content_length = limit + 1
        try:
            body = req.get_data(cache=False)
        except ClientDisconnected:  # Werkzeug's own words name no cause
            raise BadRequest(f"body ended before its {length} bytes; nothing was accepted"
                             ) from None
    if len(body) > limit:
        raise RequestEntityTooLarge()
    if length is not None and len(body) < length:
        raise BadRequest(f"body ended after {len(body)} of its {length} bytes; "
                         "nothing was accepted")
    return body


def _ack(body: bytes) -> tuple[bytes, list[tuple[str, str]]]:
    return body, [("Content-Type", "text/plain; charset=utf-8"),
                  ("Content-Length", str(len(body)))]


def decode(vendor: str, raw: Push, config: VendorSettings, received_at: str
           ) -> tuple[list[dict[str, str]], list[tuple[str, str | None]]]:
    """A push through its adapter and the account check: (events, failures).

    A failure is (reason, bad record), the record None when the push as a whole fails. Pure:
    the view and `receiver replay` (today's adapters on archived pushes) share it.
    """
    if not (raw.body.strip() or raw.query.strip()):
        return [], [("empty push: no query and no body", None)]
    try:
        decoded = REGISTRY[vendor].decode(raw, Options(encoding=config.encoding, zone=config.zone))
    except Undecodable as problem:
        return [], [(f"push could not be decoded: {problem}", None)]
    if config.accounts and decoded.account not in config.accounts:
        return [], [(f"account {decoded.account!r} is not allowed for {vendor}", None)]
    out = []
    for record in decoded.records:
        record.setdefault("account", decoded.account)
        out.append(events.complete(record, vendor, received_at))
    failures: list[tuple[str, str | None]] = [(f"bad record: {reason}", record)
                                             for reason, record in decoded.bad]
    return out, failures


def _entries(vendor: str, raw: Push, config: VendorSettings, received_at: str,
             req: Request) -> list:
    """Decode a push into (kind, dedupe id, fields) stream entries, dead letters included
    (`req` gives them the source address and the path)."""
    found, failures = decode(vendor, raw, config, received_at)
    entries = [(event["kind"], event["id"], event) for event in found]
    if not failures:
        return entries
    remote_addr, path = req.remote_addr or "", public_path(req)
    letters = []
    for reason, record in failures:
        letter = {"vendor": vendor, "reason": reason, "received_at": received_at,
                  "remote_addr": remote_addr, "method": raw.method, "path": path,
                  "content_type": raw.content_type, "query": raw.query, "body": raw.body}
        if record is not None:
            letter["record"] = record
        letters.append(letter)
    # The letters of a push share its body: letter_ids hashes it once for all of them.
    entries += [("deadletter", letter_id, letter)
                for letter_id, letter in zip(events.letter_ids(letters), letters)]
    return entries


def public_path(req: Request) -> str:
    """The request path with any push secret masked (dead letters are read by every consumer)."""
    if (getattr(req, "view_args", None) or {}).get("token") is not None:
        return req.path.rsplit("/", 1)[0] + "/***"
    return req.path


def _allowed(address: str | None, config: VendorSettings) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped  # an IPv4 client as a dual-stack listener reports it
    return any(ip in network for network in config.allowed_ips)


def plain_error(error: HTTPException, req: Request | None = None,
                limit: int | None = None) -> Response:
    """Every error is one short text line naming the problem (the push view's, and Flask's
    handler for every other URL)."""
    if req is None:  # as Flask's error handler
        req, limit = request._get_current_object(), current_app.config.get("MAX_CONTENT_LENGTH")
    description = error.description or error.name
    if error.code == 405:
        description = f"method {req.method} not allowed; use GET or POST"
    elif error.code == 413:
        description = f"body over the limit of {limit} bytes"
    elif error.code == 404 and not req.path.startswith(PREFIX):
        description = "no such URL; push to /push/<vendor>"
    response = Response(f"{description}\n", error.code, mimetype="text/plain")
    if error.code == 405:
        response.headers["Allow"] = "GET, POST"
    return response
