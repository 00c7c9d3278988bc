"""Consumer groups on the receiver's streams, so that no downstream service writes its own loop.

    from receiver.consumer import ConsumerGroup

    group = ConsumerGroup.from_settings("dlr", group="billing", consumer="billing-1")
    group.run(lambda event: bill(event["batch_id"], event["mobile"], event["status"]))

What `run` does, in order, for every entry: loads it through the canonical schema
(`receiver.events.SCHEMAS`), calls the handler with the loaded event, and XACKs only after the
handler returned. Delivery is at least once: a handler must be idempotent (events carry a
deterministic `id` to dedupe on). Entries are not handled in strict order when some are retried.

- The group is created idempotently (XGROUP CREATE ... MKSTREAM; BUSYGROUP is success) from
  `start_id` ("0": everything the stream still holds; "$": only what comes next).
- A consumer first re-reads its own pending entries (those it had read but not acked before a
  restart under the same name), then new ones (`>`).
- Entries pending longer than `claim_idle` seconds, whichever consumer holds them (a dead one, or
  this one after its handler raised), are taken over with XAUTOCLAIM and handled again.
- Each delivery counts (Redis keeps the count in the group's pending list, so it survives
  crashes). An entry whose handler raised on its `max_deliveries`-th delivery, or that was
  delivered more often than that without an ack (its consumer died in the handler), or that does
  not load through the schema, is written to the dead-letter stream with the reason and acked.
- `stop()` (or a handler raising `Stop`) ends `run` after the current entry.
"""
from __future__ import annotations

import base64
import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable, Mapping

import redis
from marshmallow import INCLUDE, ValidationError, fields as mfields
from redis.cluster import RedisCluster

from . import events
from .events import SCHEMAS
from .store import Streams, connect

log = logging.getLogger("receiver.consumer")

Event = dict[str, Any]
Handler = Callable[..., object]


class Stop(Exception):
    """Raised by a handler to stop consuming; the entry in hand is not acked (it stays pending)."""


class Outcome(str, Enum):
    """What became of one entry."""

    ACKED = "acked"          # the handler returned; acked
    FAILED = "failed"        # the handler raised; left pending, retried after claim_idle
    DEAD = "dead"            # written to the dead-letter stream and acked
    GONE = "gone"            # trimmed from the stream while pending; acked


@dataclass(frozen=True)
class Message:
    """One stream entry as delivered to this consumer."""

    stream: str
    id: str
    fields: Mapping[str, str | bytes] | None  # None: the entry was trimmed while pending
    deliveries: int                            # how often the group delivered it, this one included


def default_consumer() -> str:
    """A consumer name stable across restarts (so a restart finds its own pending entries):
    RECEIVER_CONSUMER_NAME (the systemd unit sets host-instance), else the host name."""
    return os.environ.get("RECEIVER_CONSUMER_NAME", "").strip() or socket.gethostname()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def load_entry(kind: str, entry: Mapping[str, str | bytes]) -> Event:
    """A stream entry (field names str or bytes) loaded through the schema of its kind.

    Raw fields (dead letters' `query` and `body`) stay bytes; every other value must be UTF-8.
    Unknown fields are kept as text (a tolerant reader: a newer receiver may add fields);
    required fields and formats are checked. Raises ValidationError or UnicodeDecodeError."""
    schema = SCHEMAS[kind]
    values = {}
    for name, value in entry.items():
        name = _text(name)
        if isinstance(value, bytes) and type(schema.fields.get(name)) is not mfields.Raw:
            value = value.decode("utf-8")
        values[name] = value
    return schema.load(values, unknown=INCLUDE)


def jsonable(event: Mapping[str, Any]) -> dict[str, Any]:
    """The event for JSON output: bytes values (dead letters' raw `query` and `body`) become
    base64 text; everything else is already text."""
    return {name: base64.b64encode(value).decode("ascii") if isinstance(value, bytes) else value
            for name, value in event.items()}


