"""receiver.consumer against a real Redis: group creation, ack after the handler, sharing,
take-over from a dead consumer, dead-lettering."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading

import redis

from receiver import events
from receiver.consumer import ConsumerGroup, Message, Outcome, Stop, load_entry

DLR, DEAD = "sms:dlr", "sms:deadletter"


def dlr(i: int) -> dict[str, str]:
    """A canonical dlr entry, as the receiver makes it."""
    return events.complete({"kind": "dlr", "batch_id": "b1", "mobile": f"+86139{i:08d}",
                            "status": "delivered", "vendor_status": "DELIVRD",
                            "reported_at": "2014-06-10T15:34:11+08:00",
                            "raw": f"b1,139{i:08d},DELIVRD"}, "topen", events.now())


def publish(r: redis.Redis, n: int, start: int = 0) -> dict[str, dict[str, str]]:
    """Add n dlr entries as the receiver does (flat string fields); {stream id: entry}."""
    for i in range(start, start + n):
        r.xadd(DLR, dlr(i))
    return {entry_id.decode(): {k.decode(): v.decode() for k, v in fields.items()}
            for entry_id, fields in r.xrange(DLR)}


def group(redis_server, consumer: str = "c1", **options) -> ConsumerGroup:
    options.setdefault("block", 0.1)
    return ConsumerGroup(redis.Redis(port=redis_server.port), DLR, "billing", consumer, **options)


def watchdog(*groups: ConsumerGroup, seconds: float = 30.0) -> threading.Timer:
    """Stop runaway loops so that a bug fails the test instead of hanging it."""
    timer = threading.Timer(seconds, lambda: [g.stop() for g in groups])
    timer.daemon = True
    timer.start()
    return timer


def pending(r: redis.Redis, stream: str = DLR, name: str = "billing") -> list[dict]:
    return r.xpending_range(stream, name, "-", "+", 1000)


def test_group_creation_is_idempotent_and_keeps_the_position(redis_server, r):
    publish(r, 3)
    first = group(redis_server)
    assert first.create() is True
    assert first.run(lambda event: None, limit=3) == 3
    position = r.xinfo_groups(DLR)[0]["last-delivered-id"]
    assert group(redis_server, "c2").create() is False
    info = r.xinfo_groups(DLR)
    assert len(info) == 1 and info[0]["last-delivered-id"] == position


def test_group_on_a_missing_stream_is_created_with_it(redis_server, r):
    assert group(redis_server).create() is True
    assert r.exists(DLR) and r.xinfo_groups(DLR)[0]["name"] == b"billing"


def test_handler_gets_the_loaded_event_and_the_ack_comes_after_it_returns(redis_server, r):
    published = publish(r, 2)
    seen, pending_during = [], []
    consumer = group(redis_server)

    def handler(event):
        seen.append(event)
        pending_during.append(len(pending(r)))

    assert consumer.run(handler, limit=2) == 2
    assert seen == [load_entry("dlr", fields) for fields in published.values()]
    assert seen[0] == published[next(iter(published))]  # all-text fields load unchanged
    assert all(n >= 1 for n in pending_during)  # not acked while its handler ran
    assert pending(r) == []


def test_two_consumers_in_one_group_share_the_entries_none_twice(redis_server, r):
    published = publish(r, 200)
    a, b = group(redis_server, "a"), group(redis_server, "b")
    handled: dict[str, list[str]] = {"a": [], "b": []}
    b_started = threading.Event()
    lock = threading.Lock()

    def handler(name):
        def handle(event):
            if name == "a" and not handled["a"]:
                b_started.wait(10)  # a holds its first batch until b has read one of its own
            if name == "b":
                b_started.set()
            with lock:
                handled[name].append(event["id"])
                if len(handled["a"]) + len(handled["b"]) == len(published):
                    a.stop(), b.stop()
        return handle

    watchdog(a, b)
    threads = [threading.Thread(target=g.run, args=(handler(n),)) for n, g in (("a", a), ("b", b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    ids = handled["a"] + handled["b"]
    assert len(ids) == len(set(ids)) == len(published)
    assert set(ids) == {e["id"] for e in published.values()}
    assert handled["a"] and handled["b"]
    assert pending(r) == []


DOOMED = """
import sys, threading, redis
from receiver.consumer import ConsumerGroup
group = ConsumerGroup(redis.Redis.from_url(sys.argv[1]), "sms:dlr", "billing", "doomed", count=5)
def handler(event):
    print(event["id"], flush=True)
    threading.Event().wait()  # hangs inside the handler until killed
