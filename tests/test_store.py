"""receiver/store.py against a real Redis: one script per push, dedupe, claims only for what
was published."""
import time
import types

import pytest
import redis
from hypothesis import HealthCheck, given, settings, strategies as st

from receiver import store
from receiver.store import Publisher, Streams


def entry(kind: str, dedupe: str, **fields: str) -> tuple[str, str, dict]:
    return kind, dedupe, {"kind": kind, "id": dedupe, **fields}


def claims(r, dedupe: str) -> list[int]:
    """The time to live (ms) of each dedupe set that holds the id."""
    return [r.pttl(key) for key in r.scan_iter("sms:seen:*") if r.sismember(key, dedupe)]


def test_a_batch_is_published_in_order_and_duplicates_skipped(r):
    publisher = Publisher(r, Streams("sms"), dedupe_ttl=60, retention=None)
    batch = [entry("dlr", "a", mobile="1"), entry("mo", "b", text="x"), entry("dlr", "a", mobile="1")]
    assert publisher.publish(batch) == [True, True, False]
    assert publisher.publish(batch) == [False, False, False]
    assert [f[b"id"] for _, f in r.xrange("sms:dlr")] == [b"a"]
    # Claimed once, in a set that lives for the three 30 s slices it is checked in and one more.
    [ttl] = claims(r, "a")
    assert 90_000 - 1_000 < ttl <= 120_000


def test_an_entry_redis_refuses_is_not_claimed_and_the_retry_completes_the_batch(r):
    """XADD fails half-way (the stream key holds a string): the push fails, the entries before
    stay published and claimed, the failed one is not claimed, so a retry publishes it once."""
    publisher = Publisher(r, Streams("sms"), dedupe_ttl=60, retention=None)
    r.set("sms:mo", "not a stream")
    batch = [entry("dlr", "a", mobile="1"), entry("mo", "b", text="x"), entry("dlr", "c", mobile="2")]
    with pytest.raises(redis.ResponseError):
        publisher.publish(batch)
    assert claims(r, "a") and not claims(r, "b") and not claims(r, "c")
    r.delete("sms:mo")
    assert publisher.publish(batch) == [False, True, True]
    assert [f[b"id"] for _, f in r.xrange("sms:dlr")] == [b"a", b"c"]
    assert [f[b"id"] for _, f in r.xrange("sms:mo")] == [b"b"]


def test_entries_of_different_shapes_keep_exactly_their_fields_in_order(r):
    """The batch sends each distinct list of field names once: a long entry after a short one,
    a shape that comes back, and a shape whose names are another's in a different order must
    each come out with their own fields, values and order."""
    publisher = Publisher(r, Streams("sms"), dedupe_ttl=60, retention=None)
    shapes = [{"kind": "dlr", "id": "1", "mobile": "+861"},
              {"kind": "dlr", "id": "2", "mobile": "+862", "reported_at": "t2", "ext_no": "9"},
              {"kind": "dlr", "id": "3", "mobile": "+863"},
              {"mobile": "+864", "kind": "dlr", "id": "4"},
              {"kind": "dlr", "id": "5", "mobile": "+865", "reported_at": "t5", "ext_no": "8"}]
    assert publisher.publish([("dlr", f["id"], f) for f in shapes]) == [True] * 5
    stored = [[(k.decode(), v.decode()) for k, v in fields.items()]
              for _, fields in r.xrange("sms:dlr")]
    assert stored == [list(f.items()) for f in shapes]


def test_bytes_survive_the_trip_unchanged(r):
    publisher = Publisher(r, Streams("sms"), dedupe_ttl=60, retention=None)
    body = bytes(range(256)) * 3
    publisher.publish([("deadletter", "dl-1", {"body": body, "reason": "退订 bytes"})])
    [(_, fields)] = r.xrange("sms:deadletter")
    assert fields[b"body"] == body and fields[b"reason"].decode() == "退订 bytes"


