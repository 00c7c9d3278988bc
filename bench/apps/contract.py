"""The naive handler writing what the contract asks for, and still checking nothing: Flask,
`request.form['GetReport']`, split on `|` and `,`, per record an XADD of the receiver's fields
(id, kind, vendor, account, batch_id, mobile, status, vendor_status, received_at, raw, and
reported_at when the record has a time), and per push the receiver's kind of dedupe claim
(`SADD` of the ids into one set, with an expiry), all pipelined in one round trip.

Not a receiver: no Lua, so a duplicate is XADDed anyway and a worker dying between the two
commands can lose a record; no validation, no time zones, no dead letters. It measures what
the target's naive handler would cost if it wrote the entries the contract asks for: its
Redis CPU per record is what those entries cost Redis natively pipelined, without a script.
`BENCH_REDIS_URL` names the Redis.
"""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone

from flask import request

from .naive import app, client  # the naive handler's Flask app, Redis client and /healthz

_TTL_MS = 48 * 3600 * 1000
_SEEN = "sms:seen:contract"
_DELIVERED = {"DELIVRD", "0", "10"}


def push() -> tuple[str, int]:
    received_at = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    account = request.form.get("account", "")
    pipe = client.pipeline(transaction=False)
    ids = []
    for record in request.form["GetReport"].split("|"):
        if not record:
            continue
        parts = record.split(",")
        event_id = hashlib.blake2b(record.encode(), digest_size=16).hexdigest()
        fields = {"id": event_id, "kind": "dlr", "vendor": "topen", "account": account,
                  "batch_id": parts[0], "mobile": "+86" + (parts[1] if len(parts) > 1 else ""),
                  "status": "delivered" if parts[-1] in _DELIVERED else "undelivered",
                  "vendor_status": parts[-1], "received_at": received_at, "raw": record}
        if len(parts) == 4:
            fields["reported_at"] = parts[2]
        ids.append(event_id)
        pipe.xadd("sms:dlr", fields)
    if ids:
        pipe.sadd(_SEEN, *ids)
        pipe.pexpire(_SEEN, _TTL_MS)
    pipe.execute()
    return "ok", 200


app.view_functions["push"] = push  # the naive handler's route, POST /push/topen, this body
