"""What every adapter takes and returns. Adapters are pure: no Flask, no Redis, no clock."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any, Callable
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Push:
    """One HTTP request as the vendor sent it: raw bytes, nothing decoded."""

    method: str
    query: bytes = b""
    body: bytes = b""
    content_type: str = ""


@dataclass(frozen=True)
class Options:
    """Per-vendor decoding options (from settings)."""

    encoding: str = "utf-8"
    zone: tzinfo = ZoneInfo("Asia/Shanghai")


@dataclass
class Decoded:
    """What an adapter made of a push: canonical records and the records it could not use."""

    account: str | None = None
    records: list[dict[str, Any]] = field(default_factory=list)
    bad: list[tuple[str, str]] = field(default_factory=list)  # (reason, raw record)


class Undecodable(ValueError):
    """The push as a whole cannot be understood; the message says why, in one sentence."""


Decoder = Callable[[Push, Options], Decoded]


@dataclass(frozen=True)
class Adapter:
    """A registry entry: an endpoint slug, its decoder and its wire charset."""

    slug: str
    decode: Decoder
    encoding: str = "utf-8"
    doc: str = ""
