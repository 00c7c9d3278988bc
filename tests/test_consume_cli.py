"""`receiver consume`, `receiver tail` and `receiver streams` as operators run them: real
subprocesses (signals) and a real Redis."""
from __future__ import annotations

import base64
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time

import pytest
import redis
from click.testing import CliRunner

from receiver import events
from receiver.cli import main

DLR, MO, DEAD = "sms:dlr", "sms:mo", "sms:deadletter"
RECEIVER = [sys.executable, "-c", "from receiver.cli import main; main()"]
FORM = "application/x-www-form-urlencoded"


class Reader:
    """Lines of a child's pipe, read by a thread, so that a test waits with a bound."""

    def __init__(self, pipe) -> None:
        self.lines: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._pump, args=(pipe,), daemon=True)
        self.thread.start()

    def _pump(self, pipe) -> None:
        for line in iter(pipe.readline, b""):
            self.lines.put(line)
        self.lines.put(None)

    def get(self, timeout: float = 20.0) -> bytes | None:
        return self.lines.get(timeout=timeout)

    def rest(self, timeout: float = 30.0) -> list[bytes]:
        """Every line up to the end of the pipe."""
        out = []
        while (line := self.get(timeout)) is not None:
            out.append(line)
        return out


def start(redis_server, *args: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen([*RECEIVER, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "RECEIVER_REDIS_URL": redis_server.url, **env})


def dlr(i: int, pad: int = 0) -> dict[str, str]:
    return events.complete({"kind": "dlr", "batch_id": "b" * (1 + pad), "mobile": f"+86139{i:08d}",
                            "status": "delivered", "vendor_status": "DELIVRD",
                            "raw": f"b,139{i:08d},DELIVRD"}, "topen", events.now())


def add(r: redis.Redis, n: int, pad: int = 0) -> list[dict[str, str]]:
    entries = [dlr(i, pad) for i in range(n)]
    for entry in entries:
        r.xadd(DLR, entry)
    return entries


def acked_ids(r: redis.Redis, group: str) -> set[str]:
    """Event ids of the entries the group has delivered and acked."""
    last = r.xinfo_groups(DLR)[0]["last-delivered-id"]
    pending = {row["message_id"] for row in r.xpending_range(DLR, group, "-", "+", 10_000)}
    return {fields[b"id"].decode() for entry_id, fields in r.xrange(DLR, "-", last)
            if entry_id not in pending}


def test_consume_prints_one_json_line_per_event_and_acks(redis_server, r):
    entries = add(r, 3)
    child = start(redis_server, "consume", "dlr", "--group", "billing", "--consumer", "c1")
    out = Reader(child.stdout)
    got = [json.loads(out.get()) for _ in entries]
    child.send_signal(signal.SIGTERM)
    assert child.wait(30) == 0
    assert got == entries
    assert r.xpending(DLR, "billing")["pending"] == 0
    assert b"SIGTERM" in child.stderr.read()


def test_consume_speaks_cloudevents(app_factory, redis_server, r):
    client = app_factory().test_client()
    body = (b"account=acc1&GetReport=B1,13900000000,2014-06-10 15:34:11,DELIVRD|"
            b"B1,13900000001,UNDELIVRD|")
    assert client.post("/push/topen", data=body, content_type=FORM).data == b"ok"
    mo = b"account=acc1&GetMo=13900000002|,|%E9%80%80%E8%AE%A2|,|2014-06-10 15:34:11|;|"
    assert client.post("/push/topen", data=mo, content_type=FORM).data == b"ok"
    stored = {f[b"id"].decode(): {k.decode(): v.decode() for k, v in f.items()}
              for stream in (DLR, MO) for _, f in r.xrange(stream)}

    lines = []
    for stream in ("dlr", "mo"):
        done = subprocess.run([*RECEIVER, "consume", stream, "-g", "crm", "-c", "c1",
                               "--format", "cloudevents", "--limit", "2" if stream == "dlr" else "1"],
                              capture_output=True, timeout=60,
                              env={**os.environ, "RECEIVER_REDIS_URL": redis_server.url})
        assert done.returncode == 0, done.stderr
        lines += [json.loads(line) for line in done.stdout.splitlines()]
    delivered, undelivered, reply = lines
    assert delivered == {
        "specversion": "1.0", "id": delivered["data"]["id"], "source": "/vendors/topen",
        "type": "sms.dlr.delivered", "time": "2014-06-10T15:34:11+08:00",
        "datacontenttype": "application/json", "subject": "+8613900000000",
        "data": stored[delivered["data"]["id"]]}
    # No vendor time in a 3-field report: the time is when the receiver got it.
    assert (undelivered["type"], undelivered["time"], undelivered["subject"]) == \
        ("sms.dlr.undelivered", undelivered["data"]["received_at"], "+8613900000001")
    assert (reply["type"], reply["time"], reply["subject"], reply["data"]["text"]) == \
        ("sms.mo", "2014-06-10T15:34:11+08:00", "+8613900000002", "退订")
    assert {line["id"] for line in lines} == set(stored)


def test_dead_letters_print_their_raw_bytes_base64(app_factory, redis_server, r):
    body = "Class=rpt&x=退订".encode("gb18030") + b"\xff"
    client = app_factory().test_client()
    assert client.post("/push/topen", data=body, content_type=FORM).status_code == 200
    done = subprocess.run([*RECEIVER, "consume", "deadletter", "-g", "ops", "-c", "c1",
                           "--limit", "1", "--format", "cloudevents"], capture_output=True,
                          timeout=60, env={**os.environ, "RECEIVER_REDIS_URL": redis_server.url})
    assert done.returncode == 0, done.stderr
    [line] = done.stdout.splitlines()
    letter = json.loads(line)
    [(entry_id, _)] = r.xrange(DEAD)
    assert (letter["id"], letter["type"], letter["source"]) == \
        (entry_id.decode(), "sms.deadletter", "/vendors/topen")
    assert base64.b64decode(letter["data"]["body"]) == body


def test_sigterm_stops_consume_without_losing_an_entry(redis_server, r):
    # Long entries and a reader that does not read: the consumer soon blocks writing to a full
    # pipe, inside its handler, and SIGTERM arrives there.
    entries = add(r, 600, pad=300)
    child = start(redis_server, "consume", "dlr", "-g", "billing", "-c", "c1", "--count", "50")
    out = Reader(child.stdout)
    first = [out.get() for _ in range(5)]
    child.send_signal(signal.SIGTERM)
    printed = [json.loads(line)["id"] for line in first + out.rest()]
    assert child.wait(30) == 0
    assert len(printed) < len(entries)  # it stopped early...
    acked = acked_ids(r, "billing")
    assert acked == set(printed)  # ...having acked exactly what it printed

    # The same consumer, restarted, goes on where it stopped: its own pending entries first.
    rest = subprocess.run([*RECEIVER, "consume", "dlr", "-g", "billing", "-c", "c1",
                           "--limit", str(len(entries) - len(acked))], capture_output=True,
                          timeout=120, env={**os.environ, "RECEIVER_REDIS_URL": redis_server.url})
    assert rest.returncode == 0, rest.stderr
    again = [json.loads(line)["id"] for line in rest.stdout.splitlines()]
    assert sorted(printed + again) == sorted(e["id"] for e in entries)
    assert r.xpending(DLR, "billing")["pending"] == 0


def test_ctrl_c_stops_consume_cleanly(redis_server, r):
    add(r, 2)
    child = start(redis_server, "consume", "dlr", "-g", "billing", "-c", "c1")
    out = Reader(child.stdout)
    assert out.get() and out.get()
    child.send_signal(signal.SIGINT)
    assert child.wait(30) == 0
    assert out.rest() == []
    assert r.xpending(DLR, "billing")["pending"] == 0


def blocked_readers(r: redis.Redis) -> int:
    """Clients blocked in XREADGROUP right now."""
    return sum(1 for c in r.client_list() if c["cmd"] == "xreadgroup" and "b" in c["flags"])


def test_two_consume_processes_share_a_group(redis_server, r):
    r.xgroup_create(DLR, "billing", id="$", mkstream=True)
    children = [start(redis_server, "consume", "dlr", "-g", "billing", "-c", name)
                for name in ("a", "b")]
    readers = [Reader(child.stdout) for child in children]
    # Both wait for entries: the first XADD wakes one of them, the second the other.
    deadline = time.monotonic() + 30
    while blocked_readers(r) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    entries = add(r, 200)
    seen: list[list[str]] = [[], []]
    deadline = time.monotonic() + 60
    while len(seen[0]) + len(seen[1]) < len(entries):
        assert time.monotonic() < deadline, "the consumers stopped printing"
        for n, reader in enumerate(readers):
            try:
                line = reader.lines.get(timeout=0.05)
            except queue.Empty:
                continue
            assert line is not None
            seen[n].append(json.loads(line)["id"])
    for child in children:
        child.send_signal(signal.SIGTERM)
    for child, reader, ids in zip(children, readers, seen):
        assert child.wait(30) == 0
        ids += [json.loads(line)["id"] for line in reader.rest()]
    both = seen[0] + seen[1]
    assert len(both) == len(set(both)) == len(entries)
    assert seen[0] and seen[1]
    assert r.xpending(DLR, "billing")["pending"] == 0


def test_tail_shows_the_latest_and_then_new_entries(redis_server, r):
    old = add(r, 3)
    child = start(redis_server, "tail", "dlr", "--last", "2")
    out, err = Reader(child.stdout), Reader(child.stderr)
    assert [json.loads(out.get()) for _ in range(2)] == old[1:]
    assert b"tailing sms:dlr" in err.get()
    new = dlr(99)
    r.xadd(DLR, new)
    assert json.loads(out.get()) == new
    child.send_signal(signal.SIGTERM)
    assert child.wait(30) == 0
    assert out.rest() == []
    assert r.xinfo_groups(DLR) == []  # a tail is no group member


def test_an_unknown_stream_kind_is_refused(redis_server):
    done = subprocess.run([*RECEIVER, "consume", "sms:other", "-g", "g"], capture_output=True,
                          timeout=60, env={**os.environ, "RECEIVER_REDIS_URL": redis_server.url})
    assert done.returncode == 2 and b"dlr, mo, deadletter" in done.stderr


@pytest.fixture
def cli(redis_server, monkeypatch):
    monkeypatch.setenv("RECEIVER_REDIS_URL", redis_server.url)
    return CliRunner()


def test_streams_reports_length_times_groups_pending_lag(cli, r):
    entries = add(r, 5)
    ids = [entry_id.decode() for entry_id, _ in r.xrange(DLR)]
    r.xgroup_create(DLR, "billing", id="0")
    r.xreadgroup("billing", "b1", {DLR: ">"}, count=3)
    r.xack(DLR, "billing", ids[0])
    r.xgroup_create(DLR, "crm", id="$")
    result = cli.invoke(main, ["streams", "--json"])
    assert result.exit_code == 0, result.output
    dlr_stats, mo_stats, dead_stats = map(json.loads, result.output.splitlines())
    assert (mo_stats["name"], mo_stats["exists"], dead_stats["exists"]) == (MO, False, False)
    assert (dlr_stats["length"], dlr_stats["first_id"], dlr_stats["last_id"]) == (5, ids[0], ids[4])
    assert dlr_stats["first_time"].endswith("+00:00")
    billing, crm = sorted(dlr_stats["groups"], key=lambda g: g["name"])
    assert (billing["pending"], billing["lag"], billing["oldest_pending_id"]) == (2, 2, ids[1])
    assert billing["oldest_pending_age"] >= 0
    assert [(c["name"], c["pending"]) for c in billing["consumers"]] == [("b1", 2)]
    assert (crm["pending"], crm["lag"], crm["consumers"]) == (0, 0, [])
    assert len(entries) == 5

    text = cli.invoke(main, ["streams"]).output
    assert "sms:dlr: 5 entries" in text and "sms:mo: no such stream" in text
    assert "group billing: 1 consumer, pending 2, lag 2" in text
    assert "consumer b1: pending 2" in text


def test_streams_counts_the_lag_when_redis_cannot(cli, r):
    add(r, 6)
    ids = [entry_id.decode() for entry_id, _ in r.xrange(DLR)]
    r.xgroup_create(DLR, "billing", id="0")
    r.xreadgroup("billing", "b1", {DLR: ">"}, count=2)
    r.xdel(DLR, ids[3])  # a deletion past the group's position: Redis reports no lag
    assert r.xinfo_groups(DLR)[0]["lag"] is None
    result = cli.invoke(main, ["streams", "--json", "dlr"])
    [stats] = map(json.loads, result.output.splitlines())
    assert (stats["groups"][0]["lag"], stats["groups"][0]["lag_exact"]) == (3, True)
