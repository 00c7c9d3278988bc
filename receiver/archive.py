"""The audit archive: every request that reaches the push view, kept as received, for
RECEIVER_ARCHIVE_DAYS (183 by default: the vendor agreements' clause 6 wants message logs kept
at least six months), and the `archive search` / `replay` commands that read it.

Layout: `<dir>/<YYYY-MM-DD>/<host>-<pid>-<start>.jsonl`, one JSON line per request, one file
per process and UTC day, so workers never interleave. A line is one `os.write`, not fsync'ed:
the spool is the durability mechanism; this is audit. A line holds the request (time, vendor,
method, path with any push secret masked, source address, headers, query and body as base64)
and its outcome (HTTP status, what the store answered, the ids and raw-record digests of the
events taken, the dead letters). A writer holds an flock on its open file; `maintain()` gzips
the files of past days that nobody holds and deletes days past retention. It runs at most
hourly, in a background thread started from `append`.

Replay re-decodes archived or dead-lettered pushes with today's adapters and publishes only
what was not taken before (see `replay`). Its publisher marks what it publishes as seen for
the archive's retention, not the live 48 h, so a second replay, weeks later, publishes nothing.
"""
from __future__ import annotations

import base64
import fcntl
import gzip
import hashlib
import heapq
import itertools
import json
import logging
import os
import re
import shutil
import socket
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence
from urllib.parse import unquote_to_bytes

import click
import orjson

from . import normalize, views
from . import settings as _settings
from .settings import VendorSettings
from .store import Publisher, Streams, connect
from .vendors import REGISTRY, Push

log = logging.getLogger("receiver.archive")

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Headers whose values are credentials: recorded as "***" (vendors send none of them).
_SECRET_HEADERS = {"authorization", "proxy-authorization", "cookie"}
# As Werkzeug's EnvironHeaders: the CGI CONTENT_TYPE/LENGTH are listed, HTTP_CONTENT_* not.
_CGI_BODY_HEADERS = {"CONTENT_TYPE", "CONTENT_LENGTH"}
_HTTP_BODY_HEADERS = {"HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"}
# A request is appended when it completes, so a line received just before midnight can sit in
# the next day's files: readers look this far into the next day.
_SLACK = timedelta(minutes=5)
_SEPARATORS = re.compile(rb"[\s\-().]")  # what normalize.mobile drops from a number


# An empty digest to copy, once per record: half the cost of constructing a new blake2b.
_RAW_HASH = hashlib.blake2b(digest_size=8)


def raw_digest(raw: str) -> str:
    """Short digest of an event's `raw` record, kept in the archive line for the skip rule."""
    digest = _RAW_HASH.copy()
    digest.update(raw.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def _headers(environ: Mapping[str, Any]) -> list[list[str]]:
    """The request's headers as `request.headers` lists them, credentials masked. Read from the
    WSGI environ directly: Werkzeug's EnvironHeaders took a tenth of a single push's CPU. What
    each environ key is comes from `_HEADER_KEYS`, one lookup a key: testing each of a push's
    ~25 keys took 5.6 us, the lookups 2.6."""
    headers = []
    known = _HEADER_KEYS.get
    for key, value in environ.items():
        header = known(key)
        if header is None:
            header = _header_key(key)
        if header and (value or not header[2]):
            headers.append([header[0], "***" if header[1] else value])
    return headers


# environ key -> (header name, whether its value is a credential, whether it is listed only
# when not empty), or () for a key that is no header. Filled as keys come, up to a bound: the
# client picks the names.
_HEADER_KEYS: dict[str, tuple[()] | tuple[str, bool, bool]] = {}
_HEADER_KEYS_MAX = 4096


def _header_key(key: str) -> tuple[()] | tuple[str, bool, bool]:
    """What environ `key` is: `HTTP_X_FOO` -> (`X-Foo`, False, False), `CONTENT_TYPE` ->
    (`Content-Type`, False, True), `wsgi.input` -> ()."""
    cgi = key in _CGI_BODY_HEADERS
    if cgi or key[:5] == "HTTP_" and key not in _HTTP_BODY_HEADERS:
        name = (key if cgi else key[5:]).replace("_", "-").title()
        header: tuple[()] | tuple[str, bool, bool] = (name, name.lower() in _SECRET_HEADERS, cgi)
    else:
        header = ()
    if len(_HEADER_KEYS) < _HEADER_KEYS_MAX:
        _HEADER_KEYS[key] = header
    return header


def _json_line(line: Mapping[str, Any]) -> bytes:
    """One JSON line, UTF-8. orjson is ~15x faster than json here (0.6 against 9.3 us for a
    single push's line, which made the archive a fifth of a single push's CPU); a line with a
    lone surrogate (which orjson refuses) is written by json, surrogates passed through, as
    the readers decode it."""
    try:
        return orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE)
    except TypeError:
        return (json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n"
                ).encode("utf-8", "surrogatepass")


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def _unb64(data: str | None) -> bytes:
    return base64.b64decode(data) if data else b""


