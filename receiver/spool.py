"""The local spool: where a push's entries go when Redis cannot take them, so the vendor still
gets its ack and nothing is lost.

Each worker appends to a spool file of its own, holding an exclusive flock on it while it is
the one writing (taken before the file gets its `.spool` name, so no replayer ever sees it
unlocked), and hands it over once Redis takes pushes again or it has been idle a replay tick. A record is framed `length, crc32, payload` and fsync'ed before the view
answers. A torn tail (a worker killed mid-write, before it acked) fails its checksum and is
dropped; everything before it is intact. Files no process holds are drained by `Replayer`
into Redis, in order, through the same publish (and so the same dedupe); a file is removed
only once all of it is in Redis, so a replayer killed mid-drain leaves it for the next one,
and the dedupe removes what was already published.
"""
from __future__ import annotations

import base64
import fcntl
import json
import logging
import os
import socket
import struct
import threading
import time
import zlib
from pathlib import Path
from typing import Callable, Iterator, Sequence

import redis

log = logging.getLogger("receiver.spool")

Entry = tuple[str, str, dict]  # (kind, dedupe id, fields)
_HEADER = struct.Struct(">II")  # payload length, crc32


class SpoolError(OSError):
    """The spool could not take the entries (disk full, unwritable directory, ...)."""


