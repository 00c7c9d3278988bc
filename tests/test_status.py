"""The status map against /work/shared/status-codes.md: every rule, every listed code, rule order."""
from __future__ import annotations

from itertools import combinations

import pytest

from receiver import status
from receiver.status import (BLACKLISTED, DELIVERED, EXPIRED, FAILED, REJECTED, UNDELIVERED,
                             UNKNOWN, classify, classify_returnsms, classify_voice)


def _span(prefix: str, first: int, last: int) -> list[str]:
    return [f"{prefix}:{n:04d}" for n in range(first, last + 1)]


# (rule of status-codes.md, codes, expected status); every code listed in the document.
RULES = [
    ("2 delivered words", ["DELIVRD", "ACCEPTD", "RECEIVD"], DELIVERED),
    ("3 blacklists", ["BLACK", "MBBLACK", "DBBLACK", "BWLIST", "HIGRISK", "TUIDING", "DB:0141",
                      "ID:0141", "DB:0144", "DB:0145", "DB:0146", "MB:1076", "MB:1077", "ID:0069",
                      "ID:0096", "ID:0097", "MX:0011", "MX:0012"], BLACKLISTED),
    ("4 expiry", ["EXPIRED", "MI:0000"], EXPIRED),
    ("5 rejections", ["REJECTD", "REJECT", "KEYWORD", "SIGFAIL", "NOTITLE", "ID:0013", "ID:0076",
                      "MK:0115", "DB:0107", "DB:0115", "DB:0116", "DB:0142", "DB:0143", "ID:0142",
                      "ID:0143"], REJECTED),
    ("6 undeliverable words", ["UNDELIV", "UNDELIVRD"], UNDELIVERED),
    ("7 handset families", ["MK:0001", "MK:0005", "MK:0008", "MK:0009", "MK:0010", "MK:0011",
                            "MK:0023", "MK:0024", "MK:9999", "MI:0024", "MI:0001", "MN:0001",
                            "CB:0001", "LT:0012", *_span("DB", 100, 103), *_span("ID", 100, 102),
                            "MB:1042"], UNDELIVERED),
    ("8 transport families and words", ["MA:0001", "MB:1078", "MB:0001", "IA:0001", "IB:0001",
                                        "DA:0001", "CA:0001", "DB:0001", "ID:0001", "DELETED",
                                        "NOROUTE", "NOROUTER", "BEYONDN", "MH:0007", "NP:1243",
                                        "Error:1", "Error:-1", "ERROR:23", "Error: 5"], FAILED),
    ("9 no report from the SMSC", ["MC:0001", "MC:0151", "IC:0151", "IC:0001"], UNKNOWN),
    ("10 not final, unseen", ["UNKNOWN", "ENROUTE", "TIMEOUT", "", "ZZ:0001", "MH:0008",
                              "NP:1244", "MX:0013", "FOOBAR", "2", "-1", "MK:", "Error:",
                              "Error:x", "DELIVRD2"], UNKNOWN),
    # Range edges: outside a listed range the family rule applies.
    ("range edges", ["DB:0099", "DB:0104", "DB:0140", "DB:0147", "ID:0099", "ID:0103",
                     "MB:1041", "MB:1043", "MB:1075", "MB:1079"], FAILED),
]
TABLE = [pytest.param(code, expected, id=f"{rule}: {code!r}")
         for rule, codes, expected in RULES for code in codes]


@pytest.mark.parametrize("code, expected", TABLE)
def test_classify(code: str, expected: str) -> None:
    assert classify(code) == expected


@pytest.mark.parametrize("code, expected", [
    ("MI:0000", EXPIRED),       # rule 4 before rule 7, though MI: is a handset family
    ("MK:0115", REJECTED),      # rule 5 before rule 7
    ("DB:0142", REJECTED),      # a send cap, not a blacklist, and before the DB: family (rule 8)
    ("DB:0143", REJECTED),
    ("DB:0141", BLACKLISTED),   # rule 3 before the DB: family
    ("ID:0141", BLACKLISTED),
    ("MB:1077", BLACKLISTED),   # rule 3 before the MB: family
    ("MB:1042", UNDELIVERED),   # rule 7 before the MB: family of rule 8
    ("DB:0101", UNDELIVERED),   # rule 7 before the DB: family of rule 8
    ("ID:0013", REJECTED),      # rule 5 before the ID: family
    ("MH:0007", FAILED),        # listed; the MH: family is not
])
def test_rule_order(code: str, expected: str) -> None:
    assert classify(code) == expected