group.run(handler)
"""


def test_a_consumer_killed_mid_handler_has_its_entries_taken_over(redis_server, r):
    published = publish(r, 20)
    doomed = subprocess.Popen([sys.executable, "-c", DOOMED, redis_server.url],
                              stdout=subprocess.PIPE, text=True)
    try:
        in_hand = doomed.stdout.readline().strip()
    finally:
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(10)
    held = {row["message_id"].decode() for row in pending(r)}
    assert in_hand in {published[i]["id"] for i in held} and len(held) == 5

    survivor = group(redis_server, "survivor", claim_idle=0.2)
    handled = []
    watchdog(survivor)
    assert survivor.run(lambda event: handled.append(event["id"]), limit=20) == 20
    assert sorted(handled) == sorted(e["id"] for e in published.values())
    assert {published[i]["id"] for i in held} <= set(handled)
    assert pending(r) == []
    assert not r.exists(DEAD)


def test_a_poison_entry_ends_in_dead_letter_after_k_tries(redis_server, r):
    published = publish(r, 5)
    poison_id, poison = list(published.items())[2]
    tries: dict[str, int] = {}

    def handler(event):
        tries[event["id"]] = tries.get(event["id"], 0) + 1
        if event["id"] == poison["id"]:
            raise ValueError("cannot bill this one")

    consumer = group(redis_server, max_deliveries=3, claim_idle=0.1)
    watchdog(consumer)
    assert consumer.run(handler, limit=5) == 5
    assert tries == {e["id"]: (3 if e is poison else 1) for e in published.values()}
    assert pending(r) == []
    [(_, letter)] = r.xrange(DEAD)
    letter = {k.decode(): v.decode() for k, v in letter.items()}
    assert "cannot bill this one" in letter["reason"] and "3" in letter["reason"]
    assert (letter["stream"], letter["entry_id"], letter["group"], letter["deliveries"]) == \
        (DLR, poison_id, "billing", "3")
    assert json.loads(letter["record"]) == poison
    assert (letter["vendor"], letter["received_at"]) == ("topen", poison["received_at"])


def test_an_entry_that_does_not_load_is_dead_lettered_without_calling_the_handler(redis_server, r):
    r.xadd(DLR, {"kind": "dlr", "mobile": "not a number", "vendor": "topen"})
    r.xadd(DLR, {"kind": "dlr", "mobile": b"\xff\xfe"})
    called = []
    assert group(redis_server).run(called.append, limit=2) == 2
    assert called == []
    reasons = [fields[b"reason"].decode() for _, fields in r.xrange(DEAD)]
    assert len(reasons) == 2
    assert "does not match the dlr schema" in reasons[0] and "mobile" in reasons[0]
    assert "does not match the dlr schema" in reasons[1]
    assert pending(r) == []


def test_an_entry_delivered_too_often_without_an_ack_is_dead_lettered_unhandled(redis_server, r):
    [(entry_id, _)] = publish(r, 1).items()
    consumer = group(redis_server, max_deliveries=2, claim_idle=0.1)
    consumer.create()
    # Two consumers died in the handler: the entry was delivered twice, never acked.
    r.xreadgroup("billing", "dead-1", {DLR: ">"})
    r.xclaim(DLR, "billing", "dead-2", 0, [entry_id])
    called = []
    watchdog(consumer)
    assert consumer.run(called.append, limit=1) == 1
    assert called == []
    [(_, letter)] = r.xrange(DEAD)
    assert b"without an ack" in letter[b"reason"] and letter[b"deliveries"] == b"3"
    assert pending(r) == []


def test_a_restarted_consumer_handles_its_own_pending_entries_first(redis_server, r):
    published = publish(r, 3)
    first = group(redis_server)
    first.create()
    r.xreadgroup("billing", "c1", {DLR: ">"}, count=2)  # read before a crash, never acked
    publish(r, 2, start=3)
    order = []
    assert group(redis_server).run(lambda e: order.append(e["id"]), limit=5) == 5
    assert order[:2] == [e["id"] for e in list(published.values())[:2]]
    assert pending(r) == []


def test_a_pending_entry_trimmed_away_is_dropped(redis_server, r):
    published = publish(r, 2)
    consumer = group(redis_server)
    consumer.create()
    r.xreadgroup("billing", "c1", {DLR: ">"}, count=2)
    r.xdel(DLR, list(published)[0])  # what retention trimming does to an old pending entry
    handled = []
    second = group(redis_server)
    watchdog(second)
    assert second.run(lambda e: handled.append(e["id"]), limit=1) == 1
    assert handled == [list(published.values())[1]["id"]]
    assert pending(r) == []


def test_stop_raised_by_the_handler_leaves_the_entry_pending(redis_server, r):
    publish(r, 3)

    def handler(event):
        raise Stop

    consumer = group(redis_server)
    assert consumer.run(handler) == 0
    assert consumer.stopping and len(pending(r)) == 3
    assert not r.exists(DEAD)


def test_dead_letters_keep_their_raw_bytes_when_consumed(redis_server, r):
    body = "退订".encode("gb18030")
    r.xadd(DEAD, {"vendor": "smsadmin", "reason": "bad", "received_at": events.now(),
                  "method": "POST", "path": "/push/smsadmin", "body": body})
    got = []
    consumer = ConsumerGroup(redis.Redis(port=redis_server.port), DEAD, "ops", "c1", block=0.1)
    assert consumer.run(got.append, limit=1) == 1
    assert got[0]["body"] == body and got[0]["vendor"] == "smsadmin"


def test_failing_dead_letters_are_not_fed_back_to_the_dead_letter_stream(redis_server, r):
    r.xadd(DEAD, {"vendor": "smsadmin", "reason": "bad", "received_at": events.now(),
                  "method": "POST", "path": "/push/smsadmin"})

    def handler(event):
        raise RuntimeError("ops tool down")

    consumer = ConsumerGroup(redis.Redis(port=redis_server.port), DEAD, "ops", "c1", block=0.1,
                             max_deliveries=2, claim_idle=0.1)
    watchdog(consumer)
    assert consumer.run(handler, limit=1) == 1
    assert r.xlen(DEAD) == 1  # acked, left where it was, not copied again
    assert r.xpending(DEAD, "ops")["pending"] == 0


def test_handle_reports_each_outcome(redis_server, r):
    publish(r, 1)
    consumer = group(redis_server, max_deliveries=2)
    [message] = consumer.read()
    assert consumer.handle(message, lambda e: 1 / 0) is Outcome.FAILED
    assert len(pending(r)) == 1
    assert consumer.handle(message, lambda e: None) is Outcome.ACKED
    assert pending(r) == []
    r.xadd(DLR, dlr(1))
    [again] = consumer.read()
    r.xdel(DLR, again.id)
    gone = Message(DLR, again.id, None, again.deliveries)
    assert consumer.handle(gone, lambda e: 1 / 0) is Outcome.GONE
    assert pending(r) == []


def test_a_consumer_dead_letter_honours_the_dead_letter_contract(redis_server, r):
    r.xadd(DLR, {"kind": "dlr", "mobile": "x"})
    assert group(redis_server).run(lambda e: None, limit=1) == 1
    [(_, letter)] = r.xrange(DEAD)
    assert events.check({k.decode(): v.decode() for k, v in letter.items()}, "deadletter") == {}