def test_dead_letters_sharing_a_long_body_each_keep_it_whole(r):
    """The letters of a push share its body: it travels once (store.LONG), each letter stored
    with all of it, next to short and long values of their own, around reports, a duplicate
    letter (whose values are skipped in step) and a letter of another shape."""
    publisher = Publisher(r, Streams("sms"), dedupe_ttl=60, retention=None)
    body = bytes(range(256)) * 100  # not UTF-8
    query = "q=" + "短" * store.LONG  # a long str
    record = "x" * (store.LONG - 1)  # one byte short of long: stays in place

    def letter(n: int, **more: str | bytes) -> tuple[str, str, dict]:
        return "deadletter", f"dl-{n}", {"vendor": "topen", "reason": f"bad record {n}",
                                         "query": query, "body": body, **more}

    batch = [entry("dlr", "a", mobile="1"), letter(1, record=record), letter(2, record="r2"),
             letter(1, record=record), entry("dlr", "b", mobile="2"),
             letter(3, record="y" * 5000), ("deadletter", "dl-4", {"reason": "whole push",
                                                                  "body": body}),
             entry("dlr", "c", mobile="3")]
    assert publisher.publish(batch) == [True, True, True, False, True, True, True, True]
    published = [batch[i][2] for i in (1, 2, 5, 6)]  # the letters but the duplicate
    stored = [[(k.decode(), v) for k, v in fields.items()]
              for _, fields in r.xrange("sms:deadletter")]
    assert stored == [[(k, v.encode() if isinstance(v, str) else v) for k, v in fields.items()]
                      for fields in published]
    assert [f[b"id"] for _, f in r.xrange("sms:dlr")] == [b"a", b"b", b"c"]


_VALUES = st.one_of(st.text(max_size=3), st.binary(max_size=3),
                    st.text(min_size=store.LONG - 1, max_size=store.LONG + 1),
                    st.binary(min_size=store.LONG - 1, max_size=store.LONG + 1))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(data=st.data())
def test_any_batch_stores_each_new_entry_exactly(r, data):
    """Reports and dead letters of any shapes, values short or long (str or bytes), long ones
    shared between letters or not, and duplicates anywhere: each entry not a duplicate is
    stored with exactly its fields, in order; nothing else is."""
    r.flushall()
    publisher = Publisher(r, Streams("sms"), dedupe_ttl=60, retention=None)
    pool = data.draw(st.lists(_VALUES, min_size=1, max_size=4))  # values letters may share
    names = st.sampled_from(["body", "query", "reason", "record", "vendor", "path"])
    batch = []
    expected: dict[str, list] = {"dlr": [], "deadletter": []}  # per stream, in order
    for n in range(data.draw(st.integers(1, 12))):
        kind = data.draw(st.sampled_from(["dlr", "deadletter"]))
        dedupe = data.draw(st.sampled_from([f"{kind}-{i}" for i in range(4)]))
        fields = data.draw(st.dictionaries(names, st.one_of(st.sampled_from(pool), _VALUES),
                                           min_size=1, max_size=5))
        if all(dedupe != earlier for _, earlier, _ in batch):
            expected[kind].append([(k, v.encode() if isinstance(v, str) else v)
                                   for k, v in fields.items()])
        batch.append((kind, dedupe, fields))
    flags = publisher.publish(batch)
    assert flags == [all(dedupe != earlier for _, earlier, _ in batch[:i])
                     for i, (_, dedupe, _) in enumerate(batch)]
    for kind, entries in expected.items():
        assert [[(k.decode(), v) for k, v in fields.items()]
                for _, fields in r.xrange(f"sms:{kind}")] == entries


def test_a_large_batch_is_one_script_call(r):
    publisher = Publisher(r, Streams("sms"), dedupe_ttl=60, retention=None)
    before = r.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)
    before += r.info("commandstats").get("cmdstat_eval", {}).get("calls", 0)
    publisher.publish([entry("dlr", str(n), mobile=str(n)) for n in range(5000)])
    stats = r.info("commandstats")
    calls = stats.get("cmdstat_evalsha", {}).get("calls", 0) + stats.get("cmdstat_eval", {}).get("calls", 0)
    assert calls - before == 1 and r.xlen("sms:dlr") == 5000


def test_a_flushed_script_cache_is_reloaded_and_the_push_published_once(r):
    """A Redis restarted or SCRIPT FLUSHed answers NOSCRIPT: the script is loaded again and the
    same push goes through, once."""
    publisher = Publisher(r, Streams("sms"), dedupe_ttl=60, retention=None)
    assert publisher.publish([entry("dlr", "a", mobile="1")]) == [True]
    r.script_flush()
    assert publisher.publish([entry("dlr", "b", mobile="2"), entry("dlr", "a", mobile="1")]) \
        == [True, False]
    assert [f[b"id"] for _, f in r.xrange("sms:dlr")] == [b"a", b"b"]


