"""The one view: the HTTP side of every vendor (access, size limit, decode, publish, ack)."""
from __future__ import annotations

import hmac
import ipaddress
import logging

import redis
from flask import Blueprint, Response, abort, current_app, request
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
    body = request.get_data(cache=False)  # raises 413 past MAX_CONTENT_LENGTH
    raw = Push(method=request.method, query=request.query_string, body=body,
               content_type=request.content_type or "")
    entries = _entries(vendor, raw, config, received_at)
    durable = current_app.extensions["receiver"]
    try:
        outcome = durable.store(entries)
    except SpoolError as problem:
        log.error("push to %s refused: Redis and the spool both failed: %s", vendor, problem)
        abort(503, "storage unavailable, nothing was accepted; retry later")
    kinds = [kind for kind, _, _ in entries]
    log.info("push %s from %s: %d dlr, %d mo, %d dead letters, %s", vendor,
             request.remote_addr, kinds.count("dlr"), kinds.count("mo"),
             kinds.count("deadletter"), outcome)
    return Response(config.ack_body, 200, mimetype="text/plain")


def _entries(vendor: str, raw: Push, config: VendorSettings, received_at: str) -> list:
    """Decode a push into (kind, dedupe id, fields) stream entries, dead letters included."""
    def dead(reason: str, record: str | None = None) -> tuple[str, str, dict]:
        letter = {"vendor": vendor, "reason": reason, "received_at": received_at,
                  "remote_addr": request.remote_addr or "", "method": raw.method,
                  "path": request.path, "content_type": raw.content_type,
                  "query": raw.query, "body": raw.body}
        if record is not None:
            letter["record"] = record
        return "deadletter", events.letter_id(letter), letter

    try:
        decoded = REGISTRY[vendor].decode(raw, Options(encoding=config.encoding, zone=config.zone))
    except Undecodable as problem:
        return [dead(f"push could not be decoded: {problem}")]
    if config.accounts and decoded.account not in config.accounts:
        return [dead(f"account {decoded.account!r} is not allowed for {vendor}")]
    entries = []
    for record in decoded.records:
        record.setdefault("account", decoded.account)
        event = events.complete(record, vendor, received_at)
        entries.append((record["kind"], event["id"], event))
    entries += [dead(f"bad record: {reason}", record) for reason, record in decoded.bad]
    if not entries and not (raw.body.strip() or raw.query.strip()):
        entries.append(dead("empty push: no query and no body"))
    return entries


def _allowed(address: str | None, config: VendorSettings) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
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
