"""拓鹏 Topen 云信 (yes.itissm.com), vendor docs 000 (v8.2) and 002.

Reports and replies are pushed as a UTF-8 form POST, one batch per request::

    POST /push/topen  Content-Type: application/x-www-form-urlencoded
    account=XXXX&GetReport=0278387837488834,13900000000,DELIVRD|0278387837488834,13900000001,2014-06-10 15:34:11,UNDELIVRD|

    account=XXXX&GetMo=13900000000|,|退订|,|2014-06-10 15:34:11|;|13900000001|,|好|,|2014-06-10 15:35:02|,|10690447302152|;|

The same 云信 platform serves Winnerlook (doc 001): `winnerlook.py` is this adapter with its
voice-code reports switched on.
"""
from __future__ import annotations

import re
from functools import partial

from .. import normalize, status
from .base import Adapter, Decoded, Options, Push, Undecodable

# Values carry `|`, `,` and, in replies, unescaped `&` typed by users: split the form only
# before a key this platform sends.
KEYS = ("account", "GetReport", "GetReport2", "GetMo", "GetMo2")
_SPLIT = re.compile(rb"&(?=\s*(?:" + b"|".join(k.encode() for k in KEYS) + rb")\s*=)", re.I)
_REPORT_KEYS = {"getreport", "getreport2"}
_MO_KEYS = {"getmo", "getmo2"}

# `|;|`, or `|;` then a newline (GetMo2); a `|` that opens another `|;` is not eaten.
_MO_RECORD_END = re.compile(r"\|\s*;\s*(?:\|(?!\s*;))?")
_MO_FIELD_SEP = re.compile(r"\s*\|\s*,\s*\|\s*")   # `|,|`
# Whether a payload has a `|,|` at all: what _MO_FIELD_SEP.search finds, but opening with a
# literal `|` lets the regex engine skip to each `|` (~20x faster on a 30 KB report batch).
_HAS_MO_FIELD_SEP = re.compile(r"\|\s*,\s*\|")
_INT = re.compile(r"\d+")


def decode(push: Push, options: Options, *, voice: bool = False) -> Decoded:
    """Decode one push (reports or replies) of the 云信 platform."""
    pairs = normalize.form(push.query, split=_SPLIT) + normalize.form(push.body, split=_SPLIT)
    fields = [(k.decode("latin-1").lower(), normalize.text(v, options.encoding)) for k, v in pairs]
    accounts = [v.strip() for k, v in fields if k == "account"]
    result = Decoded(account=accounts[0] if accounts else None)
    for extra in accounts[1:]:
        if extra != result.account:
            # A reply typed with `&account=`, or a second push glued on: keep it, dead-lettered.
            result.bad.append(("a second, different account field in the push", extra))
    payloads = [(k, v) for k, v in fields if k in _REPORT_KEYS | _MO_KEYS]
    if not payloads:
        raise Undecodable("no GetReport or GetMo field in the push")
    for key, value in payloads:
        # Replies are told by their `|,|` separators, whatever the key says.
        if key in _MO_KEYS or _HAS_MO_FIELD_SEP.search(value):
            _replies(value, options, result)
        else:
            _reports(value, options, result, voice)
    return result


def _reports(payload: str, options: Options, out: Decoded, voice: bool) -> None:
    records, bad = out.records, out.bad
    for raw in payload.split("|"):
        record = raw.strip()
        if record.startswith(";"):
            record = record.lstrip(";").strip()
        if not record:
            continue
        # The only whitespace str.isprintable() lets through is an ASCII space: with none next
        # to a comma (nor at the ends, stripped above), no field has any to strip.
        if record.isprintable() and ", " not in record and " ," not in record:
            parts = record.split(",")
        else:
            parts = [p.strip() for p in record.split(",")]
        try:
            records.append(_report(parts, record, options, voice))
        except ValueError as problem:
            bad.append((str(problem), record))


def _report(parts: list[str], raw: str, options: Options, voice: bool) -> dict:
    if voice and len(parts) == 5 and all(_INT.fullmatch(p) for p in parts[2:]):
        batch, number, call, ring, hangup = parts
        if hangup not in status.HANGUP:
            raise ValueError(f"unknown voice hangup code {hangup!r}")
        return {"kind": "dlr", "batch_id": batch, "mobile": _mobile(number),
                "status": status.classify_voice(int(call)), "vendor_status": hangup, "raw": raw,
                "call_seconds": str(int(call)), "ring_seconds": str(int(ring)),
                "hangup": status.HANGUP[hangup]}
    if len(parts) not in (3, 4):
        raise ValueError(f"a report has 3 or 4 fields, this one has {len(parts)}")
    batch, *middle, code = parts
    if not code:
        raise ValueError("report without a status")
    # `batch,mobile,time,status`, but doc 000 itself shows `batch,,mobile,status`: place the
    # middle fields by their shape, not their position.
    number = when = ""
    for part in middle:
        if not part:
            continue
        if normalize.looks_like_time(part):
            when = part  # two times leave no mobile: refused below
        elif number:
            raise ValueError("report without exactly one mobile")
        else:
            number = part
    if not number:
        raise ValueError("report without exactly one mobile")
    record = {"kind": "dlr", "batch_id": batch, "mobile": _mobile(number),
              "status": status.classify(code), "vendor_status": code, "raw": raw}
    reported = normalize.local_time(when, options.zone) if when else None
    if reported:  # absent rather than None: events.complete copies a record with no empties
        record["reported_at"] = reported
    return record


def _mobile(number: str) -> str:
    mobile = normalize.mobile(number)
    if not mobile:
        raise ValueError(f"no usable mobile in {number!r}")
    return mobile


def _replies(payload: str, options: Options, out: Decoded) -> None:
    for raw in _MO_RECORD_END.split(payload):
        record = raw.strip()
        if not record or record == "|":
            continue
        parts = [p.strip() for p in _MO_FIELD_SEP.split(record)]
        # The last record may end with a lone `|` (`…|time|`, or `…|time|,||` when the last
        # field is empty): a terminator, not part of the last field nor of the record.
        if parts[-1].endswith("|"):
            parts[-1] = parts[-1][:-1].strip()
            record = record[:-1].rstrip()
        parts[0] = parts[0].lstrip("|").strip()
        if len(parts) not in (3, 4):
            out.bad.append((f"a reply has 3 or 4 fields, this one has {len(parts)}", record))
            continue
        number, text, sent, *service = parts
        mobile = normalize.mobile(number)
        if not mobile:
            out.bad.append((f"no usable mobile in {number!r}", record))
            continue
        reply = {"kind": "mo", "mobile": mobile, "text": text}
        sent_at = normalize.local_time(sent, options.zone)
        if sent_at:  # absent rather than None, as in _report
            reply["sent_at"] = sent_at
        if service and service[0]:
            reply["service_number"] = service[0]
        reply["raw"] = record
        out.records.append(reply)


def adapter(slug: str, *, voice: bool = False, doc: str = "000, 002") -> Adapter:
    """An adapter for a platform speaking this format (`voice` adds doc 001's voice reports)."""
    return Adapter(slug=slug, decode=partial(decode, voice=voice), encoding="utf-8", doc=doc)


ADAPTER = adapter("topen")
