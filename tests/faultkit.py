"""Fault-injection kit: real redis-server and gunicorn processes, a push generator whose every
record has a known identity, and the reconciliation `pushed = on streams + dead letters`.

Shared by tests/test_faults.py, tests/test_hostile.py and bench/resilience.py. Nothing here
sleeps as an assertion: every wait polls with a deadline.
"""
from __future__ import annotations

import http.client
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import redis

from receiver.redis_server import RedisServer, free_port, stop_process

from .e2e import children, wait_for

ROOT = Path(__file__).resolve().parent.parent  # the repository root: wsgi.py lives there
FORM = "application/x-www-form-urlencoded"




# --- Redis -------------------------------------------------------------------------------------

class DebugRedisServer(RedisServer):
    """A RedisServer that also accepts DEBUG (SLEEP) from local clients: Valkey and Redis >= 7
    refuse DEBUG unless started with `--enable-debug-command`, a setting CONFIG SET cannot
    change. Otherwise RedisServer's start, on the same port across restarts."""

    def __init__(self, directory, **options) -> None:
        super().__init__(directory, extra_args=("--enable-debug-command", "local"), **options)

    def kill(self) -> None:
        """SIGKILL: no AOF flush, no goodbye."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def client(server: RedisServer) -> redis.Redis:
    return redis.Redis(port=server.port, socket_timeout=10)


# --- gunicorn ----------------------------------------------------------------------------------

def gunicorn_env(redis_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """os.environ without RECEIVER_* variables, plus the receiver's settings for a fault run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECEIVER_")}
    env.update(RECEIVER_REDIS_URL=redis_url, RECEIVER_DATA_DIR=str(data_dir),
               RECEIVER_REPLAY_INTERVAL="0.2", RECEIVER_REDIS_TIMEOUT="0.5")
    env.update(extra)
    return env


class Gunicorn:
    """`gunicorn -c python:receiver.gunicorn_conf wsgi:app` on 127.0.0.1, output to a file."""

    def __init__(self, env: Mapping[str, str], *, workers: int = 2, port: int | None = None) -> None:
        self.env = dict(env)
        self.workers = workers
        self.port = port or free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="faults-gunicorn-", suffix=".log",
                                               delete=False)
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> "Gunicorn":
        command = [sys.executable, "-m", "gunicorn", "-c", "python:receiver.gunicorn_conf",
                   "--bind", f"127.0.0.1:{self.port}", "--workers", str(self.workers), "wsgi:app"]
        self.process = subprocess.Popen(command, env=self.env, cwd=ROOT, stdin=subprocess.DEVNULL,
                                        stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(self._ready, timeout, lambda: f"gunicorn on port {self.port}:\n{self.output()}")
        return self

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"gunicorn exited with {self.process.returncode}:\n"
                                 f"{self.output()[-3000:]}")
        if len(self.worker_pids()) < self.workers:
            return False
        answer = request(self.port, "GET", "/healthz", timeout=2)
        return answer is not None and answer[0] == 200

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def worker_pids(self) -> list[int]:
        return sorted(children(self.process.pid)) if self.process else []

    def kill_worker(self, rng: random.Random | None = None) -> int | None:
        """SIGKILL one worker (gunicorn's master starts another); its pid, None if none was up."""
        pids = self.worker_pids()
        if not pids:
            return None
        pid = (rng or random).choice(pids)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return None
        return pid

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (graceful: workers finish their request), SIGKILL if that takes too long."""
        if self.process:
            stop_process(self.process, timeout)

    def __enter__(self) -> "Gunicorn":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.log.close()
        os.unlink(self.log.name)


def request(port: int, method: str, path: str, body: bytes = b"",
            headers: Mapping[str, str] | None = None,
            timeout: float = 10.0) -> tuple[int, bytes] | None:
    """One HTTP request on a fresh connection: (status, body), or None when no answer came
    (connection refused or reset, a worker killed mid-request, a timeout)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=dict(headers or {}))
        response = connection.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def raw_exchange(port: int, data: Iterable[bytes], *, pause: float = 0.0,
                 timeout: float = 10.0) -> bytes:
    """Send raw request bytes in chunks (`pause` s apart: a slow client), then read the answer
    until the server closes; returns whatever came back (b"" if nothing did)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        for chunk in data:
            sock.sendall(chunk)
            if pause:
                time.sleep(pause)
        answer = b""
        try:
            while True:
                part = sock.recv(65536)
                if not part:
                    break
                answer += part
        except OSError:
            pass
        return answer


# --- pushes with known records -----------------------------------------------------------------

@dataclass
class Push:
    """One topen push of `dlr` report records and `dead` bad records, identities known."""

    number: int
    body: bytes
    dlr: list[tuple[str, str]]   # (batch_id, mobile as published) per good record
    dead: list[str]              # per bad record, its unique text (the dead letter's `record`)
    path: str = "/push/topen"
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": FORM})
    status: int | None = None    # the answer the client got, None while there was none
    attempts: int = 0


class PushGen:
    """Real-shaped topen report batches; every record is unique (batch id + mobile), and a
    bad record carries a unique token, so each can be found on the streams and counted."""

    def __init__(self, run: str = "7", *, records: int = 20, bad_every: int = 5) -> None:
        self.run = run
        self.records = records
        self.bad_every = bad_every
        self._number = 0
        self._mobile = 0

    def next(self) -> Push:
        self._number += 1
        n = self._number
        batch = f"{self.run}{n:09d}"
        parts, dlr, dead = [], [], []
        for i in range(self.records):
            self._mobile += 1
            mobile = f"139{self._mobile:08d}"
            code = ("DELIVRD", "UNDELIVRD", "MK:0001")[i % 3]
            if i % 4 == 1:
                parts.append(f"{batch},{mobile},2014-06-10 15:34:{i % 60:02d},{code}")
            else:
                parts.append(f"{batch},{mobile},{code}")
            dlr.append((batch, "+86" + mobile))
        if self.bad_every and n % self.bad_every == 0:
            token = f"bad{self.run}x{n}"
            parts.append(token)  # one field: "a report has 3 or 4 fields" -> dead letter
            dead.append(token)
        body = f"account=acc{self.run}&GetReport={'|'.join(parts)}|".encode()
        return Push(number=n, body=body, dlr=dlr, dead=dead)


def send(port: int, push: Push, timeout: float = 10.0) -> int | None:
    """POST a push once; records the answer's status on it."""
    push.attempts += 1
    answer = request(port, "POST", push.path, push.body, push.headers, timeout=timeout)
    push.status = answer[0] if answer else None
    return push.status