def request_line(request: Any, status: int, *, received_at: str, body: bytes | None = None,
                 entries: Sequence[tuple[str, str, Mapping]] | None = None,
                 outcome: str | None = None) -> dict[str, Any]:
    """The archive line of one Flask request: what arrived and what became of it.

    `entries` are the view's (kind, id, fields) entries; `outcome` what the durable store
    answered (None when nothing was stored: refused, or stopped before the store).
    """
    args = request.view_args or {}
    headers = _headers(request.environ)
    published: list[str] = []
    published_raw: list[str] = []
    letters: list[list[str | None]] = []
    if outcome is not None:  # something was stored: what was taken, in one pass
        for kind, _, fields in entries or ():
            if kind == "deadletter":
                letters.append([fields["reason"], fields.get("record")])
            else:
                published.append(fields["id"])
                published_raw.append(raw_digest(fields["raw"]))
    count, _, word = (outcome or "").partition(" ")  # "<n> duplicates", "spooled", ...
    return {
        "received_at": received_at,
        "vendor": args.get("vendor", ""),
        "method": request.method,
        "path": views.public_path(request),  # the push secret stays out of the archive
        "remote_addr": request.remote_addr or "",
        "headers": headers,
        "content_type": request.environ.get("CONTENT_TYPE") or "",
        "query": _b64(request.query_string),
        "body": _b64(body),  # null: the body was never read (refused before, or too large)
        "status": status,
        "outcome": {
            "store": outcome,
            "spooled": outcome == "spooled",
            "published": published,
            "published_raw": published_raw,
            "duplicates": int(count) if word == "duplicates" and count.isdecimal() else 0,
            "dead_letters": letters,
        },
    }


