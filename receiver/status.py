"""Map carrier and vendor status codes to the canonical status (../shared/status-codes.md).

The mapping is data: the tables below are the rules of status-codes.md, in order; `classify`
walks them and never raises, so an unseen code can never fail a push.
"""
from __future__ import annotations

import re
from .normalize import short_cache

DELIVERED = "delivered"
UNDELIVERED = "undelivered"
EXPIRED = "expired"
REJECTED = "rejected"
BLACKLISTED = "blacklisted"
FAILED = "failed"
UNKNOWN = "unknown"

STATUSES = (DELIVERED, UNDELIVERED, EXPIRED, REJECTED, BLACKLISTED, FAILED, UNKNOWN)
FAILURES = frozenset({UNDELIVERED, EXPIRED, REJECTED, BLACKLISTED, FAILED})


def _span(prefix: str, first: int, last: int) -> set[str]:
    return {f"{prefix}:{n:04d}" for n in range(first, last + 1)}


# Rules 2-7 and 9-10 of status-codes.md: exact codes first (rule order), then families.
EXACT: list[tuple[str, set[str]]] = [
    (DELIVERED, {"DELIVRD", "ACCEPTD", "RECEIVD"}),
    (BLACKLISTED, {"BLACK", "MBBLACK", "DBBLACK", "BWLIST", "HIGRISK", "TUIDING", "DB:0141",
                   "ID:0141", "MB:1076", "MB:1077", "ID:0069", "ID:0096", "ID:0097", "MX:0011",
                   "MX:0012"} | _span("DB", 144, 146)),
    (EXPIRED, {"EXPIRED", "MI:0000"}),
    (REJECTED, {"REJECTD", "REJECT", "KEYWORD", "SIGFAIL", "NOTITLE", "ID:0013", "ID:0076",
                "MK:0115", "DB:0107", "DB:0115", "DB:0116", "DB:0142", "DB:0143", "ID:0142",
                "ID:0143"}),
    (UNDELIVERED, {"UNDELIV", "UNDELIVRD", "MB:1042"} | _span("DB", 100, 103)
     | _span("ID", 100, 102)),
    (FAILED, {"DELETED", "NOROUTE", "NOROUTER", "BEYONDN", "MH:0007", "NP:1243"}),
    (UNKNOWN, {"UNKNOWN", "ENROUTE", "TIMEOUT"}),
]
# `XX:` code families (rules 7-9), consulted after the exact codes.
FAMILIES: dict[str, str] = {
    **dict.fromkeys(("MK", "MI", "MN", "CB", "LT"), UNDELIVERED),
    **dict.fromkeys(("MA", "MB", "IA", "IB", "DA", "CA", "DB", "ID"), FAILED),
    **dict.fromkeys(("MC", "IC"), UNKNOWN),
}
_EXACT = {code: status for status, codes in EXACT for code in codes}
_FAMILY = re.compile(r"^([A-Z]{2}):\d+$")
_ERROR_N = re.compile(r"^ERROR:\s*-?\d+$")


@short_cache(maxsize=4096)
def classify(code: str | None) -> str:
    """Canonical status of one vendor/carrier code (rules 2-10)."""
    word = (code or "").strip().upper()
    if word in _EXACT:
        return _EXACT[word]
    family = _FAMILY.match(word)
    if family and family.group(1) in FAMILIES:
        return FAMILIES[family.group(1)]
    if _ERROR_N.match(word):
        return FAILED
    return UNKNOWN


def classify_returnsms(status: str | None, errorcode: str | None) -> str:
    """Rule 1: returnsms `status` decides delivered-or-not; `errorcode` only refines a failure."""
    status = (status or "").strip()
    if status == "10":
        return DELIVERED
    if status == "20":
        refined = classify(errorcode)
        return refined if refined in FAILURES else FAILED
    # No (or an unseen) status: the errorcode is all there is to go on.
    return classify(errorcode) if (errorcode or "").strip() else UNKNOWN


# Vendor doc 001: hangup codes of voice-code reports.
HANGUP = {"0": "unknown", "1": "no_answer", "2": "timeout", "3": "completed", "4": "callee_hung_up"}


def classify_voice(call_seconds: int) -> str:
    """Voice-code reports: answered (call time > 0) is delivered, anything else undelivered."""
    return DELIVERED if call_seconds > 0 else UNDELIVERED
