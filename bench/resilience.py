"""The resilience report (issue 3, item 6): real-shaped pushes against the receiver under
gunicorn (2 workers) and a real redis-server, and per scenario the books:

    pushes sent, records acked, records on the streams, dead letters, duplicates, lost.

(a) Redis stopped for 10 s mid-run; (b) a worker SIGKILLed every second, the vendors resending
what got no answer; (c) 10,000 hostile inputs: seeded random mutations of real pushes of every
vendor, some sent chunked, some by a client that goes away mid-body (and resends).

    python bench/resilience.py [--quick] [--seed N]

The full output goes to bench/results/resilience.txt (--quick: resilience-quick.txt).
"""
from __future__ import annotations

import argparse
import random
import re
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from receiver import events  # noqa: E402
from receiver.redis_server import RedisServer  # noqa: E402
from tests.faultkit import (FORM, Gunicorn, PushGen, client, gunicorn_env,  # noqa: E402
                            raw_exchange, reconcile, send, spool_files, wait_for)

RESULTS = ROOT / "bench" / "results"
MAX_BODY = 64 * 1024


@dataclass
class Row:
    scenario: str
    pushes: int
    attempts: int
    acked: int
    records_acked: int
    on_streams: int
    dead_letters: int
    duplicates: int
    lost: int
    seconds: float
    notes: list[str] = field(default_factory=list)