class Archive:
    """Appends request lines to today's file of this process; reads and maintains the tree."""

    def __init__(self, directory: Path, keep_days: int = 183, *,
                 maintain_every: float = 3600.0) -> None:
        self.directory = Path(directory)
        self.keep_days = keep_days
        self.maintain_every = maintain_every
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._day: str | None = None
        self._pid: int | None = None
        self._next_maintenance = 0.0
        self._next_complaint = 0.0

    # --- writing --------------------------------------------------------------------------

    def record(self, request: Any, status: int, **details: Any) -> None:
        """Archive one request (see `request_line`); never raises, a failure is logged."""
        try:
            self.append(request_line(request, status, **details))
        except Exception:  # a bug here must not fail the push either
            log.exception("archive: request not archived")

    def append(self, line: Mapping[str, Any]) -> bool:
        """Write one line to this process's file for today; False (logged) when it failed."""
        data = _json_line(line)
        with self._lock:
            try:
                fd = self._file()
                written = os.write(fd, data)
                if written != len(data):
                    raise OSError(f"short write ({written} of {len(data)} bytes)")
            except OSError as problem:
                self._close()
                now = time.monotonic()
                if now >= self._next_complaint:  # once a minute, not once a push
                    self._next_complaint = now + 60
                    log.error("archive %s: cannot append (%s); pushes are still served",
                              self.directory, problem)
                return False
        self._maybe_maintain()
        return True

    def _file(self) -> int:
        today = _utc_day(time.time())
        if self._pid != os.getpid():
            # A forked worker: the inherited descriptor (and its flock) is the parent's.
            if self._fd is not None:
                os.close(self._fd)
            self._fd, self._day, self._pid = None, None, os.getpid()
        # A clock stepped back across midnight must not reopen a past day (maintenance may
        # have compressed it): a process's days only move forward.
        if self._fd is not None and (self._day is None or today <= self._day):
            return self._fd
        self._close()
        day_dir = self.directory / today
        for _ in range(3):
            day_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            name = f"{_host()}-{os.getpid()}-{time.time_ns():x}.jsonl"
            fd = os.open(day_dir / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC,
                         0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.fstat(fd).st_nlink:
                self._fd, self._day = fd, today
                return fd
            os.close(fd)  # opened at midnight, compressed away by a maintainer: open anew
            today = _utc_day(time.time())
            day_dir = self.directory / today
        raise OSError("archive file vanished three times")

    def _close(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)  # also drops the flock
            except OSError:
                pass
        self._fd = self._day = None

    def close(self) -> None:
        with self._lock:
            self._close()

    # --- maintenance ----------------------------------------------------------------------

    def _maybe_maintain(self) -> None:
        if self.maintain_every <= 0:
            return
        now = time.monotonic()
        if now < self._next_maintenance:
            return
        self._next_maintenance = now + self.maintain_every
        threading.Thread(target=self._maintain_quietly, name="archive-maintenance",
                         daemon=True).start()

    def _maintain_quietly(self) -> None:
        try:
            self.maintain()
        except Exception:
            log.exception("archive %s: maintenance failed", self.directory)

    def maintain(self, today: date | None = None) -> dict[str, int]:
        """Gzip the unheld files of past days; delete days older than `keep_days` days."""
        today = today or _utc_today()
        with self._lock:
            if self._day is not None and self._day < today.isoformat():
                self._close()  # an idle process still holding yesterday's file lets it go
        done = {"compressed": 0, "deleted_days": 0}
        oldest = today - timedelta(days=self.keep_days)
        for day, day_dir in self.days():
            if day < oldest:
                shutil.rmtree(day_dir, ignore_errors=True)
                done["deleted_days"] += 1
                log.info("archive %s: day %s deleted (older than %d days)", self.directory,
                         day, self.keep_days)
            elif day < today:
                for path in sorted(day_dir.glob("*.jsonl")):
                    done["compressed"] += _compress(path)
                for tmp in day_dir.glob(".*.gz.tmp"):
                    if not (day_dir / tmp.name[1:-len(".gz.tmp")]).exists():
                        tmp.unlink(missing_ok=True)  # left by a maintainer killed mid-way
        return done

    # --- reading --------------------------------------------------------------------------

    def days(self) -> list[tuple[date, Path]]:
        """The day directories, oldest first."""
        try:
            entries = list(self.directory.iterdir())
        except FileNotFoundError:
            return []
        return sorted((date.fromisoformat(p.name), p) for p in entries
                      if _DAY.match(p.name) and p.is_dir())

    def lines(self, since: datetime | None = None, until: datetime | None = None,
              vendor: str | None = None) -> Iterator[dict[str, Any]]:
        """Archived lines received in [since, until), in time order (gzipped days too)."""
        low = _stamp(since) if since else ""
        high = _stamp(until) if until else "~"
        late = _stamp(until + _SLACK) if until else "~"
        for day, day_dir in self.days():
            start = datetime.combine(day, datetime.min.time(), timezone.utc)
            if since and start + timedelta(days=1) <= since:
                continue
            if until and start > until + _SLACK:
                break
            streams = [_read(path) for path in _files(day_dir)]
            if until and start >= until:
                # A day after the window: only the lines appended just after its midnight.
                streams = [itertools.takewhile(lambda ln: ln.get("received_at", "") < late, s)
                           for s in streams]
            for line in heapq.merge(*streams, key=lambda ln: ln.get("received_at", "")):
                if low <= line.get("received_at", "") < high and (
                        vendor is None or line.get("vendor") == vendor):
                    yield line


def _compress(path: Path) -> int:
    """Gzip one file nobody writes to (1), or leave it (0). fsync'ed: it replaces the original."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return 0
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0  # a live process still writes it
        if not os.fstat(fd).st_nlink:
            return 0  # another maintainer just did it
        target = path.with_name(path.name + ".gz")
        tmp = path.with_name("." + path.name + ".gz.tmp")
        with os.fdopen(os.dup(fd), "rb") as source, open(tmp, "wb") as out:
            with gzip.GzipFile(filename=path.name, mode="wb", fileobj=out, mtime=0) as packed:
                shutil.copyfileobj(source, packed, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
        _fsync_dir(path.parent)
        path.unlink()
        return 1
    finally:
        os.close(fd)


def _files(day_dir: Path) -> list[Path]:
    """A day's files; a plain file and its .gz both there means a compression was cut short
    after the .gz was complete: the plain file (the same lines, or more) is read."""
    plain = {p.name for p in day_dir.glob("*.jsonl")}
    packed = [p for p in day_dir.glob("*.jsonl.gz") if p.name[:-3] not in plain]
    return sorted([day_dir / name for name in plain] + packed)


def _read(path: Path) -> Iterator[dict[str, Any]]:
    """The whole lines of one file; a torn last line (a process killed mid-write) is skipped."""
    try:
        handle = gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")
    except FileNotFoundError:
        if path.suffix == ".gz":
            return
        # Compressed between listing and opening.
        handle = gzip.open(path.with_name(path.name + ".gz"), "rb")
    with handle:
        for raw in handle:
            if not raw.endswith(b"\n"):
                return
            try:
                yield json.loads(raw.decode("utf-8", "surrogatepass"))
            except ValueError:
                log.warning("archive %s: an unreadable line skipped", path)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _utc_today() -> date:
    return _day(int(time.time() // 86400))


def _utc_day(timestamp: float) -> str:
    """The UTC day of a unix time, `YYYY-MM-DD`, as `_utc_today().isoformat()` gives it for
    now; 0.3 us against 1.3 for `datetime.now` (each push asks for today's file)."""
    return _day_name(int(timestamp // 86400))


def _day(number: int) -> date:
    """Day `number` of the unix epoch (unix time // 86400): the one definition of a UTC day."""
    return _EPOCH + timedelta(days=number)


@lru_cache(maxsize=4)
def _day_name(number: int) -> str:
    return _day(number).isoformat()


_EPOCH = date(1970, 1, 1)


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname()) or "host"


def _stamp(moment: datetime) -> str:
    """A time as `received_at` writes it (UTC, milliseconds), so lines compare as strings."""
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")


# --- re-decoding ---------------------------------------------------------------------------


def redecode(vendor: str, push: Push, received_at: str, config: VendorSettings
             ) -> tuple[list[dict[str, str]], list[tuple[str, str | None]]]:
    """Today's decoding of an archived push, exactly as the view does it: (events, failures)."""
    return views.decode(vendor, push, config, received_at)


def _push_of(line: Mapping[str, Any]) -> Push:
    return Push(method=line.get("method", "POST"), query=_unb64(line.get("query")),
                body=_unb64(line.get("body")), content_type=line.get("content_type", ""))


# --- the commands --------------------------------------------------------------------------


def _load() -> _settings.Settings:
    try:
        return _settings.load()
    except _settings.SettingsError as problem:
        raise click.ClickException(str(problem))


def _window(date_: str | None, since: str | None, until: str | None
            ) -> tuple[datetime | None, datetime | None]:
    """--date D, or --since/--until (a date, or a date and time; UTC). A bare --until date
    includes that day."""
    def parse(option: str, value: str) -> tuple[datetime, bool]:
        for form in ("%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"):
            try:
                return (datetime.strptime(value, form).replace(tzinfo=timezone.utc),
                        form == "%Y-%m-%d")
            except ValueError:
                continue
        raise click.BadParameter(f"{value!r} is not YYYY-MM-DD[THH:MM:SS]", param_hint=option)

    if date_ and (since or until):
        raise click.UsageError("give --date, or --since/--until, not both")
    if date_:
        day, bare = parse("--date", date_)
        if not bare:
            raise click.BadParameter("a day, YYYY-MM-DD", param_hint="--date")
        return day, day + timedelta(days=1)
    low = parse("--since", since)[0] if since else None
    high = None
    if until:
        high, bare = parse("--until", until)
        high += timedelta(days=1) if bare else timedelta(0)
    return low, high


_date_options = [
    click.option("--date", "date_", metavar="YYYY-MM-DD", help="one UTC day"),
    click.option("--since", metavar="WHEN", help="from this UTC date or date-time"),
    click.option("--until", metavar="WHEN", help="up to this UTC date-time (a date: through it)"),
    click.option("--vendor", type=click.Choice(sorted(REGISTRY)), help="one vendor only"),
]


def _with(options: list) -> Any:
    def apply(function: Any) -> Any:
        for option in reversed(options):
            function = option(function)
        return function
    return apply


@click.group("archive")
def archive_cli() -> None:
    """The audit archive of every push (RECEIVER_ARCHIVE_DIR)."""


@archive_cli.command("search")
@click.option("--mobile", help="a mobile in any form: 13900000000, +8613900000000, 86139…")
@click.option("--batch", help="a batch / task / message id")
@_with(_date_options)
def search(mobile: str | None, batch: str | None, date_: str | None, since: str | None,
           until: str | None, vendor: str | None) -> None:
    """Archived requests whose records, decoded by today's adapters, match: one JSON line each.

    Records that still fail to decode match on the mobile's or batch's text in them.
    """
    config = _load()
    wanted = normalize.mobile(mobile) if mobile else None
    if mobile and not wanted:
        raise click.BadParameter(f"{mobile!r} is not a phone number", param_hint="--mobile")
    # For records that do not decode: the number as the vendor would write it.
    needle = (wanted[3:] if wanted.startswith("+86") else wanted.lstrip("+")) if wanted else None
    archive = Archive(config.archive_dir, config.archive_days)
    for line in archive.lines(*_window(date_, since, until), vendor=vendor):
        if not _might_contain(line, [n for n in (needle, batch) if n]):
            continue  # decoding is the slow part: skip requests that cannot match
        records, failing = _decoded(line, config)
        published = set(line.get("outcome", {}).get("published", ()))
        hits = [{**event, "published": event["id"] in published} for event in records
                if (not wanted or event.get("mobile") == wanted)
                and (not batch or event.get("batch_id") == batch)]
        text = (_unb64(line.get("query")) + b"\n" + _unb64(line.get("body"))
                ).decode("utf-8", "replace")
        misses = [{"reason": reason, "record": record} for reason, record in failing
                  if (not needle or needle in (record or text))
                  and (not batch or batch in (record or text))]
        if (mobile or batch) and not hits and not misses:
            continue
        click.echo(json.dumps({
            "received_at": line.get("received_at"), "vendor": line.get("vendor"),
            "remote_addr": line.get("remote_addr"), "status": line.get("status"),
            "method": line.get("method"), "path": line.get("path"),
            "records": hits, "failing": misses}, ensure_ascii=False))


def _might_contain(line: Mapping[str, Any], needles: list[str]) -> bool:
    """Whether every needle (digits, batch id) can be in the request's query or body: as
    sent, or percent-decoded with the separators a mobile may carry removed."""
    data = _unb64(line.get("query")) + b"&" + _unb64(line.get("body"))
    flat = _SEPARATORS.sub(b"", unquote_to_bytes(data.replace(b"+", b" ")))
    return all(n.encode() in data or n.encode() in flat for n in needles)


def _decoded(line: Mapping[str, Any], config: _settings.Settings
             ) -> tuple[list[dict[str, str]], list[tuple[str, str | None]]]:
    vendor = line.get("vendor", "")
    if vendor not in REGISTRY:
        return [], [(f"unknown vendor {vendor!r}", None)]
    return redecode(vendor, _push_of(line), line["received_at"], config.vendors[vendor])


@archive_cli.command("maintain")
def maintain() -> None:
    """Gzip past days now and delete days past RECEIVER_ARCHIVE_DAYS (workers do it hourly)."""
    config = _load()
    done = Archive(config.archive_dir, config.archive_days).maintain()
    click.echo(json.dumps(done))


@dataclass
class Tally:
    """What a replay did."""

    pushes: int = 0          # pushes (archive lines, dead letters) re-decoded
    replayed: int = 0        # events published now
    skipped: int = 0         # events already published (at the time, or by an earlier replay)
    still_failing: int = 0   # records (or whole pushes) today's adapters still cannot decode
    not_accepted: int = 0    # archive lines answered other than 200: never replayed
    dry_run: bool = False
    _seen: set = field(default_factory=set, repr=False)

    def report(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}


class Replayer:
    """Publishes re-decoded events that were not published before, through the Publisher."""

    def __init__(self, config: _settings.Settings, dry_run: bool = False) -> None:
        self.config = config
        self.client = connect(config.redis_url, cluster=config.redis_cluster,
                              timeout=max(config.redis_timeout, 5.0))
        self.streams = Streams(config.stream_prefix)
        # Seen for the archive's whole retention: a second replay months later still skips;
        # and in the live window, which the live receiver checks.
        self.publisher = Publisher(self.client, self.streams, dedupe_ttl=config.dedupe_ttl,
                                   also_dedupe=(config.archive_days * 86400,),
                                   retention=config.retention,
                                   durability=config.redis_durability,
                                   wait_ms=int(max(config.redis_timeout, 5.0) * 1000))
        self.tally = Tally(dry_run=dry_run)

    def publish(self, candidates: list[dict[str, str]]) -> None:
        if not candidates:
            return
        entries = [(event["kind"], event["id"], event) for event in candidates]
        if self.tally.dry_run:
            published = self.publisher.known([event["id"] for event in candidates])
            for event, before in zip(candidates, published):
                known = event["id"] in self.tally._seen or before
                self.tally._seen.add(event["id"])
                self.tally.skipped += bool(known)
                self.tally.replayed += not known
            return
        added = self.publisher.publish(entries)
        self.tally.replayed += added.count(True)
        self.tally.skipped += added.count(False)

    def archive(self, lines: Iterable[Mapping[str, Any]]) -> None:
        """Archive lines: an accepted push's events, less those it published at the time."""
        for line in lines:
            if line.get("status") != 200 or line.get("vendor") not in REGISTRY:
                self.tally.not_accepted += 1  # refused: the vendor was told to retry
                continue
            self.tally.pushes += 1
            records, failing = _decoded(line, self.config)
            outcome = line.get("outcome") or {}
            ids = set(outcome.get("published", ()))
            raws = set(outcome.get("published_raw", ()))
            # By id, and by the raw record: a parser fix that changed a published record's
            # fields (so its id) must not publish it again.
            fresh = [e for e in records if e["id"] not in ids and raw_digest(e["raw"]) not in raws]
            self.tally.skipped += len(records) - len(fresh)
            self.tally.still_failing += len(failing)
            self.publish(fresh)

    def deadletters(self, since: datetime | None, until: datetime | None,
                    vendor: str | None) -> None:
        """`sms:deadletter` entries: a whole-push letter -> all its events; a per-record
        letter -> only the re-decoded records whose `raw` is its `record`."""
        low, high = (_stamp(since) if since else ""), (_stamp(until) if until else "~")
        start = "-"
        while True:
            page = self.client.xrange(self.streams.stream("deadletter"), start, "+", count=500)
            for entry_id, fields in page:
                letter = {k.decode(): v for k, v in fields.items()}
                text = {k: v.decode("utf-8", "replace") for k, v in letter.items()
                        if k not in ("query", "body")}
                if not (low <= text.get("received_at", "") < high):
                    continue
                if text.get("vendor") not in REGISTRY or (vendor and text["vendor"] != vendor):
                    continue
                self.tally.pushes += 1
                push = Push(method=text.get("method", "POST"), query=letter.get("query", b""),
                            body=letter.get("body", b""), content_type=text.get("content_type", ""))
                records, failing = redecode(text["vendor"], push, text["received_at"],
                                            self.config.vendors[text["vendor"]])
                if "record" in text:
                    mine = [e for e in records if e["raw"] == text["record"]]
                    self.tally.still_failing += not mine
                else:
                    mine = records
                    self.tally.still_failing += len(failing)
                self.publish(mine)
            if len(page) < 500:
                return
            start = "(" + page[-1][0].decode()


@click.command("replay")
@click.option("--archive", "from_archive", is_flag=True, help="replay archived pushes")
@click.option("--deadletter", "from_deadletter", is_flag=True,
              help="replay the dead letters still on the stream (RECEIVER_RETENTION)")
@_with(_date_options)
@click.option("--dry-run", is_flag=True, help="count, publish nothing")
def replay(from_archive: bool, from_deadletter: bool, date_: str | None, since: str | None,
           until: str | None, vendor: str | None, dry_run: bool) -> None:
    """Re-decode archived or dead-lettered pushes with today's adapters (after a parser fix)
    and publish the events that were not published before; prints a JSON summary.

    Only pushes that were answered 200 are replayed. No new dead letters are published: what
    still fails is counted. Replaying twice publishes nothing the second time.
    """
    if not (from_archive or from_deadletter):
        raise click.UsageError("say what to replay: --archive and/or --deadletter")
    config = _load()
    window = _window(date_, since, until)
    replayer = Replayer(config, dry_run=dry_run)
    if from_archive:
        replayer.archive(Archive(config.archive_dir, config.archive_days)
                         .lines(*window, vendor=vendor))
    if from_deadletter:
        replayer.deadletters(*window, vendor=vendor)
    click.echo(json.dumps(replayer.tally.report()))


__all__ = ["Archive", "Replayer", "archive_cli", "replay", "redecode", "request_line",
           "raw_digest"]
