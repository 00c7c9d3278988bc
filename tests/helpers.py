"""The shared table runner: raw request as the vendor sends it -> HTTP status and body ->
stream entries, checked against a real Redis."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from receiver import create_app, events, settings

SAMPLES = Path(__file__).parent / "samples"
FORM = "application/x-www-form-urlencoded"
ISO_UTC_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+00:00$")


def sample(name: str) -> bytes:
    """A long or binary request body kept in tests/samples/."""
    return (SAMPLES / name).read_bytes()


@dataclass
class Case:
    """One row of a vendor's table.

    `dlr`/`mo`: the expected entries in order, every field but `id`, `received_at` and `vendor`
    (those three are checked by the runner). `dead`: per expected dead letter, the fields to
    match; `reason` matches as a substring, the others exactly (bytes for `query`/`body`).
    """

    name: str
    path: str
    body: bytes = b""
    query: bytes = b""
    method: str = "POST"
    content_type: str | None = FORM
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 200
    response: bytes = b"ok"
    dlr: list[dict[str, str]] = field(default_factory=list)
    mo: list[dict[str, str]] = field(default_factory=list)
    dead: list[dict[str, Any]] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    remote_addr: str = "127.0.0.1"

    def __str__(self) -> str:
        return self.name


def make_app(redis_url: str, monkeypatch, data_dir: Path, **env: str):
    """An app on the test Redis, its data (spool) under `data_dir`; the background replayer
    is off unless RECEIVER_REPLAY_INTERVAL is given (tests drain the spool explicitly)."""
    monkeypatch.setenv("RECEIVER_REDIS_URL", redis_url)
    monkeypatch.setenv("RECEIVER_DATA_DIR", str(data_dir))
    monkeypatch.setenv("RECEIVER_REPLAY_INTERVAL", "0")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    app = create_app(settings.load())
    app.testing = True
    return app


def send(client, case: Case):
    """Send the request exactly as the case describes it (raw query and body bytes)."""
    headers = dict(case.headers)
    if case.content_type is not None:
        headers["Content-Type"] = case.content_type
    # query_string= takes no bytes: put them in QUERY_STRING as WSGI carries them (latin-1 str).
    return client.open(case.path, method=case.method, data=case.body, headers=headers,
                       environ_base={"REMOTE_ADDR": case.remote_addr},
                       environ_overrides={"QUERY_STRING": case.query.decode("latin-1")})


def entries(r: redis.Redis, stream: str) -> list[dict[str, str | bytes]]:
    """Entries of a stream; values decoded as UTF-8 except dead letters' raw query and body."""
    out = []
    for _id, fields in r.xrange(stream):
        out.append({k.decode(): (v if k in (b"query", b"body") else v.decode())
                    for k, v in fields.items()})
    return out


def run_case(app_factory, r: redis.Redis, case: Case, *, vendor: str | None = None) -> None:
    app = app_factory(**case.env)
    response = send(app.test_client(), case)
    assert (response.status_code, response.data) == (case.status, case.response), case.name
    vendor = vendor or case.path.split("/")[2]
    for kind, expected in (("dlr", case.dlr), ("mo", case.mo)):
        got = entries(r, f"sms:{kind}")
        for entry in got:
            assert events.check(entry) == {}, (case.name, entry)
            assert ISO_UTC_MS.match(entry.pop("received_at")), case.name
            assert entry.pop("vendor") == vendor, case.name
            assert entry.pop("id") == events.record_id({**entry, "vendor": vendor}), case.name
        assert got == expected, f"{case.name}: {kind} entries differ"
    dead = entries(r, "sms:deadletter")
    assert len(dead) == len(case.dead), (case.name, dead)
    for letter, expected in zip(dead, case.dead):
        assert events.check(letter, "deadletter") == {}, (case.name, letter)
        for name, value in expected.items():
            if name == "reason":
                assert value in letter["reason"], (case.name, letter["reason"])
            else:
                assert letter.get(name) == value, (case.name, name, letter.get(name))