@pytest.mark.parametrize("code, expected", [
    ("delivrd", DELIVERED), (" DELIVRD\r\n", DELIVERED), ("\tUndeliv ", UNDELIVERED),
    ("mk:0001", UNDELIVERED), (" db:0141 ", BLACKLISTED), ("mi:0000", EXPIRED),
    ("Mk:0115", REJECTED), ("mc:0151", UNKNOWN), ("error:3", FAILED), ("\u3000EXPIRED\u3000", EXPIRED),
    (None, UNKNOWN), ("   ", UNKNOWN),
])
def test_case_and_whitespace(code: str | None, expected: str) -> None:
    assert classify(code) == expected


def test_exact_code_sets_are_disjoint() -> None:
    """A code in two sets would be decided by dict order, not by the rule order."""
    for (a, codes_a), (b, codes_b) in combinations(status.EXACT, 2):
        assert not codes_a & codes_b, (a, b, sorted(codes_a & codes_b))


def test_every_exact_code_maps_to_its_own_class() -> None:
    for expected, codes in status.EXACT:
        for code in codes:
            assert classify(code) == expected, code
            assert code == code.strip().upper(), code  # stored as classify() looks them up


def test_classify_returns_only_canonical_statuses() -> None:
    assert set(status.FAMILIES.values()) <= set(status.STATUSES)
    assert {s for s, _ in status.EXACT} <= set(status.STATUSES)
    for code in ("", "x" * 1000, "\x00", "MK:00001", "::", "DB:-1", "ÄÖ:0001"):
        assert classify(code) in status.STATUSES


@pytest.mark.parametrize("state, errorcode, expected", [
    # rule 1: `10` is delivered whatever errorcode says
    ("10", None, DELIVERED), ("10", "", DELIVERED), ("10", "DB:0141", DELIVERED),
    ("10", "UNDELIVRD", DELIVERED), (" 10 ", "MK:0001", DELIVERED),
    # `20` refines to a failure class, else failed
    ("20", "MK:0001", UNDELIVERED), ("20", "EXPIRED", EXPIRED), ("20", "DB:0142", REJECTED),
    ("20", "DB:0141", BLACKLISTED), ("20", "MB:1078", FAILED), ("20", "UNDELIVRD", UNDELIVERED),
    ("20", "DELIVRD", FAILED), ("20", "UNKNOWN", FAILED), ("20", "2", FAILED),
    ("20", "ZZ:0001", FAILED), ("20", "MC:0151", FAILED), ("20", None, FAILED), ("20", "", FAILED),
    ("20\n", " mi:0000 ", EXPIRED),
    # no (or an unseen) status: the errorcode is all there is
    (None, "DELIVRD", DELIVERED), ("", "MK:0001", UNDELIVERED), ("30", "DB:0141", BLACKLISTED),
    (None, None, UNKNOWN), ("", "  ", UNKNOWN),
])
def test_classify_returnsms(state: str | None, errorcode: str | None, expected: str) -> None:
    assert classify_returnsms(state, errorcode) == expected


@pytest.mark.parametrize("call_seconds, expected", [
    (0, UNDELIVERED), (1, DELIVERED), (30, DELIVERED), (-1, UNDELIVERED)])
def test_classify_voice(call_seconds: int, expected: str) -> None:
    assert classify_voice(call_seconds) == expected


def test_hangup_codes_of_doc_001() -> None:
    assert status.HANGUP == {"0": "unknown", "1": "no_answer", "2": "timeout", "3": "completed",
                             "4": "callee_hung_up"}