def _vendors(port: int, gen: PushGen, stop: threading.Event, pushes: list, lock: threading.Lock,
             clients: int = 3) -> list[threading.Thread]:
    """Vendor threads pushing batches until `stop`, each resending a push until its 200."""
    def vendor() -> None:
        while not stop.is_set():
            with lock:
                push = gen.next()
                pushes.append(push)
            while send(port, push, timeout=15) != 200 and push.attempts < 50:
                time.sleep(0.05)
    threads = [threading.Thread(target=vendor, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    return threads


def _books(name: str, server: RedisServer, data: Path, pushes: list, started: float) -> Row:
    wait_for(lambda: not spool_files(data), 60, "the spool to drain")
    tally = reconcile(client(server), pushes)
    row = Row(name, len(pushes), sum(p.attempts for p in pushes), tally.acked_pushes,
              tally.records_acked, tally.on_streams, tally.dead_letters, tally.duplicates,
              tally.lost, time.monotonic() - started)
    if tally.duplicates:
        row.notes.append(f"duplicates: {tally.duplicate_letters} dead letters, "
                         f"{tally.duplicates - tally.duplicate_letters} events")
    if tally.unexpected:
        row.notes.append(f"{tally.unexpected} entries matching no record sent")
    unanswered = [p for p in pushes if p.status != 200]
    if unanswered:
        row.notes.append(f"{len(unanswered)} pushes never answered 200 after 50 attempts")
    return row


def redis_outage(tmp: Path, quick: bool) -> Row:
    """(a) Redis stopped for 10 s (quick: 3 s) in the middle of a stream of pushes."""
    before, outage, after = (1, 3, 1) if quick else (8, 10, 8)
    redis_server = RedisServer(tmp / "redis-a", persistent=True).start()
    data = tmp / "data-a"
    pushes: list = []
    stop, lock = threading.Event(), threading.Lock()
    started = time.monotonic()
    try:
        with Gunicorn(gunicorn_env(redis_server.url, data, RECEIVER_MAX_BODY=str(MAX_BODY))) as web:
            threads = _vendors(web.port, PushGen("1", records=20, bad_every=5), stop, pushes, lock)
            time.sleep(before)
            redis_server.stop()
            time.sleep(outage)
            redis_server.start()
            time.sleep(after)
            stop.set()
            for thread in threads:
                thread.join(60)
            row = _books("(a) Redis stopped %d s mid-run" % outage, redis_server, data, pushes,
                         started)
    finally:
        redis_server.stop()
    return row


def worker_kills(tmp: Path, quick: bool) -> Row:
    """(b) A gunicorn worker SIGKILLed every second; vendors resend unanswered pushes."""
    seconds = 4 if quick else 20
    redis_server = RedisServer(tmp / "redis-b", persistent=False).start()
    data = tmp / "data-b"
    pushes: list = []
    stop, lock = threading.Event(), threading.Lock()
    started = time.monotonic()
    kills = 0
    rng = random.Random(2)
    try:
        with Gunicorn(gunicorn_env(redis_server.url, data, RECEIVER_MAX_BODY=str(MAX_BODY))) as web:
            threads = _vendors(web.port, PushGen("2", records=100, bad_every=5), stop, pushes, lock)
            for _ in range(seconds):
                time.sleep(1)
                kills += web.kill_worker(rng) is not None
            stop.set()
            for thread in threads:
                thread.join(60)
            row = _books(f"(b) a worker SIGKILLed every second ({kills} kills)", redis_server,
                         data, pushes, started)
    finally:
        redis_server.stop()
    resent = sum(p.attempts > 1 for p in pushes)
    row.notes.append(f"{resent} pushes were resent after getting no answer")
    return row


# --- (c) hostile inputs --------------------------------------------------------------------------

TOKEN = re.compile(rb"H\d{6}r\d{2}")
XML_TEXT = "退订".encode()
CONTENT_TYPES = [FORM, None, "text/xml", "application/json", "multipart/form-data",
                 "multipart/form-data; boundary=zz", "text/plain; charset=gb2312", "\x7f;;="]


def _good(n: int, rng: random.Random) -> tuple[str, bytes, bytes, str | None, list[bytes]]:
    """A real-shaped push of a random vendor: (vendor, query, body, content type, tokens)."""
    vendor = rng.choice(["topen", "winnerlook", "smsadmin", "returnsms"])
    count = rng.randint(1, 6)
    tokens = [b"H%06dr%02d" % (n, i) for i in range(count)]
    mobiles = [b"139%08d" % rng.randrange(10**8) for _ in tokens]
    if vendor in ("topen", "winnerlook"):
        if rng.random() < 0.7:
            records = [b"%s,%s,%s" % (t, m, rng.choice([b"DELIVRD", b"UNDELIVRD", b"MK:0001"]))
                       for t, m in zip(tokens, mobiles)]
            body = b"account=acc&GetReport=" + b"|".join(records) + b"|"
        else:
            text = rng.choice([b"%E9%80%80%E8%AE%A2", "退订".encode(), "退订".encode("gb2312"), b"TD"])
            records = [b"%s|,|%s %s|,|2014-06-10 15:34:11" % (m, text, t)
                       for t, m in zip(tokens, mobiles)]
            body = b"account=acc&GetMo=" + b"|;|".join(records) + b"|;|"
        return vendor, b"", body, FORM, tokens
    if vendor == "smsadmin":
        tokens = tokens[:1]
        body = (b"Class=%s&SmsName=acc&Mobile=%s&LinkId=%s&Report=DELIVRD&Message=%%CD%%CB%s"
                b"&ReportTime=2017-09-28 10:00:00" % (rng.choice([b"rpt", b"mo"]), mobiles[0],
                                                       tokens[0], tokens[0]))
        if rng.random() < 0.5:
            return vendor, body, b"", None, tokens
        return vendor, b"", body, FORM, tokens
    boxes = b"".join(
        (b"<statusbox><mobile>%s</mobile><taskid>%s</taskid><status>10</status>"
         b"<receivetime>2011-12-02 22:12:11</receivetime><errorcode>DELIVRD</errorcode></statusbox>"
         if i % 2 == 0 else
         b"<callbox><mobile>%s</mobile><taskid>%s</taskid><content>" + XML_TEXT +
         b"</content><receivetime>2011-12-02 22:12:11</receivetime></callbox>") % (m, t)
        for i, (t, m) in enumerate(zip(tokens, mobiles)))
    body = b'<?xml version="1.0" encoding="utf-8"?><returnsms>' + boxes + b"</returnsms>"
    return vendor, b"", body, "text/xml", tokens


BOMB = (ROOT / "tests" / "samples" / "returnsms_bomb.xml").read_bytes()
XXE = (ROOT / "tests" / "samples" / "returnsms_xxe.xml").read_bytes()
NASTY = [b"\x00", b"\xff", b"%", b"%zz", b"%E9%8", b"&", b"|", b"=", b",", b"|,|", b"|;|", b"<",
         b"\xcd\xcb", b"\r\n", b" ", b"+", b"&account=", b"&GetReport=", b"]]>", b"&#0;"]


def _mutate(body: bytes, rng: random.Random) -> tuple[bytes, str]:
    kind = rng.choice(["truncate", "insert", "delete", "flip", "duplicate", "recode", "escape",
                       "empty", "bomb", "huge", "over-limit", "none"])
    if kind == "truncate" and body:
        return body[: rng.randrange(len(body))], kind
    if kind == "insert":
        at = rng.randint(0, len(body))
        return body[:at] + rng.choice(NASTY) + body[at:], kind
    if kind == "delete" and body:
        at = rng.randrange(len(body))
        return body[:at] + body[at + rng.randint(1, 8):], kind
    if kind == "flip" and body:
        data = bytearray(body)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data), kind
    if kind == "duplicate" and body:
        at = rng.randrange(len(body))
        span = body[at: at + rng.randint(1, 40)]
        return body[:at] + span + body[at:], kind
    if kind == "recode":
        return body.replace("退订".encode(), "退订".encode("gb2312")).replace(
            b"%E9%80%80%E8%AE%A2", b"%CD%CB%B6%A9"), kind
    if kind == "escape":
        return body.replace(b"%", b"%%", 1) + b"&x=%G1%", kind
    if kind == "empty":
        return b"", kind
    if kind == "bomb":
        return rng.choice([BOMB, XXE]), kind
    if kind == "huge":
        return b"pad=" + b"x" * rng.randint(10_000, MAX_BODY - len(body) - 10) + b"&" + body, kind
    if kind == "over-limit":  # past the limit by a few bytes to a few records
        pad = MAX_BODY - len(body) + rng.choice([0, 1, 10, 100, 1000])
        return b"pad=" + b"x" * pad + b"&" + body, kind
    return body, "none"


def _chunked(body: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 4096]), body[i:i + 4096])
                    for i in range(0, len(body), 4096)) + b"0\r\n\r\n"


