"""What an operator checks first (`receiver streams`): per stream its length and first/last entry
time; per consumer group its consumers, pending count, lag and the age of its oldest pending
entry."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable

import redis

LAG_SCAN = 10_000  # when Redis cannot tell a group's lag, count at most this many entries


def entry_time(entry_id: str) -> datetime:
    """When an entry was added: the milliseconds part of its stream id, in UTC."""
    return datetime.fromtimestamp(int(entry_id.split("-")[0]) / 1000, timezone.utc)


def _text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


@dataclass
class ConsumerStats:
    name: str
    pending: int
    idle: float                  # seconds since its last read or claim
    inactive: float | None       # seconds since its last successful read (Redis >= 7.2)


@dataclass
class GroupStats:
    name: str
    pending: int
    lag: int | None              # entries not yet delivered to the group
    lag_exact: bool
    last_delivered_id: str
    oldest_pending_id: str | None
    oldest_pending_age: float | None  # seconds since that entry was added to the stream
    consumers: list[ConsumerStats] = field(default_factory=list)


@dataclass
class StreamStats:
    name: str
    exists: bool
    length: int = 0
    first_id: str | None = None
    last_id: str | None = None
    first_time: str | None = None
    last_time: str | None = None
    groups: list[GroupStats] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _lag(client: redis.Redis, stream: str, group: dict) -> tuple[int | None, bool]:
    lag = group.get("lag")
    if lag is not None:
        return int(lag), True
    # Redis reports no lag after deletions inside the group's range: count what is left.
    last = _text(group["last-delivered-id"])
    left = client.xrange(stream, f"({last}", "+", count=LAG_SCAN + 1)
    return min(len(left), LAG_SCAN), len(left) <= LAG_SCAN


def stream_stats(client: redis.Redis, names: Iterable[str],
                 now: float | None = None) -> list[StreamStats]:
    """Statistics of the named streams (a missing stream is reported with exists=False)."""
    now = time.time() if now is None else now
    out = []
    for name in names:
        if not client.exists(name):
            out.append(StreamStats(name, exists=False))
            continue
        info = client.xinfo_stream(name)
        stats = StreamStats(name, exists=True, length=int(info["length"]))
        if info.get("first-entry"):
            stats.first_id = _text(info["first-entry"][0])
            stats.last_id = _text(info["last-entry"][0])
            stats.first_time = entry_time(stats.first_id).isoformat(timespec="milliseconds")
            stats.last_time = entry_time(stats.last_id).isoformat(timespec="milliseconds")
        for group in client.xinfo_groups(name):
            group_name = _text(group["name"])
            summary = client.xpending(name, group_name)
            oldest = _text(summary["min"]) if summary["pending"] else None
            lag, exact = _lag(client, name, group)
            consumers = [ConsumerStats(_text(c["name"]), int(c["pending"]), c["idle"] / 1000,
                                       c["inactive"] / 1000 if c.get("inactive", -1) >= 0 else None)
                         for c in client.xinfo_consumers(name, group_name)]
            stats.groups.append(GroupStats(
                group_name, int(group["pending"]), lag, exact,
                _text(group["last-delivered-id"]), oldest,
                max(0.0, now - entry_time(oldest).timestamp()) if oldest else None, consumers))
        out.append(stats)
    return out


def age(seconds: float | None) -> str:
    """1d2h, 3h4m, 5m6s, 7.8s."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d{hours}h"
    return f"{hours}h{minutes}m" if hours else f"{minutes}m{secs}s"


def _n(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else many or one + 's'}"


def render(stats: list[StreamStats], now: float | None = None) -> str:
    """A plain-text report, one stream after another."""
    now = time.time() if now is None else now
    lines = []
    for s in stats:
        if not s.exists:
            lines.append(f"{s.name}: no such stream")
            continue
        if s.length and s.first_id and s.last_id:
            span = (f"first {s.first_time} ({age(now - entry_time(s.first_id).timestamp())} ago), "
                    f"last {s.last_time} ({age(now - entry_time(s.last_id).timestamp())} ago)")
        else:
            span = "empty"
        lines.append(f"{s.name}: {_n(s.length, 'entry', 'entries')}, {span}, "
                     f"{_n(len(s.groups), 'group')}")
        for g in s.groups:
            lag = "?" if g.lag is None else f"{g.lag}{'' if g.lag_exact else '+'}"
            oldest = (f", oldest pending {g.oldest_pending_id} ({age(g.oldest_pending_age)} old)"
                      if g.oldest_pending_id else "")
            lines.append(f"  group {g.name}: {_n(len(g.consumers), 'consumer')}, pending {g.pending}, "
                         f"lag {lag}{oldest}")
            for c in g.consumers:
                inactive = "" if c.inactive is None else f", last read {age(c.inactive)} ago"
                lines.append(f"    consumer {c.name}: pending {c.pending}, idle {age(c.idle)}"
                             f"{inactive}")
    return "\n".join(lines)


__all__ = ["StreamStats", "GroupStats", "ConsumerStats", "stream_stats", "render", "entry_time"]