def _encode(entries: Sequence[Entry]) -> bytes:
    rows = [[kind, dedupe, {k: ({"b64": base64.b64encode(v).decode()} if isinstance(v, bytes)
                                else v) for k, v in fields.items()}]
            for kind, dedupe, fields in entries]
    return json.dumps(rows, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")


def _decode(payload: bytes) -> list[Entry]:
    rows = json.loads(payload.decode("utf-8", "surrogatepass"))
    return [(kind, dedupe, {k: (base64.b64decode(v["b64"]) if isinstance(v, dict) else v)
                            for k, v in fields.items()}) for kind, dedupe, fields in rows]


def read(path: Path) -> Iterator[list[Entry]]:
    """The intact records of a spool file, in order; stops at a torn or corrupt tail."""
    with open(path, "rb") as handle:
        while True:
            header = handle.read(_HEADER.size)
            if len(header) < _HEADER.size:
                if header:
                    log.warning("spool %s: torn record header at the end, dropped (it was never "
                                "acked)", path)
                return
            length, crc = _HEADER.unpack(header)
            payload = handle.read(length)
            if len(payload) < length or zlib.crc32(payload) != crc:
                log.warning("spool %s: torn record at the end, dropped (it was never acked)", path)
                return
            yield _decode(payload)


class Spool:
    """A directory of spool files; `append` is called by the view when Redis fails."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._lock = threading.Lock()
        self._file: int | None = None
        self._path: Path | None = None
        self._appended = 0.0  # time.monotonic() of the last append

    def append(self, entries: Sequence[Entry]) -> None:
        """Write one push's entries durably (fsync) or raise SpoolError."""
        payload = _encode(entries)
        record = _HEADER.pack(len(payload), zlib.crc32(payload)) + payload
        with self._lock:
            try:
                if self._file is None:
                    self._open()
                written = os.write(self._file, record)
                if written != len(record):
                    raise OSError(f"short write to {self._path}")
                os.fsync(self._file)
                self._appended = time.monotonic()
            except OSError as problem:
                self._close()
                raise SpoolError(f"spool {self.directory} cannot take the push: {problem}") from problem

    @property
    def writing(self) -> bool:
        """This process holds a spool file open (and locked)."""
        return self._file is not None

    def release(self) -> None:
        """Stop writing to the current file (Redis is back): it becomes the replayer's."""
        with self._lock:
            self._close()

    def release_idle(self, idle: float) -> bool:
        """Release the current file when nothing was appended for `idle` seconds, so that a
        replayer can drain it even if this process gets no further push."""
        with self._lock:
            if self._file is None or time.monotonic() - self._appended < idle:
                return False
            self._close()
            return True

    def _open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{socket.gethostname()}-{os.getpid()}"
        # Created under a name replayers do not list, locked, then renamed: a replayer that
        # found the file between its creation and the flock would take it for an abandoned
        # empty file and unlink it, and the records acked from it would be lost.
        fresh, path = self.directory / f"{name}.new", self.directory / f"{name}.spool"
        fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.rename(fresh, path)
        except OSError:
            os.close(fd)
            fresh.unlink(missing_ok=True)
            raise
        self._file, self._path = fd, path
        # Make the new file's name durable too.
        directory = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def _close(self) -> None:
        if self._file is not None:
            try:
                os.close(self._file)  # also drops the flock
            except OSError:
                pass
        self._file = self._path = None

    def pending(self) -> list[Path]:
        """Spool files, oldest first."""
        try:
            return sorted(self.directory.glob("*.spool"))
        except OSError:
            return []


class Replayer:
    """Drains spool files that no live writer holds into Redis, oldest first."""

    def __init__(self, spool: Spool, publish: Callable[[Sequence[Entry]], object]) -> None:
        self.spool = spool
        self.publish = publish

    def drain(self) -> int:
        """Replay every unheld spool file; returns how many pushes were replayed.

        Raises what `publish` raises when Redis is unreachable: the file stays for the next
        try. A file Redis refuses (an error answer) is set aside as `.poison`.
        """
        replayed = 0
        for path in self.spool.pending():
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue  # another replayer finished it
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live worker is still writing it, or another replayer has it
                if not path.exists():
                    continue
                try:
                    for entries in read(path):
                        self.publish(entries)
                        replayed += 1
                except redis.ResponseError as problem:
                    # Redis answered, and refused: retrying will not help, and this file must
                    # not block the ones after it. It stays on disk, renamed, for an operator.
                    path.rename(path.with_suffix(".poison"))
                    log.error("spool %s refused by Redis (%s): kept as %s.poison; rename it back "
                              "to .spool to retry", path.name, problem, path.stem)
                    continue
                path.unlink()
                log.info("spool %s replayed into Redis", path.name)
            finally:
                os.close(fd)
        return replayed

    def run_forever(self, stop: threading.Event, interval: float = 1.0) -> None:
        """Background loop (one per worker): drain whenever there is something to drain."""
        while not stop.wait(interval):
            # This process' own file, once idle, goes to the replayers: otherwise it would wait
            # for this worker's next successful push, however long that takes.
            self.spool.release_idle(interval)
            if not self.spool.pending():
                continue
            try:
                self.drain()
            except Exception as problem:  # Redis still down: try again next tick
                log.debug("spool replay deferred: %s", problem)


class DurableStore:
    """Redis first, the spool when Redis fails or is slow: what the view acks on.

    Also runs, lazily in each serving process (after gunicorn's fork), the replayer thread
    that drains spool files back into Redis.
    """

    def __init__(self, publish: Callable[[Sequence[Entry]], list[bool]], spool: Spool,
                 replay_interval: float = 1.0) -> None:
        self.publish = publish
        self.spool = spool
        self.replayer = Replayer(spool, publish)
        self.replay_interval = replay_interval
        self._stop = threading.Event()
        self._pid: int | None = None
        # Start replaying now, not at the first push: files left by a previous run (or by a
        # killed worker) must reach Redis even if no vendor pushes for a while. A process
        # forked from this one (gunicorn --preload) starts its own at its first push.
        self._ensure_replayer()

    def store(self, entries: Sequence[Entry]) -> str:
        """Make the entries durable; returns how. Raises SpoolError when nothing could."""
        self._ensure_replayer()
        if not entries:
            return "nothing to store"
        try:
            added = self.publish(entries)
        except (redis.RedisError, OSError) as problem:  # down, timed out, refused, NotDurable
            log.warning("Redis did not take the push (%s); spooling it", problem)
            self.spool.append(entries)
            return "spooled"
        if self.spool.writing:
            self.spool.release()  # Redis is back: hand the spool file to the replayer
        return f"{added.count(False)} duplicates"

    def _ensure_replayer(self) -> None:
        if self.replay_interval <= 0 or self._pid == os.getpid():
            return
        self._pid = os.getpid()
        thread = threading.Thread(target=self.replayer.run_forever, name="spool-replayer",
                                  args=(self._stop, self.replay_interval), daemon=True)
        thread.start()