def _raw(port: int, method: str, target: bytes, headers: dict, body: bytes, *, chunked: bool,
         leave_after: int | None = None) -> int | None:
    """Send one request over a raw socket; its status, None without an answer."""
    head = [b"%s %s HTTP/1.1" % (method.encode(), target), b"Host: vendor", b"Connection: close"]
    head += [b"%s: %s" % (k.encode(), v.encode("latin-1")) for k, v in headers.items()]
    head.append(b"Transfer-Encoding: chunked" if chunked else b"Content-Length: %d" % len(body))
    data = b"\r\n".join(head) + b"\r\n\r\n" + (_chunked(body) if chunked else body)
    try:
        if leave_after is None:
            answer = raw_exchange(port, [data], timeout=20)
        else:  # a client that goes away mid-body: send part, half-close, read what comes
            with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
                sock.sendall(data[:leave_after])
                sock.shutdown(socket.SHUT_WR)
                answer = sock.recv(100)
    except OSError:
        return None
    return int(answer[9:12]) if answer.startswith(b"HTTP/1.1 ") else None


@dataclass
class Sent:
    tokens: list[bytes]         # tokens whose record is intact in what was sent
    status: int | None
    transport: str
    mutation: str
    vendor: str
    content_type: str | None


def hostile(tmp: Path, quick: bool, seed: int) -> Row:
    """(c) Hostile inputs: each must be answered (200, or a 4xx refusing it whole), and every
    record still intact in what was sent and acked must be on a stream (as an event, or in a
    dead letter's record or raw bytes)."""
    total = 1000 if quick else 10_000
    redis_server = RedisServer(tmp / "redis-c", persistent=False).start()
    data = tmp / "data-c"
    rng = random.Random(seed)
    plan = []
    for n in range(total):
        vendor, query, body, content_type, tokens = _good(n, rng)
        transport = rng.choices(["length", "chunked", "leaves"], [90, 7, 3])[0]
        mutation = "none"
        if transport != "leaves":
            body, mutation = _mutate(body, rng)
            if rng.random() < 0.15:
                content_type = rng.choice(CONTENT_TYPES)
        plan.append((vendor, query, body, content_type, tokens, transport, mutation))
    sent: list[Sent] = []
    lock = threading.Lock()
    started = time.monotonic()
    try:
        env = gunicorn_env(redis_server.url, data, RECEIVER_MAX_BODY=str(MAX_BODY))
        with Gunicorn(env) as web:
            work = iter(plan)

            def vendor_thread() -> None:
                while True:
                    with lock:
                        item = next(work, None)
                    if item is None:
                        return
                    vendor, query, body, content_type, tokens, transport, mutation = item
                    target = b"/push/" + vendor.encode() + (b"?" + query if query else b"")
                    headers = {"Content-Type": content_type} if content_type else {}
                    method = "POST" if body or not query else "GET"
                    if transport == "leaves":
                        _raw(web.port, method, target, headers, body, chunked=False,
                             leave_after=len(target) + 80 + len(body) // 2)
                        status = None
                        for _ in range(5):  # the vendor resends what got no answer
                            status = _raw(web.port, method, target, headers, body, chunked=False)
                            if status == 200:
                                break
                    else:
                        status = _raw(web.port, method, target, headers, body,
                                      chunked=transport == "chunked")
                    intact = [t for t in tokens if t in body or t in query]
                    with lock:
                        sent.append(Sent(intact, status, transport, mutation, vendor,
                                         content_type))

            threads = [threading.Thread(target=vendor_thread) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            wait_for(lambda: not spool_files(data), 60, "the spool to drain")
            r = client(redis_server)
            found: Counter = Counter()       # token -> events (dlr/mo) holding it
            covered: set[bytes] = set()      # tokens in any entry (events or dead letters)
            ids: Counter = Counter()
            dead = 0
            events_count = 0
            for stream in ("sms:dlr", "sms:mo", "sms:deadletter"):
                for _id, fields in r.xrange(stream):
                    blob = b"\x1e".join(fields.values())
                    tokens = set(TOKEN.findall(blob))
                    covered |= tokens
                    if stream == "sms:deadletter":
                        dead += 1
                        ids[events.letter_id({k.decode(): (v if k in (b"query", b"body")
                                                            else v.decode()) for k, v in
                                              fields.items()})] += 1
                    else:
                        events_count += 1
                        ids[fields[b"id"]] += 1
                        for token in tokens:
                            found[token] += 1
    finally:
        redis_server.stop()
    statuses = Counter(s.status for s in sent)
    acked = [s for s in sent if s.status == 200]
    refused = [s for s in sent if s.status not in (200, None)]
    records_acked = sum(len(s.tokens) for s in acked)
    lost_by: Counter = Counter()
    for s in acked:
        for token in s.tokens:
            if token not in covered:
                lost_by[(s.transport, s.mutation, s.vendor)] += 1
    # A record is one event at most: more than one event holding a clean push's record is a
    # duplicate (a mutated push may legitimately hold a record twice, slightly changed).
    clean = {t for s in sent if s.mutation == "none" for t in s.tokens}
    same_id = sum(c - 1 for c in ids.values() if c > 1)
    split = Counter(s.transport for s in sent for t in s.tokens if t in clean and found[t] > 1)
    duplicates = same_id + sum(found[t] - 1 for t in clean if found[t] > 1)
    row = Row(f"(c) {total:,} hostile inputs", len(sent), len(sent), len(acked), records_acked,
              events_count, dead, duplicates, sum(lost_by.values()),
              time.monotonic() - started)
    if duplicates:
        row.notes.append(f"duplicates: {same_id} entries with the same id; records of clean "
                         f"pushes in more than one event, by how they were sent: {dict(split)}")
    row.notes.append("answers: " + ", ".join(f"{k or 'none'}: {v}" for k, v in
                                             sorted(statuses.items(), key=lambda kv: str(kv[0]))))
    refused_with_records = sum(1 for s in refused for t in s.tokens if t in found)
    row.notes.append(f"{len(refused)} refused whole (4xx); records of refused pushes on a "
                     f"stream: {refused_with_records}")
    odd = Counter((s.transport, s.mutation, s.status, s.content_type) for s in sent
                  if s.status != 200 and s.mutation != "over-limit" or
                  s.mutation == "over-limit" and s.status != 413)
    for (transport, mutation, status, kind), count in odd.most_common(8):
        row.notes.append(f"{count} pushes sent {transport}, mutation {mutation}, content type "
                         f"{kind!r}: answered {status}")
    for (transport, mutation, vendor), count in lost_by.most_common(5):
        row.notes.append(f"lost {count} records: {vendor} pushes sent {transport}, "
                         f"mutation {mutation}")
    return row


def table(rows: list[Row]) -> str:
    head = ("scenario", "pushes sent", "attempts", "acked", "records acked", "on streams",
            "dead letters", "duplicates", "lost", "seconds")
    cells = [head] + [(r.scenario, f"{r.pushes:,}", f"{r.attempts:,}", f"{r.acked:,}",
                       f"{r.records_acked:,}", f"{r.on_streams:,}", f"{r.dead_letters:,}",
                       str(r.duplicates), str(r.lost), f"{r.seconds:.0f}") for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                       enumerate(zip(row, widths))) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for r in rows:
        for note in r.notes:
            lines.append(f"  {r.scenario[:3]} {note}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short run (about 20 s)")
    parser.add_argument("--seed", type=int, default=20240601, help="seed of the hostile inputs")
    parser.add_argument("--out", type=Path, default=None,
                        help="write the report here [default: bench/results/resilience*.txt]")
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="resilience-") as tmp:
        rows = [redis_outage(Path(tmp), args.quick), worker_kills(Path(tmp), args.quick),
                hostile(Path(tmp), args.quick, args.seed)]
    header = (f"resilience report{' (quick)' if args.quick else ''}: gunicorn 2 workers "
              f"(receiver.gunicorn_conf), redis-server, seed {args.seed}, "
              f"{time.monotonic() - started:.0f} s\n"
              "records acked = records of pushes answered 200 (records still intact in what was "
              "sent, for (c)); lost = acked records on no stream; duplicates = a record on the "
              "streams more than once\n")
    out = header + "\n" + table(rows) + "\n"
    print(out)
    target = args.out or RESULTS / ("resilience-quick.txt" if args.quick else "resilience.txt")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(out)


if __name__ == "__main__":
    main()
