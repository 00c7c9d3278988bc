"""Settings from `RECEIVER_*` environment variables (and an optional env file), validated at
start: every bad value is reported, each naming its variable, and the start stops."""
from __future__ import annotations

import codecs
import ipaddress
import os
import re
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from datetime import timedelta
from typing import Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from environs import Env, EnvValidationError
from marshmallow import ValidationError, validate

from .redis_server import SOCKET_NAME
from .store import DURABILITY
from .vendors import REGISTRY

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class SettingsError(ValueError):
    """One or more settings are invalid; the message has a line per variable."""


@dataclass(frozen=True)
class VendorSettings:
    token: str = ""
    allowed_ips: tuple[Network, ...] = ()
    accounts: frozenset[str] = frozenset()
    ack_body: str = "ok"
    encoding: str = "utf-8"
    zone: tzinfo = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class Settings:
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_cluster: bool = False
    redis_timeout: float = 1.0
    redis_durability: str = "memory"
    stream_prefix: str = "sms"
    dedupe_ttl: float = 48 * 3600
    retention: float = 7 * 24 * 3600
    max_body: int = 1024 * 1024
    proxy_count: int = 0
    data_dir: Path = Path("receiver-data")
    spool_dir: Path = Path("receiver-data/spool")
    replay_interval: float = 1.0
    archive: bool = True
    archive_dir: Path = Path("receiver-data/archive")
    archive_days: int = 183
    vendors: Mapping[str, VendorSettings] = field(default_factory=dict)


def _encoding(value: str) -> str:
    try:
        return codecs.lookup(value).name
    except LookupError:
        raise ValidationError(f"unknown encoding {value!r}") from None


def _zone(value: str) -> tzinfo:
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"unknown time zone {value!r} (use an IANA name such as "
                              "Asia/Shanghai)") from None


def _networks(value: str) -> tuple[Network, ...]:
    try:
        return tuple(ipaddress.ip_network(part.strip(), strict=False)
                     for part in value.split(",") if part.strip())
    except ValueError as problem:
        raise ValidationError(f"not a list of CIDR networks: {problem}") from None


def _check(test, message: str):
    """A validator from a predicate: marshmallow 4 ignores a validator's return value."""
    def validator(value) -> None:
        if not test(value):
            raise ValidationError(message)
    return validator


def _redis_url(value: str) -> None:
    if value and value.split("://", 1)[0] not in ("redis", "rediss", "unix"):
        raise ValidationError("must start with redis://, rediss:// or unix://")


def _positive(value: float) -> bool:
    if value <= 0:
        raise ValidationError("must be greater than zero")
    return True


def load() -> Settings:
    """Read and validate the settings; raise SettingsError naming every bad variable.

    `RECEIVER_CONFIG` may name an env file (KEY=value lines) read first; the environment wins.
    """
    env = Env(eager=False, expand_vars=False)
    config = os.environ.get("RECEIVER_CONFIG")
    if config:
        if not Path(config).is_file():
            raise SettingsError(f"RECEIVER_CONFIG: no such file {config!r}")
        env.read_env(config, recurse=False, override=False)
    env.add_parser("encoding", _encoding)
    env.add_parser("zone", _zone)
    env.add_parser("networks", _networks)

    with env.prefixed("RECEIVER_"):
        values = dict(
            redis_url=env.str("REDIS_URL", "", validate=_redis_url),
            redis_cluster=env.bool("REDIS_CLUSTER", False),
            redis_timeout=env.float("REDIS_TIMEOUT", Settings.redis_timeout, validate=_positive),
            stream_prefix=env.str("STREAM_PREFIX", "sms",
                                  validate=_check(str.strip, "must not be blank")),
            dedupe_ttl=env.timedelta("DEDUPE_TTL", timedelta(hours=48), validate=_check(
                lambda d: d.total_seconds() > 0, "must be greater than zero")),
            retention=env.timedelta("RETENTION", timedelta(days=7), validate=_check(
                lambda d: d.total_seconds() >= 0, "must not be negative")),
            redis_durability=env.str("REDIS_DURABILITY", "memory",
                                     validate=validate.OneOf(list(DURABILITY))),
            max_body=env.int("MAX_BODY", Settings.max_body, validate=_positive),
            proxy_count=env.int("PROXY_COUNT", 0, validate=validate.Range(min=0)),
            data_dir=env.path("DATA_DIR", "receiver-data"),
            spool_dir=env.str("SPOOL_DIR", ""),
            replay_interval=env.float("REPLAY_INTERVAL", 1.0, validate=validate.Range(min=0)),
            # The audit archive (receiver/archive.py): on unless RECEIVER_ARCHIVE=off; vendor
            # agreements (clause 6) want message logs kept at least six months.
            archive=env.bool("ARCHIVE", True),
            archive_dir=env.str("ARCHIVE_DIR", ""),
            archive_days=env.int("ARCHIVE_DAYS", Settings.archive_days,
                                 validate=validate.Range(min=1)),
        )
        vendors = {}
        for slug, adapter in REGISTRY.items():
            with env.prefixed(slug.upper() + "_"):
                vendors[slug] = dict(
                    token=env.str("TOKEN", ""),
                    allowed_ips=env.networks("ALLOWED_IPS", ""),
                    accounts=env.list("ACCOUNTS", []),
                    ack_body=env.str("ACK_BODY", "ok"),
                    encoding=env.encoding("ENCODING", adapter.encoding),
                    zone=env.zone("TIMEZONE", "Asia/Shanghai"),
                )
    try:
        env.seal()
    except EnvValidationError as problem:
        lines = [f"{name}: {' '.join(map(str, msgs))}" for name, msgs in
                 sorted(problem.error_messages.items())]
        raise SettingsError("invalid settings:\n  " + "\n  ".join(lines)) from None

    values["data_dir"] = Path(values["data_dir"])
    if not values["redis_url"]:
        # No URL: the embedded server of `receiver serve` when its socket is there.
        embedded = values["data_dir"] / "redis" / SOCKET_NAME
        values["redis_url"] = (f"unix://{embedded.resolve()}" if embedded.is_socket()
                               else Settings.redis_url)
    if values["redis_cluster"] and not re.search(r"\{[^{}]+\}", values["stream_prefix"]):
        # One script touches every stream and dedupe key of a push: in a cluster they must share
        # a hash slot, which a hash tag in the prefix gives them.
        raise SettingsError("RECEIVER_STREAM_PREFIX: with RECEIVER_REDIS_CLUSTER, use a hash-tagged "
                            f"prefix such as {{{values['stream_prefix']}}} (streams "
                            f"{{{values['stream_prefix']}}}:dlr, ...)")
    values["spool_dir"] = Path(values["spool_dir"] or values["data_dir"] / "spool")
    values["archive_dir"] = Path(values["archive_dir"] or values["data_dir"] / "archive")
    values["dedupe_ttl"] = values["dedupe_ttl"].total_seconds()
    values["retention"] = values["retention"].total_seconds()
    return Settings(**values, vendors={
        slug: VendorSettings(**{**v, "accounts": frozenset(a.strip() for a in v["accounts"] if
                                                          a.strip())})
        for slug, v in vendors.items()})