# --- reconciliation ----------------------------------------------------------------------------

def stream_counts(r: redis.Redis, prefix: str = "sms") -> tuple[Counter, Counter, int]:
    """(dlr Counter by (batch_id, mobile), dead-letter Counter by `record`, mo count)."""
    dlr: Counter = Counter()
    for _id, fields in _xrange_all(r, f"{prefix}:dlr"):
        dlr[(fields[b"batch_id"].decode(), fields[b"mobile"].decode())] += 1
    dead: Counter = Counter()
    for _id, fields in _xrange_all(r, f"{prefix}:deadletter"):
        dead[fields.get(b"record", b"").decode(errors="replace")] += 1
    return dlr, dead, r.xlen(f"{prefix}:mo")


def _xrange_all(r: redis.Redis, stream: str, page: int = 5000):
    start = "-"
    while True:
        chunk = r.xrange(stream, min=start, count=page)
        yield from chunk
        if len(chunk) < page:
            return
        start = "(" + chunk[-1][0].decode()


@dataclass
class Tally:
    """One scenario's books: what was sent and acked against what is on the streams."""

    pushes: int = 0
    acked_pushes: int = 0
    records_acked: int = 0      # good records + bad records of pushes answered 200
    on_streams: int = 0         # entries of the pushes' records on sms:dlr
    dead_letters: int = 0       # entries on sms:deadletter for the pushes' bad records
    duplicates: int = 0         # entries beyond the first, per record identity
    duplicate_letters: int = 0  # of which dead letters
    lost: int = 0               # acked records found on no stream
    unexpected: int = 0         # entries matching no record that was sent
    missing_unacked: int = 0    # records of unanswered pushes not on a stream (allowed)

    @property
    def exact(self) -> bool:
        return self.lost == 0 and self.duplicates == 0 and self.unexpected == 0

    def line(self) -> str:
        return (f"pushes={self.pushes} acked={self.acked_pushes} records_acked={self.records_acked}"
                f" on_streams={self.on_streams} dead_letters={self.dead_letters}"
                f" duplicates={self.duplicates} (dead letters {self.duplicate_letters})"
                f" lost={self.lost} unexpected={self.unexpected}")


def reconcile(r: redis.Redis, pushes: list[Push], prefix: str = "sms") -> Tally:
    """Count every record of `pushes` on the streams: acked ones must be there exactly once,
    unanswered ones at most once, and nothing else may be there."""
    dlr, dead, _mo = stream_counts(r, prefix)
    tally = Tally(pushes=len(pushes))
    known_dlr: set = set()
    known_dead: set = set()
    for push in pushes:
        acked = push.status == 200
        tally.acked_pushes += acked
        for items, counter, known in ((push.dlr, dlr, known_dlr), (push.dead, dead, known_dead)):
            letters = counter is dead
            for key in items:
                known.add(key)
                count = counter.get(key, 0)
                if acked:
                    tally.records_acked += 1
                    tally.lost += count == 0
                elif count == 0:
                    tally.missing_unacked += 1
                tally.duplicates += max(count - 1, 0)
                tally.duplicate_letters += max(count - 1, 0) if letters else 0
    tally.on_streams = sum(c for k, c in dlr.items() if k in known_dlr)
    tally.dead_letters = sum(c for k, c in dead.items() if k in known_dead)
    tally.unexpected = (sum(c for k, c in dlr.items() if k not in known_dlr)
                        + sum(c for k, c in dead.items() if k not in known_dead))
    return tally


def spool_files(data_dir: Path) -> list[Path]:
    return sorted((Path(data_dir) / "spool").glob("*.spool"))