def test_a_connection_killed_between_pushes_is_replaced(r):
    """Redis closed the publisher's connection (a restart, CLIENT KILL, an idle timeout): the
    next push reconnects instead of failing."""
    publisher = Publisher(r, Streams("sms"), dedupe_ttl=60, retention=None)
    assert publisher.publish([entry("dlr", "a", mobile="1")]) == [True]
    assert r.client_kill_filter(_type="normal", skipme=True) >= 1
    assert publisher.publish([entry("dlr", "b", mobile="2")]) == [True]
    assert [f[b"id"] for _, f in r.xrange("sms:dlr")] == [b"a", b"b"]


def test_each_thread_publishes_on_a_connection_of_its_own(r):
    import threading
    publisher = Publisher(r, Streams("sms"), dedupe_ttl=60, retention=None)
    errors = []

    def work(n: int) -> None:
        try:
            for i in range(50):
                assert publisher.publish([entry("dlr", f"{n}-{i}", mobile="1")]) == [True]
        except Exception as problem:  # pragma: no cover - reported below
            errors.append(problem)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and r.xlen("sms:dlr") == 200


def test_wide_entries_and_skipped_duplicates_keep_the_batch_in_step(r):
    """The script reads entries one after another off one string: a duplicate's values must be
    skipped exactly, and an entry of more fields than the script's per-arity functions (32)
    takes the generic path, with every field in order."""
    publisher = Publisher(r, Streams("sms"), dedupe_ttl=60, retention=None)
    wide = {"kind": "dlr", "id": "w", **{f"f{i:02d}": str(i) for i in range(40)}}
    one = {"id": "o"}
    small = {"kind": "dlr", "id": "s", "mobile": "+861"}
    batch = [("dlr", "w", wide), ("dlr", "w", wide), ("dlr", "o", one), ("dlr", "o", one),
             ("dlr", "s", small)]
    assert publisher.publish(batch) == [True, False, True, False, True]
    stored = [[(k.decode(), v.decode()) for k, v in fields.items()]
              for _, fields in r.xrange("sms:dlr")]
    assert stored == [list(wide.items()), list(one.items()), list(small.items())]


def test_a_timeout_fails_the_publish_once_and_is_not_retried(tmp_path):
    """Redis busier than the socket timeout: publish raises TimeoutError and does not send the
    script again (the caller spools instead of waiting twice). The one script Redis got still
    runs when it wakes, so the entry is published exactly once."""
    import socket
    import time

    from .faultkit import DebugRedisServer

    with DebugRedisServer(tmp_path / "redis", persistent=False) as server, \
            socket.create_connection(("127.0.0.1", server.port)) as sleeper:
        r = redis.Redis(port=server.port)
        slow = redis.Redis(port=server.port, socket_timeout=0.3)
        publisher = Publisher(slow, Streams("sms"), dedupe_ttl=60, retention=None)
        assert publisher.publish([entry("dlr", "warm", mobile="1")]) == [True]  # connected
        calls = r.info("commandstats")["cmdstat_evalsha"]["calls"]
        sleeper.sendall(b"DEBUG SLEEP 1.5\r\n")
        time.sleep(0.2)  # Redis reads the DEBUG SLEEP long before the push arrives
        with pytest.raises(redis.TimeoutError):
            publisher.publish([entry("dlr", "a", mobile="2")])
        assert sleeper.recv(100) == b"+OK\r\n"  # Redis is awake
        assert r.info("commandstats")["cmdstat_evalsha"]["calls"] - calls == 1
        assert [f[b"id"] for _, f in r.xrange("sms:dlr")] == [b"warm", b"a"]
        assert publisher.publish([entry("dlr", "a", mobile="2")]) == [False]  # a new connection


