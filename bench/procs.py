"""The processes under test: gunicorn servers, and what /proc says about their workers."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from receiver.redis_server import free_port

ROOT = Path(__file__).resolve().parent.parent
_TICK = os.sysconf("SC_CLK_TCK")


def parser_options() -> list[str]:
    """The request parser the receiver's config asks for (receiver/gunicorn_conf.py), for every
    app: with gunicorn_h1c installed the other apps would otherwise parse with its C parser and
    the receiver not. (gunicorn < 25 has no such setting, only the Python parser.)"""
    from gunicorn.config import KNOWN_SETTINGS

    from receiver.gunicorn_conf import http_parser
    return (["--http-parser", http_parser]
            if any(setting.name == "http_parser" for setting in KNOWN_SETTINGS) else [])


def cpu_set(text: str) -> set[int]:
    """The cpus of a taskset-style list: `3`, `0-2`, `0,2-3`."""
    cpus: set[int] = set()
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    return cpus


def children(pid: int) -> list[int]:
    """Direct children of a process (gunicorn's workers, for its master)."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: fields follow the last ')'.
        if int(stat.rsplit(b")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


def rss_mb(pid: int) -> float:
    """Resident set size of a process now, in MiB (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used, in seconds."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK
    except OSError:
        return 0.0


class Gunicorn:
    """One app under gunicorn on 127.0.0.1, no access log."""

    def __init__(self, app: str, *, workers: int, env: dict[str, str], logdir: Path,
                 cpus: str | None = None, name: str | None = None,
                 worker_class: str = "sync", threads: int = 1) -> None:
        self.app = app
        self.workers = workers
        self.worker_class = worker_class
        self.threads = threads
        self.env = env
        self.cpus = cpus
        self.port = free_port()
        self.name = name or app
        self.log = logdir / f"gunicorn-{self.name.replace(':', '_')}-{workers}w.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> "Gunicorn":
        # The same worker settings for every app: worker class and threads as asked, a
        # listening socket per worker (SO_REUSEPORT, as the receiver's defaults: on one shared
        # socket one gthread worker often takes all of wrk's connections), a deep backlog, no
        # access log, warnings only, the Python request parser (see parser_options).
        command = [sys.executable, "-m", "gunicorn", "--worker-class", self.worker_class,
                   "--threads", str(self.threads), "--reuse-port",
                   "--workers", str(self.workers), "--bind", f"127.0.0.1:{self.port}",
                   "--backlog", "2048", "--timeout", "60", "--log-level", "warning",
                   "--error-logfile", "-", *parser_options(), self.app]
        if self.cpus:
            command = ["taskset", "-c", self.cpus] + command
        path = os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH"))))
        env = {**os.environ, **self.env, "PYTHONPATH": path}
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(command, env=env, cwd=ROOT, stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn {self.app} exited with {self.process.returncode}; "
                                   f"log {self.log}:\n{self.log.read_text()[-2000:]}")
            if len(self.worker_pids()) == self.workers and self._answers():
                return self
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"gunicorn {self.app} did not start; see {self.log}")
            time.sleep(0.1)

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def worker_pids(self) -> list[int]:
        return children(self.process.pid) if self.process else []

    def stop(self) -> None:
        """SIGTERM the master (it stops its workers); SIGKILL the group past 20 s."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def __enter__(self) -> "Gunicorn":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Watch:
    """Samples the workers' RSS during a load run and their CPU time across it."""

    def __init__(self, pids: list[int], interval: float = 0.2) -> None:
        self.pids = pids
        self.interval = interval
        self.peak_rss_mb = 0.0
        self.cpu = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while True:
            self.peak_rss_mb = max([self.peak_rss_mb] + [rss_mb(p) for p in self.pids])
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> "Watch":
        self._cpu0 = sum(cpu_seconds(p) for p in self.pids)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_rss_mb = max([self.peak_rss_mb] + [rss_mb(p) for p in self.pids])
        self.cpu = sum(cpu_seconds(p) for p in self.pids) - self._cpu0
