"""The registry: one line per vendor endpoint. A new platform speaking an existing format is
one more line here (e.g. `topen.adapter("newvendor")`)."""
from __future__ import annotations

from . import returnsms, smsadmin, topen, winnerlook
from .base import Adapter, Decoded, Options, Push, Undecodable

REGISTRY: dict[str, Adapter] = {a.slug: a for a in (
    topen.ADAPTER,
    winnerlook.ADAPTER,
    smsadmin.ADAPTER,
    returnsms.ADAPTER,
)}

__all__ = ["REGISTRY", "Adapter", "Decoded", "Options", "Push", "Undecodable"]
