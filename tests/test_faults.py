"""Fault injection with real processes (issue 3, items 2 and 3): redis-server stopped and
started, gunicorn workers SIGKILLed, Redis asleep, the spool unwritable, the receiver restarted,
a replay killed mid-drain, a torn spool tail. Each ends with exact books: every acked record is
on a stream exactly once, nothing is there twice, nothing unknown is there."""
from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis

from receiver import events
from receiver.spool import Replayer, Spool, _encode, read
from receiver.store import Publisher, Streams

from .faultkit import (FORM, DebugRedisServer, Gunicorn, PushGen, client, gunicorn_env,
                       reconcile, request, send, spool_files, wait_for)


@pytest.fixture
def own_redis(tmp_path):
    """A redis-server of this test's own (it gets stopped), persistent so a restart keeps what
    was published (AOF, flushed on SIGTERM)."""
    server = DebugRedisServer(tmp_path / "redis", persistent=True).start()
    yield server
    server.stop()


def _stream(port: int, gen: PushGen, count: int, pushes: list) -> None:
    for _ in range(count):
        push = gen.next()
        pushes.append(push)
        send(port, push)


def _drained(data_dir: Path) -> bool:
    return not spool_files(data_dir)


def test_redis_stopped_and_started_during_pushes(own_redis, tmp_path):
    """Every push acked while Redis is down comes from the spool; once Redis is back the
    replayers drain it, with no further push needed to wake them."""
    data = tmp_path / "data"
    gen, pushes = PushGen(records=20, bad_every=4), []
    with Gunicorn(gunicorn_env(own_redis.url, data)) as server:
        _stream(server.port, gen, 10, pushes)
        own_redis.stop()
        _stream(server.port, gen, 30, pushes)
        assert spool_files(data), "Redis was down: the pushes must be in the spool"
        own_redis.start()
        wait_for(lambda: _drained(data), 30, lambda: "the spool to drain into Redis\n" + server.output())
        _stream(server.port, gen, 10, pushes)
        r = client(own_redis)
        tally = reconcile(r, pushes)
    assert [p.status for p in pushes] == [200] * 50
    assert tally.records_acked == 50 * 20 + 50 // 4
    assert tally.exact, tally.line()
    assert (tally.on_streams, tally.dead_letters) == (50 * 20, 50 // 4)


@pytest.mark.parametrize("redis_down", [False, True], ids=["redis-up", "redis-down"])
def test_worker_sigkilled_during_pushes(own_redis, tmp_path, redis_down):
    """Workers SIGKILLed under a stream of pushes: every record of a push answered 200 is on
    the streams exactly once; pushes left unanswered are resent, and yield no duplicates."""
    data = tmp_path / "data"
    gen, pushes = PushGen(records=150, bad_every=0), []
    lock, done = threading.Lock(), threading.Event()

    with Gunicorn(gunicorn_env(own_redis.url, data)) as server:
        if redis_down:
            own_redis.stop()

        def vendor() -> None:
            while not done.is_set():
                with lock:
                    push = gen.next()
                    pushes.append(push)
                # A vendor resends until it gets its 200 (bounded, so the test ends).
                while send(server.port, push) != 200 and push.attempts < 20:
                    time.sleep(0.05)

        clients = [threading.Thread(target=vendor) for _ in range(3)]
        for thread in clients:
            thread.start()
        rng = random.Random(3)
        killed = []
        try:
            for _ in range(8):
                wait_for(lambda: len(server.worker_pids()) == 2, 30, "gunicorn to respawn a worker")
                wait_for(lambda: len(pushes) > 5 * (len(killed) + 1), 30, "pushes to flow")
                killed.append(server.kill_worker(rng))
        finally:
            done.set()
            for thread in clients:
                thread.join(60)
        assert all(killed)
        if redis_down:
            own_redis.start()
        wait_for(lambda: _drained(data), 30, lambda: "the spool to drain into Redis\n" + server.output())
        tally = reconcile(client(own_redis), pushes)
    assert all(p.status == 200 for p in pushes), [(p.number, p.status, p.attempts) for p in pushes]
    assert tally.records_acked == 150 * len(pushes)
    assert tally.exact, tally.line()
    assert tally.on_streams == tally.records_acked


def _asleep(port: int) -> bool:
    """Redis is asleep once a PING on a new connection gets no answer in 0.1 s (a raw socket:
    redis-py's default client would retry the timeout until Redis answers)."""
    with socket.create_connection(("127.0.0.1", port), timeout=0.1) as sock:
        sock.sendall(b"PING\r\n")
        try:
            return sock.recv(100) != b"+PONG\r\n"
        except TimeoutError:
            return True


@pytest.mark.parametrize("how", ["DEBUG SLEEP", "CLIENT PAUSE"])
def test_slow_redis_push_is_acked_from_the_spool_and_published_once(own_redis, tmp_path, how):
    """Redis busier than RECEIVER_REDIS_TIMEOUT: the push is acked from the spool. Redis runs
    the queued script when it wakes AND the replayer replays the spool: the dedupe absorbs it."""
    data = tmp_path / "data"
    gen = PushGen(records=30, bad_every=1)
    env = gunicorn_env(own_redis.url, data, RECEIVER_REDIS_TIMEOUT="0.3")
    with Gunicorn(env, workers=1) as server:
        warm = gen.next()
        assert send(server.port, warm) == 200  # the worker is connected and has its script
        sleeper = socket.create_connection(("127.0.0.1", own_redis.port))
        command = b"DEBUG SLEEP 3\r\n" if how == "DEBUG SLEEP" else b"CLIENT PAUSE 3000 ALL\r\n"
        sleeper.sendall(command)
        probe = redis.Redis(port=own_redis.port, socket_timeout=5)
        if how == "DEBUG SLEEP":
            wait_for(lambda: _asleep(own_redis.port), 5, "Redis to fall asleep")
        else:
            assert sleeper.recv(100) == b"+OK\r\n"
        push = gen.next()
        assert send(server.port, push) == 200
        assert "spooling it" in server.output()
        wait_for(lambda: probe.ping(), 10, "Redis to wake up")
        sleeper.close()
        wait_for(lambda: _drained(data), 30, lambda: "the spool to drain into Redis\n" + server.output())
        tally = reconcile(probe, [warm, push])
    assert tally.exact, tally.line()
    assert (tally.on_streams, tally.dead_letters) == (60, 2)


def test_spool_unwritable_and_redis_down_is_503_and_nothing_acked(own_redis, tmp_path):
    """Neither Redis nor the spool can take the push: 503, one line, nothing acked; once
    Redis is back the same pushes are taken (the spool is not needed then)."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a regular file: nothing can be created under it, even by root\n")
    env = gunicorn_env(own_redis.url, tmp_path / "data", RECEIVER_SPOOL_DIR=str(blocker / "spool"))
    gen = PushGen(records=10, bad_every=2)
    with Gunicorn(env) as server:
        own_redis.stop()
        refused = [gen.next() for _ in range(6)]
        for push in refused:
            answer = request(server.port, "POST", push.path, push.body, push.headers)
            assert answer is not None
            status, body = answer
            assert status == 503
            assert body.endswith(b"\n") and body.count(b"\n") == 1 and len(body) < 200, body
            assert b"nothing was accepted" in body
            push.status = status
        own_redis.start()
        for push in refused:  # the vendor retries: now they are taken
            assert send(server.port, push) == 200
        fresh = [gen.next() for _ in range(4)]
        for push in fresh:
            assert send(server.port, push) == 200
        tally = reconcile(client(own_redis), refused + fresh)
    assert tally.exact, tally.line()
    assert tally.records_acked == 10 * 10 + 5


def test_503_pushes_leave_nothing_on_the_streams(own_redis, tmp_path):
    """What was answered 503 is not on any stream (the vendor will resend it)."""
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    env = gunicorn_env(own_redis.url, tmp_path / "data", RECEIVER_SPOOL_DIR=str(blocker / "x"))
    gen = PushGen(records=5, bad_every=1)
    with Gunicorn(env, workers=1) as server:
        own_redis.stop()
        pushes = [gen.next() for _ in range(3)]
        assert [send(server.port, p) for p in pushes] == [503] * 3
        own_redis.start()
        r = client(own_redis)
        assert (r.xlen("sms:dlr"), r.xlen("sms:deadletter")) == (0, 0)
        tally = reconcile(r, pushes)
    assert (tally.records_acked, tally.on_streams, tally.dead_letters, tally.missing_unacked) == \
        (0, 0, 0, 18)


def test_spool_survives_a_restart_of_the_receiver(own_redis, tmp_path):
    """Pushes spooled by one gunicorn reach Redis through the next one on the same data dir,
    without waiting for a vendor's push to wake its workers."""
    data = tmp_path / "data"
    gen = PushGen(records=25, bad_every=3)
    pushes = []
    own_redis.stop()
    with Gunicorn(gunicorn_env(own_redis.url, data)) as first:
        _stream(first.port, gen, 12, pushes)
    assert [p.status for p in pushes] == [200] * 12
    kept = spool_files(data)
    assert kept and sum(len(list(read(path))) for path in kept) == 12
    own_redis.start()
    with Gunicorn(gunicorn_env(own_redis.url, data)) as second:
        wait_for(lambda: _drained(data), 30,
                 lambda: "the new receiver to drain the old spool\n" + second.output())
        tally = reconcile(client(own_redis), pushes)
    assert tally.exact, tally.line()
    assert (tally.on_streams, tally.dead_letters) == (12 * 25, 4)


# --- the spool and its replayer, driven directly -----------------------------------------------

def _entries(push_number: int, records: int = 4) -> list:
    """Real entries of one push: dlr events and a dead letter with raw bytes."""
    received = events.now()
    out = []
    for i in range(records):
        record = {"kind": "dlr", "batch_id": f"B{push_number}", "mobile": f"+86139{push_number:04d}{i:04d}",
                  "status": "delivered", "vendor_status": "DELIVRD", "raw": f"B{push_number},{i}",
                  "account": "acc"}
        event = events.complete(record, "topen", received)
        out.append(("dlr", event["id"], event))
    letter = {"vendor": "topen", "reason": "bad record: a report has 3 or 4 fields",
              "received_at": received, "method": "POST", "path": "/push/topen",
              "content_type": FORM, "query": b"", "body": b"\xff\x00raw %zz" + bytes([push_number % 256]),
              "record": f"bad{push_number}"}
    out.append(("deadletter", events.letter_id(letter), letter))
    return out


def _spooled(directory: Path, pushes: int) -> list[list]:
    spool = Spool(directory)
    written = [_entries(n) for n in range(pushes)]
    for entries in written:
        spool.append(entries)
    spool.release()
    return written


def _books(r: redis.Redis, written: list[list]) -> tuple[int, int, int]:
    """(entries on the streams, duplicates, missing) of the written entries."""
    expected = {dedupe for entries in written for _k, dedupe, _f in entries}
    seen: dict[str, int] = {}
    for stream in ("sms:dlr", "sms:deadletter"):
        for _id, fields in r.xrange(stream):
            key = (fields[b"id"].decode() if b"id" in fields else
                   events.letter_id({k.decode(): (v if k in (b"query", b"body") else v.decode())
                                     for k, v in fields.items()}))
            seen[key] = seen.get(key, 0) + 1
    assert set(seen) <= expected, "entries on the streams that were never spooled"
    return (sum(seen.values()), sum(c - 1 for c in seen.values()),
            len(expected - set(seen)))


def _publisher(r: redis.Redis) -> Publisher:
    return Publisher(r, Streams("sms"), dedupe_ttl=3600, retention=None)


class Crash(Exception):
    pass


def test_replay_interrupted_mid_drain_then_resumed(r, tmp_path):
    """A drain that dies after 3 of 6 pushes leaves the file; the next drain completes it and
    the dedupe removes what the first one had published."""
    written = _spooled(tmp_path / "spool", 6)
    publisher = _publisher(r)
    calls = []

    def dying(entries):
        if len(calls) == 3:
            raise Crash("killed")
        calls.append(publisher.publish(entries))

    with pytest.raises(Crash):
        Replayer(Spool(tmp_path / "spool"), dying).drain()
    assert len(spool_files(tmp_path)) == 1
    assert _books(r, written) == (15, 0, 15)
    assert Replayer(Spool(tmp_path / "spool"), publisher.publish).drain() == 6
    assert spool_files(tmp_path) == []
    assert _books(r, written) == (30, 0, 0)


_KILLED_DRAINER = """
import os, signal, sys, redis
from receiver.spool import Replayer, Spool
from receiver.store import Publisher, Streams
publisher = Publisher(redis.Redis(port=int(sys.argv[2])), Streams("sms"), dedupe_ttl=3600,
                      retention=None)
done = 0
def publish(entries):
    global done
    publisher.publish(entries)
    done += 1
    if done == int(sys.argv[3]):
        os.kill(os.getpid(), signal.SIGKILL)  # killed right after a publish, before the unlink
Replayer(Spool(sys.argv[1]), publish).drain()
"""


@pytest.mark.parametrize("survive", [1, 4, 7])
def test_replayer_process_sigkilled_mid_drain(r, redis_server, tmp_path, survive):
    """A real replayer process SIGKILLed mid-drain: its flock dies with it, the file stays,
    and another drain finishes it with exact counts."""
    written = _spooled(tmp_path / "spool", 8)
    process = subprocess.run([sys.executable, "-c", _KILLED_DRAINER, str(tmp_path / "spool"),
                              str(redis_server.port), str(survive)], timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert len(spool_files(tmp_path)) == 1
    assert _books(r, written) == (5 * survive, 0, 5 * (8 - survive))
    assert Replayer(Spool(tmp_path / "spool"), _publisher(r).publish).drain() == 8
    assert spool_files(tmp_path) == []
    assert _books(r, written) == (40, 0, 0)


@pytest.mark.parametrize("damage", ["mid-payload", "mid-header", "bad-crc"])
def test_torn_spool_tail_is_dropped_and_logged(r, tmp_path, caplog, damage):
    """A worker killed mid-write leaves a torn last record (it never acked it): the intact
    records replay, the torn one is dropped with a warning."""
    written = _spooled(tmp_path / "spool", 4)
    (path,) = spool_files(tmp_path)
    size = path.stat().st_size
    last = 8 + len(_encode(written[-1]))  # header + payload of the last record
    if damage == "mid-payload":
        os.truncate(path, size - last // 2)
    elif damage == "mid-header":
        os.truncate(path, size - last + 3)
    else:
        data = bytearray(path.read_bytes())
        data[-3] ^= 0xFF
        path.write_bytes(bytes(data))
    assert len(list(read(path))) == 3
    with caplog.at_level("WARNING", logger="receiver.spool"):
        assert Replayer(Spool(tmp_path / "spool"), _publisher(r).publish).drain() == 3
    assert "torn record" in caplog.text
    assert spool_files(tmp_path) == []
    assert _books(r, written[:3]) == (15, 0, 0)
    assert r.xlen("sms:dlr") + r.xlen("sms:deadletter") == 15


def test_replayer_between_a_writers_create_and_lock_loses_nothing(r, tmp_path, monkeypatch):
    """A replayer that runs right after a writer created its spool file and before the writer
    locked it must not take the (still empty) file: the push acked from it would be lost."""
    import fcntl

    spool_dir = tmp_path / "spool"
    publisher = _publisher(r)
    real_flock, raced = fcntl.flock, []

    def flock(fd, operation):
        if operation == fcntl.LOCK_EX and not raced:  # the writer's blocking lock, first time
            raced.append(Replayer(Spool(spool_dir), publisher.publish).drain())
        return real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", flock)
    spool = Spool(spool_dir)
    written = [_entries(1)]
    spool.append(written[0])  # the view would now answer 200
    spool.release()
    monkeypatch.setattr(fcntl, "flock", real_flock)
    assert raced == [0]
    assert Replayer(Spool(spool_dir), publisher.publish).drain() == 1
    assert _books(r, written) == (5, 0, 0)


def test_an_idle_spool_file_is_released_to_the_replayer(r, tmp_path):
    """The file a worker spooled into is drained once idle, without another push to it."""
    spool = Spool(tmp_path / "spool")
    written = [_entries(n) for n in range(3)]
    for entries in written:
        spool.append(entries)
    replayer = Replayer(spool, _publisher(r).publish)
    assert replayer.drain() == 0  # still held by its writer
    assert wait_for(lambda: spool.release_idle(0.05), 5, "the file to become idle")
    assert replayer.drain() == 3
    assert _books(r, written) == (15, 0, 0)


def test_a_resent_push_yields_no_duplicate_dead_letter(app_factory, r):
    """A worker killed after publishing but before answering: the vendor resends the push.
    Its good records are deduped; its bad record must be too."""
    push = PushGen(records=3, bad_every=1).next()
    client_ = app_factory().test_client()
    for _ in range(2):  # the first answer never reached the vendor
        assert client_.post(push.path, data=push.body, headers=push.headers).data == b"ok"
    push.status = 200
    tally = reconcile(r, [push])
    assert (tally.on_streams, tally.dead_letters, tally.duplicates) == (3, 1, 0), tally.line()


def test_a_spool_file_redis_refuses_is_set_aside_and_does_not_block_the_others(tmp_path, r):
    """A file whose publish Redis answers with an error (here: the stream key holds a string)
    is kept as .poison, and the files after it still replay."""
    from receiver.spool import Replayer, Spool
    from receiver.store import Publisher, Streams

    publisher = Publisher(r, Streams("sms"), dedupe_ttl=60, retention=None)
    spool = Spool(tmp_path / "spool")
    event = {"kind": "mo", "id": "0" * 32, "vendor": "topen", "mobile": "+8613900000000",
             "text": "hi", "raw": "13900000000|,|hi", "received_at": "2026-01-01T00:00:00.000+00:00"}
    r.set("poison:mo", "not a stream")
    spool.append([("mo", event["id"], event)])
    spool.release()
    spool.append([("mo", "1" * 32, {**event, "id": "1" * 32})])
    spool.release()
    first, second = spool.pending()
    poison_publisher = Publisher(r, Streams("poison"), dedupe_ttl=60, retention=None)
    calls = []

    def publish(entries):
        calls.append(entries)
        return (poison_publisher if len(calls) == 1 else publisher).publish(entries)

    assert Replayer(spool, publish).drain() == 1
    assert not first.exists() and first.with_suffix(".poison").exists()
    assert not second.exists()
    assert [e[b"id"] for _, e in r.xrange("sms:mo")] == [b"1" * 32]
