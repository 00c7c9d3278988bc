"""The one view: the HTTP side of every vendor (access, size limit, decode, publish, ack)."""
from __future__ import annotations

import hmac
import ipaddress
import logging

from flask import Blueprint, Response, abort, current_app, g, request
from werkzeug.exceptions import HTTPException

from . import events
from .settings import Settings, VendorSettings
from .spool import SpoolError
from .vendors import REGISTRY, Options, Push, Undecodable

log = logging.getLogger("receiver")
bp = Blueprint("push", __name__)


@bp.route("/push/<vendor>", methods=["GET", "POST"])
@bp.route("/push/<vendor>/<token>", methods=["GET", "POST"])
def push(vendor: str, token: str | None = None) -> Response:
    settings: Settings = current_app.config["RECEIVER"]
    if request.method == "HEAD":
        # Flask adds HEAD to every GET route; a probe must not be taken for a push.
        abort(405)
    adapter = REGISTRY.get(vendor)
    if adapter is None:
        abort(404, f"unknown vendor {vendor!r}")
    config = settings.vendors[vendor]
    if config.token or token is not None:
        # Constant-time comparison; a wrong or unexpected secret looks like no such URL.
        if not hmac.compare_digest((token or "").encode(), config.token.encode()):
            abort(404, "no such push URL")
    if config.allowed_ips and not _allowed(request.remote_addr, config):
        abort(403, f"source address {request.remote_addr} is not allowed for {vendor}")

    received_at = events.now()
    # Read one byte past the limit: Werkzeug silently cuts a chunked body at the limit, and a
    # cut batch must not be acked. A body shorter than its Content-Length (the client went away
    # mid-body) is not decoded either: half a record is not a record.
    request.max_content_length = settings.max_body + 1
    body = request.get_data(cache=False)
    if len(body) > settings.max_body:
        abort(413)
    if request.content_length is not None and len(body) < request.content_length:
        abort(400, f"body ended after {len(body)} of its {request.content_length} bytes; "
                   "nothing was accepted")
    g.archive.update(received_at=received_at, body=body)
    raw = Push(method=request.method, query=request.query_string, body=body,
               content_type=request.content_type or "")
    entries = _entries(vendor, raw, config, received_at)
    g.archive["entries"] = entries
    durable = current_app.extensions["receiver"]
    try:
        outcome = durable.store(entries)
        g.archive["outcome"] = outcome
    except SpoolError as problem:
        log.error("push to %s refused: Redis and the spool both failed: %s", vendor, problem)
        abort(503, "storage unavailable, nothing was accepted; retry later")
    # A clean push is in gunicorn's access log and the archive already: its summary is DEBUG.
    # One with dead letters, duplicates or a spooled batch is worth an INFO line.
    clean = outcome == "0 duplicates" and all(kind != "deadletter" for kind, _, _ in entries)
    level = logging.DEBUG if clean else logging.INFO
    if log.isEnabledFor(level):
        kinds = [kind for kind, _, _ in entries]
        log.log(level, "push %s from %s: %d dlr, %d mo, %d dead letters, %s", vendor,
                request.remote_addr, kinds.count("dlr"), kinds.count("mo"),
                kinds.count("deadletter"), outcome)
    return Response(config.ack_body, 200, mimetype="text/plain")


@bp.before_request
def _archive_start() -> None:
    g.archive = {"received_at": events.now()}  # push() adds the body, entries and outcome


@bp.after_request
def _archive(response: Response) -> Response:
    """Every request that reached push(), whatever its answer, goes to the audit archive."""
    archive = current_app.extensions.get("receiver.archive")
    if archive is not None and "archive" in g:
        archive.record(request, response.status_code, **g.archive)  # never raises
    return response


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


def _entries(vendor: str, raw: Push, config: VendorSettings, received_at: str) -> list:
    """Decode a push into (kind, dedupe id, fields) stream entries, dead letters included."""
    found, failures = decode(vendor, raw, config, received_at)
    entries = [(event["kind"], event["id"], event) for event in found]
    remote_addr, path = request.remote_addr or "", public_path()
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


def public_path() -> str:
    """The request path with any push secret masked (dead letters are read by every consumer)."""
    if (request.view_args or {}).get("token") is not None:
        return request.path.rsplit("/", 1)[0] + "/***"
    return request.path


def _allowed(address: str | None, config: VendorSettings) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped  # an IPv4 client as a dual-stack listener reports it
    return any(ip in network for network in config.allowed_ips)


def plain_error(error: HTTPException) -> Response:
    """Every error is one short text line naming the problem."""
    description = error.description or error.name
    if error.code == 405:
        description = f"method {request.method} not allowed; use GET or POST"
    elif error.code == 413:
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        description = f"body over the limit of {limit} bytes"
    elif error.code == 404 and not request.path.startswith("/push/"):
        description = "no such URL; push to /push/<vendor>"
    response = Response(f"{description}\n", error.code, mimetype="text/plain")
    if error.code == 405:
        response.headers["Allow"] = "GET, POST"
    return response