def test_a_reply_that_breaks_the_protocol_is_a_redis_error(redis_server):
    """A proxy in front of Redis answers the script with bytes outside the protocol: publish
    raises a RedisError (which the view spools on), not hiredis' own ProtocolError (a 500)."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def proxy() -> None:
        client, _ = listener.accept()
        with client, socket.create_connection(("127.0.0.1", redis_server.port)) as upstream:
            while data := client.recv(65536):
                if b"EVALSHA" in data:
                    client.sendall(b"?garbage\r\n")
                    continue
                upstream.sendall(data)  # the connect handshake goes to Redis itself
                client.sendall(upstream.recv(65536))

    thread = threading.Thread(target=proxy, daemon=True)
    thread.start()
    try:
        publisher = Publisher(redis.Redis(port=port, socket_timeout=5), Streams("sms"),
                              dedupe_ttl=60, retention=None)
        with pytest.raises(redis.RedisError):
            publisher.publish([entry("dlr", "a", mobile="1")])
    finally:
        listener.close()


@given(now=st.integers(0, 2**45), later=st.floats(0, 1, exclude_max=True),
       window=st.integers(1, 400 * 86400 * 1000))
def test_a_claim_is_checked_for_the_whole_window(now, later, window):
    """Whatever the time and the window: the set an id is claimed in at `now` is among the
    sets checked until `now + window` and not retired before then, and its expiry comes after
    it is retired (at most two windows after `now`)."""
    unconnected = redis.Redis(port=1)  # _sets talks to no server
    publisher = Publisher(unconnected, Streams("sms"), dedupe_ttl=window / 1000, retention=None)
    _, [claimed], [expiry], _ = publisher._sets(now)
    checked, _, _, [retired] = publisher._sets(now + int(later * window))
    assert claimed in checked
    assert retired != claimed
    width = -(-window // 2)
    retired_at = (now // width + 3) * width  # the first slice whose retired set is `claimed`
    assert publisher._sets(retired_at)[3] == [claimed]
    assert claimed not in publisher._sets(retired_at)[0]
    assert now + window <= retired_at < expiry <= now + 2 * window + 2


def test_a_duplicate_is_found_across_the_windows_slices(r):
    """A 1 s window is cut in half-second sets: re-sent for the whole second after it was
    published (so across at least one change of set), the id stays a duplicate."""
    publisher = Publisher(r, Streams("sms"), dedupe_ttl=1, retention=None)
    start = time.time()
    assert publisher.publish([entry("dlr", "a", mobile="1")]) == [True]
    tries = 0
    while True:
        sent = time.time()
        flags = publisher.publish([entry("dlr", "a", mobile="1")])
        if sent - start >= 1:
            break
        assert flags == [False], f"published again {sent - start:.3f} s after"
        tries += 1
        time.sleep(0.02)
    assert tries >= 2
    assert r.xlen("sms:dlr") == 1 + flags.count(True)


def test_a_replayers_claims_are_seen_by_the_live_window_and_its_own(r):
    """A publisher with a second window (the replayer's) claims in both; the live one then
    skips the id, and `known` reports it."""
    live = Publisher(r, Streams("sms"), dedupe_ttl=60, retention=None)
    replayer = Publisher(r, Streams("sms"), dedupe_ttl=60, retention=None,
                         also_dedupe=(86400,))
    assert replayer.publish([entry("dlr", "a", mobile="1")]) == [True]
    assert live.publish([entry("dlr", "a", mobile="1"), entry("dlr", "b", mobile="2")]) == \
        [False, True]
    assert sorted(claims(r, "a"))[1] > 86_000_000
    assert live.known(["a", "b", "c"]) == [True, True, False]
    assert replayer.known(["b", "c"]) == [True, False]


def test_a_set_no_longer_checked_is_retired_once_by_each_publisher(r, monkeypatch):
    """At the third slice after an id's, its set is checked no more and the next push UNLINKs
    it (a large set left to expire would be freed on Redis' main thread); later pushes of the
    same publisher in that slice send no UNLINK. The set's own expiry is a slice later still."""
    clock = [time.time()]
    monkeypatch.setattr(store, "time", types.SimpleNamespace(time=lambda: clock[0],
                                                             monotonic=time.monotonic))
    publisher = Publisher(r, Streams("sms"), dedupe_ttl=3600, retention=None)
    width = 1800 * 1000
    first = int(clock[0] * 1000) // width
    assert publisher.publish([entry("dlr", "a", mobile="1")]) == [True]
    old = f"sms:seen:{width}:{first}"
    assert r.smembers(old) == {b"a"}
    assert r.pexpiretime(old) == (first + 4) * width
    clock[0] += 2 * width / 1000  # two slices on: still checked
    assert publisher.publish([entry("dlr", "a", mobile="1")]) == [False]
    assert r.exists(old)
    clock[0] += width / 1000  # the third: retired
    unlinks = r.info("commandstats").get("cmdstat_unlink", {}).get("calls", 0)
    assert publisher.publish([entry("dlr", "a", mobile="1")]) == [True]
    assert not r.exists(old)
    for n in range(3):
        publisher.publish([entry("dlr", f"b{n}", mobile="1")])
    assert r.info("commandstats")["cmdstat_unlink"]["calls"] == unlinks + 1
    assert r.xlen("sms:dlr") == 5


def old_claims(r, prefix: str, ids, ttl_ms: int = 60_000) -> None:
    """Claims as the key-per-id layout (before 1a4cd8b) made them: `SET <prefix>:seen:<id> 1
    NX PX <window>`."""
    pipe = r.pipeline(transaction=False)
    for dedupe in ids:
        pipe.set(f"{prefix}:seen:{dedupe}", "1", nx=True, px=ttl_ms)
    pipe.execute()


def test_claims_of_the_key_per_id_layout_are_duplicates_after_an_upgrade(r):
    """An id the old version claimed is skipped by the first publish; its key is gone, and the
    id is in the current set for the whole window."""
    old_claims(r, "sms", ["a", "b", "ü"])
    publisher = Publisher(r, Streams("sms"), dedupe_ttl=60, retention=None)
    batch = [entry("dlr", "a", mobile="1"), entry("dlr", "c", mobile="1"),
             entry("dlr", "ü", mobile="1"), entry("dlr", "c", mobile="1")]
    assert publisher.publish(batch) == [False, True, False, False]
    assert [f[b"id"] for _, f in r.xrange("sms:dlr")] == [b"c"]
    assert not r.exists("sms:seen:a", "sms:seen:b", "sms:seen:ü")
    [ttl] = claims(r, "b")
    assert 90_000 - 1_000 < ttl <= 120_000  # the set's own expiry, as if published now
    # Done once for the prefix: a later publisher (another worker, a restart) does not SCAN.
    assert r.get("sms:seen-adopted") == b"1" and r.ttl("sms:seen-adopted") == -1
    scans = r.info("commandstats")["cmdstat_scan"]["calls"]
    later = Publisher(r, Streams("sms"), dedupe_ttl=60, retention=None)
    assert later.publish([entry("dlr", "d", mobile="1")]) == [True]
    assert r.info("commandstats")["cmdstat_scan"]["calls"] == scans


@pytest.mark.parametrize("how", ["publish", "known"])
def test_claims_are_adopted_past_a_page_and_by_known_too(r, how):
    ids = [f"id{n}" for n in range(2 * store.ADOPT_PAGE + 7)]
    old_claims(r, "sms", ids)
    publisher = Publisher(r, Streams("sms"), dedupe_ttl=60, retention=None)
    if how == "publish":
        assert publisher.publish([entry("dlr", i, mobile="1") for i in ids[::500]]) == \
            [False] * len(ids[::500])
    else:
        assert publisher.known([ids[0], ids[-1], "other"]) == [True, True, False]
    assert not list(r.scan_iter("sms:seen:id*"))
    assert publisher.adopt_old_claims() == 0  # once per publisher
    assert all(claims(r, i) for i in ids[::100])


@pytest.mark.parametrize("prefix, other", [("q[1]*", "q1x"), ("a?b", "axb"),
                                           ("{sms}", "{sms}x"), ("back\\slash", "backslash")])
def test_only_the_prefixs_own_old_claims_are_adopted(r, prefix, other):
    """The prefix is matched literally, glob characters included: another prefix's keys that
    an unescaped pattern would match are left alone."""
    old_claims(r, prefix, ["a"])
    old_claims(r, other, ["a"])
    publisher = Publisher(r, Streams(prefix), dedupe_ttl=60, retention=None)
    assert publisher.adopt_old_claims() == 1
    assert not r.exists(f"{prefix}:seen:a")
    assert r.exists(f"{other}:seen:a")
    assert publisher.publish([entry("dlr", "a", mobile="1")]) == [False]


def test_a_failed_adoption_is_tried_again_and_nothing_is_published_meanwhile(r, monkeypatch):
    """The set to adopt into is a list, so the adoption fails: the publish fails too
    (the caller spools it) instead of publishing an id the old layout claimed; once the set
    can be written, the next publish adopts and skips it."""
    now = time.time()  # one slice throughout
    monkeypatch.setattr(store, "time", types.SimpleNamespace(time=lambda: now,
                                                             monotonic=time.monotonic))
    old_claims(r, "sms", ["a"])
    publisher = Publisher(r, Streams("sms"), dedupe_ttl=3600, retention=None)
    [current] = publisher._sets(int(now * 1000))[1]
    r.rpush(current, "in the way")
    for _ in range(2):
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            publisher.publish([entry("dlr", "a", mobile="1")])
    assert not r.exists("sms:dlr")
    assert r.exists("sms:seen:a")  # the script failed before its DEL: the claim is kept
    r.delete(current)
    assert publisher.publish([entry("dlr", "a", mobile="1")]) == [False]
    assert not r.exists("sms:dlr")


def test_without_a_dedupe_window_old_claims_are_left_alone(r):
    old_claims(r, "sms", ["a"])
    publisher = Publisher(r, Streams("sms"), dedupe_ttl=0, retention=None)
    assert publisher.publish([entry("dlr", "a", mobile="1")]) == [True]
    assert r.exists("sms:seen:a")
