"""Retention, through the app as vendors reach it: streams are trimmed on write (MINID ~,
RECEIVER_RETENTION, default 7 days) and dedupe keys expire on their own (RECEIVER_DEDUPE_TTL)."""
from __future__ import annotations

import time

import pytest

FORM = "application/x-www-form-urlencoded"
DAY_MS = 24 * 3600 * 1000


@pytest.fixture
def small_nodes(r):
    """One entry per stream node: MINID ~ trims whole nodes, so with this it trims exactly
    (with the default 100 entries per node a short test would see nothing trimmed)."""
    before = r.config_get("stream-node-max-entries")["stream-node-max-entries"]
    r.config_set("stream-node-max-entries", 1)
    yield
    r.config_set("stream-node-max-entries", before)


def report(n: int) -> bytes:
    return f"account=acc1&GetReport=B{n},139000000{n:02d},DELIVRD|".encode()


def push(client, body: bytes) -> None:
    assert client.post("/push/topen", data=body, content_type=FORM).data == b"ok"


def ids(r, stream: str) -> list[bytes]:
    return [entry_id for entry_id, _ in r.xrange(stream)]


def wait_past(entry_id: bytes, seconds: float) -> None:
    """Sleep until `seconds` have passed since the entry was added."""
    until = int(entry_id.split(b"-")[0]) / 1000 + seconds + 0.05
    while time.time() < until:
        time.sleep(until - time.time())


def test_old_entries_are_trimmed_when_new_ones_are_written(app_factory, r, small_nodes):
    client = app_factory(RECEIVER_RETENTION="1s").test_client()
    for n in range(3):
        push(client, report(n))
    push(client, b"nonsense=1")
    assert (len(ids(r, "sms:dlr")), len(ids(r, "sms:deadletter"))) == (3, 1)

    wait_past(max(ids(r, "sms:dlr") + ids(r, "sms:deadletter")), 1.0)
    push(client, report(7))
    push(client, b"nonsense=2")
    [(_, dlr)] = r.xrange("sms:dlr")
    [(_, letter)] = r.xrange("sms:deadletter")
    assert dlr[b"mobile"] == b"+8613900000007" and letter[b"body"] == b"nonsense=2"


@pytest.mark.parametrize("retention,kept", [(None, [6]), ("0", [8, 6])],
                         ids=["default 7 days", "0 keeps everything"])
def test_the_default_retention_is_seven_days(app_factory, r, small_nodes, retention, kept):
    now = int(time.time() * 1000)
    for days in (8, 6):
        r.xadd("sms:dlr", {"age": str(days)}, id=f"{now - days * DAY_MS}-0")
    env = {"RECEIVER_RETENTION": retention} if retention is not None else {}
    push(app_factory(**env).test_client(), report(1))
    ages = [fields.get(b"age") for _, fields in r.xrange("sms:dlr")]
    assert ages == [str(d).encode() for d in kept] + [None]


def test_dedupe_claims_carry_the_configured_window(app_factory, r):
    push(app_factory().test_client(), report(1) + b"B2,13900000002,DELIVRD|")
    published = [fields[b"id"] for _, fields in r.xrange("sms:dlr")]
    assert len(published) == 2
    for event_id in published:
        ttls = [r.pttl(key) for key in r.scan_iter("sms:seen:*") if r.sismember(key, event_id)]
        # The default 48 h window's 24 h slices: the set lives for the three it is checked in
        # and one more (retired after the third), not forever.
        assert len(ttls) == 1 and 72 * 3600 * 1000 - 60_000 < ttls[0] <= 96 * 3600 * 1000


def test_dedupe_keys_expire_on_their_own_and_the_record_is_taken_again(app_factory, r):
    client = app_factory(RECEIVER_DEDUPE_TTL="1s").test_client()
    push(client, report(1))
    push(client, report(1))
    assert len(ids(r, "sms:dlr")) == 1  # a duplicate inside the window
    [key] = r.scan_iter("sms:seen:*")
    assert 0 < r.pttl(key) <= 2000  # four half-second slices of the 1 s window
    deadline = time.monotonic() + 15
    while r.exists(key) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not r.exists(key)
    push(client, report(1))
    assert len(ids(r, "sms:dlr")) == 2  # outside the window it is published again
