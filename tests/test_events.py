"""The hot path builds stream entries without marshmallow (events.complete); these properties
prove its entries are exactly what the marshmallow schemas, the contract, load and dump."""
from hypothesis import given, settings, strategies as st

from receiver import events
from receiver.status import HANGUP, STATUSES

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
optional = st.one_of(st.none(), st.just(""), text)
times = st.one_of(st.none(), st.datetimes(timezones=st.timezones()).filter(
    lambda t: t.utcoffset().seconds % 60 == 0).map(lambda t: t.replace(microsecond=0).isoformat()))
mobiles = st.from_regex(r"\A\+?[0-9]{3,15}\Z")

dlr_records = st.fixed_dictionaries({
    "kind": st.just("dlr"), "mobile": mobiles, "status": st.sampled_from(STATUSES),
    "vendor_status": text.filter(str.strip), "raw": text.filter(bool),
}, optional={
    "account": optional, "batch_id": optional, "link_id": optional, "error_code": optional,
    "reported_at": times, "ext_no": optional,
    "call_seconds": st.integers(0, 10**6).map(str), "ring_seconds": st.integers(0, 10**6).map(str),
    "hangup": st.sampled_from(sorted(set(HANGUP.values()))),
})
mo_records = st.fixed_dictionaries({
    "kind": st.just("mo"), "mobile": mobiles, "text": text, "raw": text.filter(bool),
}, optional={
    "account": optional, "batch_id": optional, "link_id": optional, "sent_at": times,
    "service_number": optional, "ext_no": optional,
})


@settings(max_examples=300)
@given(record=st.one_of(dlr_records, mo_records), vendor=st.sampled_from(
    ["topen", "winnerlook", "smsadmin", "returnsms"]))
def test_fast_entries_equal_what_the_schema_loads_and_dumps(record, vendor):
    entry = events.complete(record, vendor, events.now())
    schema = events.SCHEMAS[record["kind"]]
    assert events.check(entry) == {}
    assert schema.dump(schema.load(entry)) == entry
    # Flat strings only, and no empty field but a reply's text.
    assert all(isinstance(v, str) and (v != "" or k == "text") for k, v in entry.items())
    assert set(entry) <= set(schema.fields)


@given(record=st.one_of(dlr_records, mo_records))
def test_id_depends_only_on_the_record(record):
    first = events.complete(record, "topen", "2026-01-01T00:00:00.000+00:00")
    later = events.complete({**record, "raw": record["raw"] + " "}, "topen",
                            "2026-01-02T00:00:00.000+00:00")
    assert first["id"] == later["id"]
    assert events.complete(record, "smsadmin", first["received_at"])["id"] != first["id"]


def test_schema_rejects_what_breaks_the_contract():
    good = events.complete({"kind": "dlr", "mobile": "+8613900000000", "status": "delivered",
                            "vendor_status": "DELIVRD", "raw": "b,13900000000,DELIVRD"},
                           "topen", events.now())
    assert events.check(good) == {}
    assert "status" in events.check({**good, "status": "ok"})
    assert "mobile" in events.check({**good, "mobile": "abc"})
    assert "reported_at" in events.check({**good, "reported_at": "2014-06-10 15:34:11"})
    assert "id" in events.check({k: v for k, v in good.items() if k != "id"})
