"""The hot path builds stream entries without marshmallow (events.complete); these properties
prove its entries are exactly what the marshmallow schemas, the contract, load and dump."""
import hashlib
import re

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


def reference_complete(record, vendor: str, received_at: str) -> dict[str, str]:
    """complete and record_id as first written: a filtering comprehension, a .get per name."""
    event = {k: v for k, v in record.items() if v or (k == "text" and v is not None)}
    event["vendor"] = vendor
    event["received_at"] = received_at
    key = "\x1f".join(event.get(name, "") for name in events.ID_FIELDS[event["kind"]])
    event["id"] = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
    return event


@settings(max_examples=300)
@given(record=st.one_of(dlr_records, mo_records))
def test_complete_is_the_reference(record):
    # With or without empty fields (the copy and the filtering paths): same fields, same order.
    got = events.complete(record, "topen", "2026-01-01T00:00:00.000+00:00")
    expected = reference_complete(record, "topen", "2026-01-01T00:00:00.000+00:00")
    assert list(got.items()) == list(expected.items())
    full = {k: v for k, v in record.items() if v}
    assert list(events.complete(full, "topen", "t").items()) == list(
        reference_complete(full, "topen", "t").items())


def test_schema_rejects_what_breaks_the_contract():
    good = events.complete({"kind": "dlr", "mobile": "+8613900000000", "status": "delivered",
                            "vendor_status": "DELIVRD", "raw": "b,13900000000,DELIVRD"},
                           "topen", events.now())
    assert events.check(good) == {}
    assert "status" in events.check({**good, "status": "ok"})
    assert "mobile" in events.check({**good, "mobile": "abc"})
    assert "reported_at" in events.check({**good, "reported_at": "2014-06-10 15:34:11"})
    assert "id" in events.check({k: v for k, v in good.items() if k != "id"})


# Ids are dedupe keys kept across releases (48 h live, the archive's retention on replay): the
# same record must keep its id whatever the code that hashes it. Values from the first release.
DLR = {"kind": "dlr", "batch_id": "0278387837488834", "mobile": "+8613900000000",
       "status": "delivered", "vendor_status": "DELIVRD", "account": "XXXX", "vendor": "topen",
       "raw": "0278387837488834,13900000000,DELIVRD", "received_at": "2026-01-01T00:00:00.000+00:00"}
MO = {"kind": "mo", "mobile": "+8613900000000", "text": "退订", "sent_at": "2014-06-10T15:34:11+08:00",
      "raw": "13900000000|,|退订|,|2014-06-10 15:34:11", "vendor": "topen",
      "received_at": "2026-01-01T00:00:00.000+00:00"}
LETTER = {"vendor": "topen", "reason": "bad record: no usable mobile in 'x'",
          "received_at": "2026-01-01T00:00:00.000+00:00", "remote_addr": "10.0.0.1",
          "method": "POST", "path": "/push/topen", "content_type": "application/x-www-form-urlencoded",
          "query": b"", "body": b"account=XXXX&GetReport=1,x,DELIVRD|\xff", "record": "1,x,DELIVRD"}


def test_ids_do_not_change_between_releases():
    assert events.record_id(DLR) == "53ec3cbdc9b870825a53d659c9f761a3"
    assert events.record_id(MO) == "4493814d11862c4845d4f0eb66611c27"
    assert events.letter_id(LETTER) == "dl-638dfedbf0368f874641910d5412f6fc"
    assert events.letter_ids([LETTER]) == ["dl-638dfedbf0368f874641910d5412f6fc"]
    assert events.letter_ids([]) == []


def reference_letter_id(letter) -> str:
    """letter_id as first written: every letter hashed whole, field by field in name order."""
    digest = hashlib.blake2b(digest_size=16)
    for name in sorted(set(letter) - {"received_at", "remote_addr"}):
        value = letter[name]
        digest.update(name.encode() + b"\x1f")
        digest.update((value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass"))
                      + b"\x1e")
    return "dl-" + digest.hexdigest()


raw_bytes = st.binary(max_size=64)
push_letters = st.fixed_dictionaries({
    "vendor": st.sampled_from(["topen", "smsadmin"]), "received_at": st.just("2026-01-01T00:00:00.000+00:00"),
    "method": st.sampled_from(["GET", "POST"]), "path": st.sampled_from(["/push/topen", "/push/topen/***"]),
    "content_type": st.sampled_from(["", "application/x-www-form-urlencoded"]),
    "query": raw_bytes, "body": raw_bytes,
}).flatmap(lambda push: st.lists(st.fixed_dictionaries(
    {"reason": text, "remote_addr": st.sampled_from(["", "10.0.0.1"])},
    optional={"record": text, "body": raw_bytes, "vendor": st.just("winnerlook")},
).map(lambda own: {**push, **own}), max_size=6))


@given(letters=push_letters)
def test_the_letters_of_a_push_get_the_ids_each_would_get_alone(letters):
    # letter_ids hashes what the letters share once: same ids as each letter hashed whole,
    # whether they share the body (one push) or not.
    expected = [reference_letter_id(letter) for letter in letters]
    assert events.letter_ids(letters) == expected
    assert [events.letter_id(letter) for letter in letters] == expected


def test_now_is_iso_utc_with_milliseconds_and_the_clock():
    from datetime import datetime, timedelta, timezone
    before = datetime.now(timezone.utc)
    stamps = [events.now() for _ in range(2000)]
    after = datetime.now(timezone.utc)
    for stamp in (stamps[0], stamps[-1]):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", stamp), stamp
        moment = datetime.fromisoformat(stamp)
        assert before - timedelta(milliseconds=1) <= moment <= after
    assert stamps == sorted(stamps)
