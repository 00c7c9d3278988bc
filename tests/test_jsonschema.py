"""The JSON Schemas under docs/ are the marshmallow schemas' word for other languages: the
committed copies must be what the code generates, and must judge entries as the code does."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from receiver import events, jsonschema as generator

DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.mark.parametrize("kind", sorted(events.SCHEMAS))
def test_committed_schema_is_what_the_code_generates(kind):
    committed = (DOCS / f"{kind}.schema.json").read_text(encoding="utf-8")
    assert committed == generator.dump(kind), \
        f"docs/{kind}.schema.json is stale: run `python -m receiver.jsonschema`"


@pytest.mark.parametrize("kind", sorted(events.SCHEMAS))
def test_every_schema_field_is_described_with_its_requiredness(kind):
    doc = json.loads((DOCS / f"{kind}.schema.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(doc)
    fields = events.SCHEMAS[kind].fields
    assert set(doc["properties"]) == set(fields)
    assert set(doc["required"]) == {name for name, f in fields.items() if f.required}
    assert doc["additionalProperties"] is False


def test_check_mode_flags_a_stale_copy(tmp_path):
    assert generator.main(["--out", str(tmp_path)]) == 0
    assert generator.main(["--out", str(tmp_path), "--check"]) == 0
    path = tmp_path / "mo.schema.json"
    path.write_text(path.read_text().replace('"sms.mo"', '"x"').replace("text", "txt"))
    assert generator.main(["--out", str(tmp_path), "--check"]) == 1


DLR = events.complete({"kind": "dlr", "batch_id": "B1", "mobile": "+8613900000000",
                       "status": "delivered", "vendor_status": "DELIVRD",
                       "reported_at": "2014-06-10T15:34:11+08:00", "call_seconds": "12",
                       "hangup": "completed", "raw": "B1,13900000000,DELIVRD"}, "winnerlook",
                      "2014-06-10T07:34:12.345+00:00")
MO = events.complete({"kind": "mo", "mobile": "13900000000", "text": "退订",
                      "service_number": "10690447302152", "raw": "13900000000|,|退订"}, "topen",
                     "2014-06-10T07:34:12.345+00:00")
DEAD = {"vendor": "smsadmin", "reason": "push could not be decoded", "path": "/push/smsadmin",
        "received_at": "2014-06-10T07:34:12.345Z", "method": "GET", "query": "Class=x"}

# (kind, entry): the code and the committed schema must agree on each.
CASES = [
    ("dlr", DLR),
    ("dlr", {**DLR, "status": "DELIVRD"}),
    ("dlr", {**DLR, "id": DLR["id"].upper()}),
    ("dlr", {**DLR, "mobile": "139-0000-0000"}),
    ("dlr", {**DLR, "reported_at": "2014-06-10 15:34:11"}),
    ("dlr", {**DLR, "reported_at": "x2014-06-10T15:34:11+08:00"}),
    ("dlr", {**DLR, "call_seconds": "1.5"}),
    ("dlr", {**DLR, "hangup": "4"}),
    ("dlr", {k: v for k, v in DLR.items() if k != "vendor_status"}),
    ("dlr", {**DLR, "colour": "blue"}),
    ("dlr", {**DLR, "kind": "mo"}),
    ("mo", MO),
    ("mo", {k: v for k, v in MO.items() if k != "text"}),
    ("mo", {**MO, "sent_at": "2014-06-10T15:34:11.5+08:00"}),
    ("mo", {**MO, "status": "delivered"}),
    ("deadletter", DEAD),
    ("deadletter", {k: v for k, v in DEAD.items() if k != "reason"}),
    ("deadletter", {**DEAD, "record": "garbage", "content_type": "text/xml"}),
]


@pytest.mark.parametrize("kind,entry", CASES, ids=[f"{k}-{i}" for i, (k, _) in enumerate(CASES)])
def test_the_json_schema_judges_an_entry_as_the_code_does(kind, entry):
    doc = json.loads((DOCS / f"{kind}.schema.json").read_text(encoding="utf-8"))
    by_code = events.check(entry, kind) == {}
    by_schema = Draft202012Validator(doc).is_valid(entry)
    assert by_schema == by_code, (by_code, sorted(e.message for e in
                                                  Draft202012Validator(doc).iter_errors(entry)))


def test_the_cases_cover_both_verdicts():
    verdicts = {events.check(entry, kind) == {} for kind, entry in CASES}
    assert verdicts == {True, False}


def test_a_time_with_trailing_text_is_refused():
    assert events.check({**DLR, "reported_at": "2014-06-10T15:34:11+08:00 garbage"}, "dlr") != {}
