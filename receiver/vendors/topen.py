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
    for raw in payload.split("|"):
        record = raw.strip().lstrip(";").strip()
        if not record:
            continue
        parts = [p.strip() for p in record.split(",")]
        try:
            out.records.append(_report(parts, record, options, voice))
        except ValueError as problem:
            out.bad.append((str(problem), record))


def _report(parts: list[str], raw: str, options: Options, voice: bool) -> dict:
    if voice and len(parts) == 5 and all(_INT.fullmatch(p) for p in parts[2:]):
        batch, number, call, ring, hangup = parts
        if hangup not in status.HANGUP:
            raise ValueError(f"unknown voice hangup code {hangup!r}")
        return _dlr(batch, number, raw, vendor_status=hangup,
                    state=status.classify_voice(int(call)), call_seconds=str(int(call)),
                    ring_seconds=str(int(ring)), hangup=status.HANGUP[hangup])
    if len(parts) not in (3, 4):
        raise ValueError(f"a report has 3 or 4 fields, this one has {len(parts)}")
    batch, *middle, code = parts
    if not code:
        raise ValueError("report without a status")
    # `batch,mobile,time,status`, but doc 000 itself shows `batch,,mobile,status`: place the
    # middle fields by their shape, not their position.
    times: list[str] = []
    numbers: list[str] = []
    for part in middle:
        if part:
            (times if normalize.looks_like_time(part) else numbers).append(part)
    if len(numbers) != 1:
        raise ValueError("report without exactly one mobile")
    reported = normalize.local_time(times[0], options.zone) if times else None
    return _dlr(batch, numbers[0], raw, vendor_status=code, state=status.classify(code),
                reported_at=reported)


def _dlr(batch: str, number: str, raw: str, *, vendor_status: str, state: str, **extra) -> dict:
    mobile = normalize.mobile(number)
    if not mobile:
        raise ValueError(f"no usable mobile in {number!r}")
    return {"kind": "dlr", "batch_id": batch, "mobile": mobile, "status": state,
            "vendor_status": vendor_status, "raw": raw, **extra}


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
        out.records.append({"kind": "mo", "mobile": mobile, "text": text,
                            "sent_at": normalize.local_time(sent, options.zone),
                            "service_number": (service[0] or None) if service else None,
                            "raw": record})


def adapter(slug: str, *, voice: bool = False, doc: str = "000, 002") -> Adapter:
    """An adapter for a platform speaking this format (`voice` adds doc 001's voice reports)."""
    return Adapter(slug=slug, decode=partial(decode, voice=voice), encoding="utf-8", doc=doc)


ADAPTER = adapter("topen")