def cloudevent(kind: str, event: Mapping[str, Any], entry_id: str) -> dict[str, Any]:
    """A CloudEvents 1.0 (structured JSON) envelope of an event.

    id: the event id (dead letters, which have none: the stream entry id); source:
    `/vendors/<vendor>`; type: `sms.dlr.<status>`, `sms.mo`, `sms.deadletter`; time: when it
    happened by the vendor (`reported_at`, `sent_at`), else `received_at`; subject: the mobile;
    data: the event as `jsonable` gives it."""
    if kind == "dlr":
        kind_type, happened = f"sms.dlr.{event.get('status', 'unknown')}", event.get("reported_at")
    elif kind == "mo":
        kind_type, happened = "sms.mo", event.get("sent_at")
    else:
        kind_type, happened = f"sms.{kind}", None
    envelope = {"specversion": "1.0", "id": event.get("id") or entry_id,
                "source": f"/vendors/{event.get('vendor') or 'unknown'}", "type": kind_type,
                "time": happened or event.get("received_at"),
                "datacontenttype": "application/json"}
    if event.get("mobile"):
        envelope["subject"] = event["mobile"]
    envelope["data"] = jsonable(event)
    return {name: value for name, value in envelope.items() if value is not None}


class ConsumerGroup:
    """One consumer of one consumer group on one stream."""

    def __init__(self, client: redis.Redis, stream: str, group: str, consumer: str, *,
                 kind: str | None = None, start_id: str = "0", claim_idle: float = 60.0,
                 max_deliveries: int = 5, count: int = 10, block: float = 1.0,
                 deadletter: str | None = None, retention: float | None = None) -> None:
        """`stream` is a full key (`sms:dlr`); `kind` (dlr, mo, deadletter) defaults to the key's
        last segment. `deadletter` defaults to `<prefix>:deadletter` beside the stream; when the
        stream is the dead-letter stream itself, an entry that keeps failing is only logged and
        acked (it stays in the stream). `retention` (seconds) trims the dead-letter stream on
        write like the receiver does (MINID ~)."""
        kind = kind or stream.rsplit(":", 1)[-1]
        if kind not in SCHEMAS:
            raise ValueError(f"cannot tell the kind of stream {stream!r}: pass kind= one of "
                             f"{', '.join(SCHEMAS)}")
        if max_deliveries < 1 or count < 1 or claim_idle <= 0:
            raise ValueError("max_deliveries and count must be >= 1, claim_idle > 0")
        self.client = client
        self.stream, self.group, self.consumer, self.kind = stream, group, consumer, kind
        self.schema = SCHEMAS[kind]
        self.start_id = start_id
        self.claim_idle = claim_idle
        self.max_deliveries = max_deliveries
        self.count = count
        self.block = block
        if deadletter is None:
            prefix = stream.rsplit(":", 1)[0] if ":" in stream else "sms"
            deadletter = Streams(prefix).stream("deadletter")
        self.deadletter: str | None = None if deadletter == stream else deadletter
        self.retention = retention
        self._transactions = not isinstance(client, RedisCluster)  # dlr and deadletter: 2 slots
        self._stopping = threading.Event()
        self._created = False
        self._history: str | None = "0"       # own pending entries are read first, then ">"
        self._claim_cursor = "0-0"
        self._next_claim = 0.0

    @classmethod
    def from_settings(cls, stream: str, group: str, consumer: str | None = None,
                      **options: Any) -> "ConsumerGroup":
        """A consumer on the Redis and streams of the `RECEIVER_*` settings.

        `stream` is a kind (`dlr`, `mo`, `deadletter`: named under RECEIVER_STREAM_PREFIX) or a
        full stream key."""
        from . import settings
        config = settings.load()
        streams = Streams(config.stream_prefix)
        name = streams.stream(stream) if stream in SCHEMAS else stream
        block = float(options.get("block", 1.0))
        # A blocking read must not outlast the socket timeout.
        client = connect(config.redis_url, cluster=config.redis_cluster,
                         timeout=config.redis_timeout + block)
        options.setdefault("deadletter", streams.stream("deadletter"))
        options.setdefault("retention", config.retention)
        return cls(client, name, group, consumer or default_consumer(), **options)

    # -- the group ------------------------------------------------------------------------------

    def create(self) -> bool:
        """Create the group (and the stream) unless it exists; True when it was created."""
        try:
            self.client.xgroup_create(self.stream, self.group, id=self.start_id, mkstream=True)
            created = True
        except redis.ResponseError as problem:
            if "BUSYGROUP" not in str(problem):
                raise
            created = False
        self._created = True
        return created

    # -- reading --------------------------------------------------------------------------------

    def read(self, block: float | None = None) -> list[Message]:
        """The next entries for this consumer: stale pending ones taken over from any consumer,
        else its own pending ones (once, at start), else new ones (waiting up to `block` s)."""
        if not self._created:
            self.create()
        now = time.monotonic()
        if now >= self._next_claim:
            claimed = self._claim()
            # Go on scanning the pending list next time until the cursor wraps around.
            self._next_claim = now if self._claim_cursor != "0-0" else now + self.claim_idle / 2
            if claimed:
                return claimed
        if self._history is not None:
            reply = self.client.xreadgroup(self.group, self.consumer, {self.stream: self._history},
                                           count=self.count)
            entries = reply[0][1] if reply else []
            if entries:
                self._history = _text(entries[-1][0])
                return self._messages(entries, None)
            self._history = None
        wait = self.block if block is None else block
        reply = self.client.xreadgroup(self.group, self.consumer, {self.stream: ">"},
                                       count=self.count,
                                       block=int(wait * 1000) if wait > 0 else None)
        return self._messages(reply[0][1], 1) if reply else []

    def _claim(self) -> list[Message]:
        reply = self.client.xautoclaim(self.stream, self.group, self.consumer,
                                       int(self.claim_idle * 1000), start_id=self._claim_cursor,
                                       count=self.count)
        # Redis 7 also reports claimed ids whose entries were trimmed; it already dropped them.
        self._claim_cursor = _text(reply[0])
        entries = [entry for entry in reply[1] if entry and entry[0]]
        if entries:
            log.info("%s/%s took over %d entries pending over %ss on %s", self.group,
                     self.consumer, len(entries), self.claim_idle, self.stream)
        return self._messages(entries, None)

    def _messages(self, entries: list, deliveries: int | None) -> list[Message]:
        """Messages for raw entries; `deliveries` None: look the counts up in the pending list."""
        if not entries:
            return []
        ids = [_text(entry_id) for entry_id, _ in entries]
        if deliveries is None:
            pipe = self.client.pipeline(transaction=False)
            for entry_id in ids:
                pipe.xpending_range(self.stream, self.group, entry_id, entry_id, 1)
            counts = [rows[0]["times_delivered"] if rows else 1 for rows in pipe.execute()]
        else:
            counts = [deliveries] * len(ids)
        return [Message(self.stream, entry_id, self._decode_keys(values), n)
                for entry_id, (_, values), n in zip(ids, entries, counts)]

    @staticmethod
    def _decode_keys(values: Mapping | None) -> dict[str, str | bytes] | None:
        if not values:
            return None
        return {_text(name): value for name, value in values.items()}

    # -- handling -------------------------------------------------------------------------------

    def load(self, entry: Mapping[str, str | bytes]) -> Event:
        """The entry as an event, loaded through its schema (see `load_entry`)."""
        return load_entry(self.kind, entry)

    def handle(self, message: Message, handler: Handler, *, with_message: bool = False) -> Outcome:
        """Load the entry, call `handler(event)` (or `handler(event, message)`), ack it once the
        handler returned; dead-letter it when it cannot load or keeps failing."""
        if message.fields is None:
            self.ack(message.id)
            return Outcome.GONE
        if message.deliveries > self.max_deliveries:
            self._dead(message, f"delivered {message.deliveries} times without an ack "
                                f"(max {self.max_deliveries}): its consumer died or hung in the "
                                "handler")
            return Outcome.DEAD
        try:
            event = self.load(message.fields)
        except (ValidationError, UnicodeDecodeError) as problem:
            detail = problem.messages if isinstance(problem, ValidationError) else problem
            self._dead(message, f"entry does not match the {self.kind} schema: {detail}")
            return Outcome.DEAD
        try:
            if with_message:
                handler(event, message)
            else:
                handler(event)
        except Stop:
            self.stop()
            raise
        except Exception as problem:
            error = f"{type(problem).__name__}: {problem}"
            if message.deliveries >= self.max_deliveries:
                self._dead(message, f"handler failed on delivery {message.deliveries} of "
                                    f"{self.max_deliveries}: {error}")
                return Outcome.DEAD
            log.warning("%s/%s: handler failed on %s %s (delivery %d of %d), retried after %ss: "
                        "%s", self.group, self.consumer, self.stream, message.id,
                        message.deliveries, self.max_deliveries, self.claim_idle, error)
            return Outcome.FAILED
        self.ack(message.id)
        return Outcome.ACKED

    def ack(self, entry_id: str) -> None:
        self.client.xack(self.stream, self.group, entry_id)

    def _dead(self, message: Message, reason: str) -> None:
        """Write the entry to the dead-letter stream and ack it, in one transaction."""
        source = dict(message.fields or {})
        if self.deadletter is None:
            log.error("%s/%s: giving up on %s %s (left in the stream, acked): %s", self.group,
                      self.consumer, self.stream, message.id, reason)
            self.ack(message.id)
            return
        received_at = _text(source.get("received_at", b""))
        if events.check({"received_at": received_at}, "deadletter").get("received_at"):
            received_at = events.now()
        # `record`: the original entry as a JSON object (bytes that are not UTF-8, which only a
        # foreign writer could have put there, are backslash-escaped).
        record = json.dumps({name: value.decode("utf-8", "backslashreplace")
                             if isinstance(value, bytes) else value
                             for name, value in source.items()}, ensure_ascii=False)
        letter = {"vendor": _text(source.get("vendor", b"")) or "unknown", "reason": reason,
                  "received_at": received_at, "record": record, "stream": self.stream,
                  "entry_id": message.id, "group": self.group, "consumer": self.consumer,
                  "deliveries": str(message.deliveries)}
        minid = (f"{int(time.time() * 1000) - int(self.retention * 1000)}-0"
                 if self.retention else None)
        pipe = self.client.pipeline(transaction=self._transactions)
        pipe.xadd(self.deadletter, letter, minid=minid, approximate=True)
        pipe.xack(self.stream, self.group, message.id)
        pipe.execute()
        log.error("%s/%s: %s %s moved to %s: %s", self.group, self.consumer, self.stream,
                  message.id, self.deadletter, reason)

    # -- the loop -------------------------------------------------------------------------------

    def run(self, handler: Handler, *, limit: int | None = None,
            with_message: bool = False) -> int:
        """Handle entries until `stop()`, or until `limit` entries were handled (acked after the
        handler) or dead-lettered; returns how many were. Entries trimmed away while pending are
        dropped, not counted. Redis outages are logged and retried with a growing pause."""
        done, pause = 0, 0.5
        while not self._stopping.is_set() and (limit is None or done < limit):
            try:
                batch = self.read()
                for message in batch:
                    if self._stopping.is_set() or (limit is not None and done >= limit):
                        # The rest stays pending for this consumer: re-read first next time.
                        self._history = "0"
                        break
                    outcome = self.handle(message, handler, with_message=with_message)
                    done += outcome in (Outcome.ACKED, Outcome.DEAD)
                pause = 0.5
            except Stop:
                break
            except (redis.ConnectionError, redis.TimeoutError) as problem:
                log.warning("%s/%s: Redis unavailable (%s), retrying in %.1fs", self.group,
                            self.consumer, problem, pause)
                self._stopping.wait(pause)
                pause = min(pause * 2, 30.0)
            except redis.ResponseError as problem:
                if "NOGROUP" not in str(problem):
                    raise
                log.warning("%s: group %s or the stream vanished; creating it again",
                            self.stream, self.group)
                self.create()
        return done

    def stop(self) -> None:
        """Make `run` return after the entry in hand, now and for good (safe from signal
        handlers and other threads)."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()


__all__ = ["ConsumerGroup", "Message", "Outcome", "Stop", "default_consumer", "Handler",
           "load_entry", "jsonable", "cloudevent"]
