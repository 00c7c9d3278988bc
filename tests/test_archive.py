"""The audit archive (issue 3, item 5): every push on disk as received, searchable, compressed
when its day is over, deleted past retention; and `replay`, which re-decodes archived or
dead-lettered pushes with today's adapters and publishes each record once."""
from __future__ import annotations

import base64
import fcntl
import gzip
import json
import logging
import os
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, strategies as st

from receiver import events, settings
from receiver.archive import Archive, archive_cli, raw_digest, replay, request_line

from . import e2e
from .helpers import FORM, entries

TODAY = datetime.now(timezone.utc).date()
B = "0278387837488834"


def archive_lines(app) -> list[dict]:
    archive = app.extensions["receiver.archive"]
    return list(archive.lines())


def run(command, *args: str) -> list[dict]:
    """Run a CLI command; its stdout as JSON lines."""
    result = CliRunner().invoke(command, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def old_line(app, *, day: date, body: bytes, published: list[dict] = (),
             dead: list[tuple[str, str | None]] = (), status: int = 200, vendor: str = "topen",
             published_ids: list[str] | None = None) -> dict:
    """An archive line as the view would have written it on `day`, built by the real
    `request_line`: `published` are the events taken then, `dead` the dead letters."""
    received_at = f"{day.isoformat()}T08:00:00.000+00:00"
    entries_ = [(e["kind"], e["id"], e) for e in published]
    entries_ += [("deadletter", "dl-x", {"reason": reason, **({"record": record} if record else {})})
                 for reason, record in dead]
    with app.test_request_context(f"/push/{vendor}", method="POST", data=body,
                                  content_type=FORM, environ_base={"REMOTE_ADDR": "10.1.2.3"}):
        from flask import request
        request.view_args = {"vendor": vendor}
        line = request_line(request, status, received_at=received_at, body=body,
                            entries=entries_, outcome="0 duplicates" if status == 200 else None)
    if published_ids is not None:
        line["outcome"]["published"] = published_ids
    return line


def write_day(directory: Path, day: date, lines: list[dict], name: str = "old-1-0.jsonl") -> Path:
    path = directory / day.isoformat() / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as out:
        for line in lines:
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
    return path


def report(mobile: str, batch: str = B, account: str = "acc1") -> dict:
    """A topen report event as today's decoder makes it."""
    raw = f"{batch},{mobile},DELIVRD"
    return events.complete({"kind": "dlr", "batch_id": batch, "mobile": "+86" + mobile,
                            "status": "delivered", "vendor_status": "DELIVRD", "raw": raw,
                            "account": account}, "topen", "2020-01-01T00:00:00.000+00:00")


# 1. Every request that reaches the view is archived, bytes intact --------------------------

def test_every_push_is_archived_with_its_bytes_headers_address_and_outcome(app_factory, r):
    app = app_factory(RECEIVER_TOPEN_TOKEN="s3cret")
    client = app.test_client()
    gb2312 = b"Class=mo&SmsName=demo&Mobile=13802102102&Message=\xcd\xcb\xb6\xa9&LinkId=1"
    nul = f"account=acc1&GetReport={B},13900000000,DELIVRD|\x00\x00junk\x00|".encode()
    assert client.get("/push/smsadmin", environ_base={"REMOTE_ADDR": "10.0.0.7"},
                      environ_overrides={"QUERY_STRING": gb2312.decode("latin-1")}
                      ).status_code == 200
    assert client.post("/push/topen/s3cret", data=nul, content_type=FORM,
                       headers={"X-Trace": "t-1", "Authorization": "Basic c2VjcmV0"},
                       environ_base={"REMOTE_ADDR": "10.0.0.8"}).status_code == 200

    first, second = archive_lines(app)
    assert base64.b64decode(first["query"]) == gb2312
    assert base64.b64decode(first["body"]) == b""
    assert (first["vendor"], first["method"], first["remote_addr"], first["status"]) == \
        ("smsadmin", "GET", "10.0.0.7", 200)
    assert first["outcome"]["published"] == [e["id"] for e in entries(r, "sms:mo")]

    assert base64.b64decode(second["body"]) == nul
    assert (second["vendor"], second["remote_addr"], second["status"]) == ("topen", "10.0.0.8", 200)
    assert ["X-Trace", "t-1"] in second["headers"]
    assert ["Authorization", "***"] in second["headers"]
    assert second["path"] == "/push/topen/***"  # the push secret is not archived
    outcome = second["outcome"]
    assert outcome["published"] == [e["id"] for e in entries(r, "sms:dlr")]
    assert len(outcome["published"]) == 1 and outcome["spooled"] is False
    assert [record for _, record in outcome["dead_letters"]] == ["\x00\x00junk\x00"]
    assert second["received_at"] == entries(r, "sms:dlr")[0]["received_at"]

    archive = app.extensions["receiver.archive"]
    files = list(archive.directory.glob("*/*.jsonl"))
    assert len(files) == 1 and f"-{os.getpid()}-" in files[0].name
    assert b"s3cret" not in files[0].read_bytes()


def test_the_outcome_names_each_event_taken_and_each_dead_letter_in_order(app_factory):
    app = app_factory()
    taken = [report("13900000000"), report("13900000001")]
    dead = [("bad record: no usable mobile in 'x'", "1,x,DELIVRD"), ("empty push", None)]
    line = old_line(app, day=TODAY, body=b"x", published=taken, dead=dead)
    assert list(line) == ["received_at", "vendor", "method", "path", "remote_addr", "headers",
                          "content_type", "query", "body", "status", "outcome"]
    # The raw digests are what replay compares with: pinned, like the ids.
    assert line["outcome"] == {
        "store": "0 duplicates", "spooled": False, "published": [e["id"] for e in taken],
        "published_raw": ["ee176891f2402a71", "80124e4d8bc9fdc2"], "duplicates": 0,
        "dead_letters": [list(letter) for letter in dead]}
    assert raw_digest("13900000000|,|退订|,|2014-06-10 15:34:11") == "982be4faffe1b393"
    assert raw_digest("a\ud800b") == "f78d465fc72d8821"  # a lone surrogate hashes too
    refused = old_line(app, day=TODAY, body=b"x", published=taken, dead=dead, status=503)
    assert refused["outcome"] == {"store": None, "spooled": False, "published": [],
                                  "published_raw": [], "duplicates": 0, "dead_letters": []}


def test_the_same_push_twice_records_a_duplicate(app_factory, r):
    app = app_factory()
    body = f"account=acc1&GetReport={B},13900000000,DELIVRD|".encode()
    for _ in range(2):
        app.test_client().post("/push/topen", data=body, content_type=FORM)
    first, second = archive_lines(app)
    assert first["outcome"]["duplicates"] == 0 and second["outcome"]["duplicates"] == 1
    assert first["outcome"]["published"] == second["outcome"]["published"]
    assert r.xlen("sms:dlr") == 1


def test_refused_requests_are_archived_too(app_factory, r, tmp_path):
    app = app_factory(RECEIVER_TOPEN_TOKEN="s3cret", RECEIVER_SMSADMIN_ALLOWED_IPS="10.9.0.0/16",
                      RECEIVER_MAX_BODY="64")
    client = app.test_client()
    assert client.post("/push/topen/guess", data=b"account=a").status_code == 404
    assert client.post("/push/nosuchvendor", data=b"x").status_code == 404
    assert client.get("/push/smsadmin?Class=rpt", environ_base={"REMOTE_ADDR": "10.8.0.1"}
                      ).status_code == 403
    assert client.post("/push/topen/s3cret", data=b"x" * 65).status_code == 413
    lines = archive_lines(app)
    assert [(ln["vendor"], ln["status"]) for ln in lines] == [
        ("topen", 404), ("nosuchvendor", 404), ("smsadmin", 403), ("topen", 413)]
    assert lines[0]["path"] == "/push/topen/***"
    assert base64.b64decode(lines[2]["query"]) == b"Class=rpt"
    assert lines[2]["remote_addr"] == "10.8.0.1"
    for line in lines:
        assert line["body"] is None  # refused before the body was read
        assert line["outcome"]["published"] == [] and line["outcome"]["store"] is None


def test_a_503_is_archived_with_nothing_published(app_factory, r, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    app = app_factory(RECEIVER_REDIS_URL="redis://127.0.0.1:1/0", RECEIVER_REDIS_TIMEOUT="0.5",
                      RECEIVER_SPOOL_DIR=str(blocker / "spool"))
    body = f"account=acc1&GetReport={B},13900000000,DELIVRD|".encode()
    assert app.test_client().post("/push/topen", data=body, content_type=FORM).status_code == 503
    (line,) = archive_lines(app)
    assert line["status"] == 503 and base64.b64decode(line["body"]) == body
    assert line["outcome"]["published"] == [] and line["outcome"]["store"] is None


def test_an_unwritable_archive_does_not_fail_pushes(app_factory, r, tmp_path, caplog):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    app = app_factory(RECEIVER_ARCHIVE_DIR=str(blocker / "archive"))
    body = f"account=acc1&GetReport={B},13900000000,DELIVRD|".encode()
    with caplog.at_level(logging.ERROR, logger="receiver.archive"):
        for _ in range(2):
            answer = app.test_client().post("/push/topen", data=body, content_type=FORM)
            assert (answer.status_code, answer.data) == (200, b"ok")
    assert r.xlen("sms:dlr") == 1
    assert any("cannot append" in message for message in caplog.messages)


def test_archive_off(app_factory, r, tmp_path):
    app = app_factory(RECEIVER_ARCHIVE="off")
    assert app.extensions["receiver.archive"] is None
    body = f"account=acc1&GetReport={B},13900000000,DELIVRD|".encode()
    assert app.test_client().post("/push/topen", data=body, content_type=FORM).status_code == 200
    assert not (tmp_path / "data" / "archive").exists()


def test_archive_settings(monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.startswith("RECEIVER_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("RECEIVER_DATA_DIR", str(tmp_path))
    config = settings.load()
    assert (config.archive, config.archive_dir, config.archive_days) == (True, tmp_path / "archive", 183)
    monkeypatch.setenv("RECEIVER_ARCHIVE_DAYS", "0")
    monkeypatch.setenv("RECEIVER_ARCHIVE", "sometimes")
    with pytest.raises(settings.SettingsError) as raised:
        settings.load()
    assert "RECEIVER_ARCHIVE_DAYS" in str(raised.value)
    assert "RECEIVER_ARCHIVE:" in str(raised.value)


# 2. Search ----------------------------------------------------------------------------------

def test_search_by_mobile_batch_date_and_vendor(app_factory, r):
    app = app_factory()
    client = app.test_client()
    client.post("/push/topen", content_type=FORM,
                data=f"account=acc1&GetReport={B},13900000001,DELIVRD|{B},13900000002,UNDELIVRD|".encode())
    client.post("/push/topen", content_type=FORM,
                data=b"account=acc1&GetReport=B9,13900000009|")  # 2 fields: dead-lettered
    client.get("/push/smsadmin", environ_overrides={"QUERY_STRING": (
        b"Class=mo&SmsName=demo&Mobile=13802102102&Message=\xcd\xcb\xb6\xa9&LinkId=1"
    ).decode("latin-1")})

    for form in ("13900000001", "+8613900000001", "8613900000001", "+86 139-0000-0001"):
        (hit,) = run(archive_cli, "search", "--mobile", form)
        assert [(e["mobile"], e["batch_id"], e["published"]) for e in hit["records"]] == \
            [("+8613900000001", B, True)], form
        assert (hit["vendor"], hit["status"], hit["remote_addr"]) == ("topen", 200, "127.0.0.1")

    (hit,) = run(archive_cli, "search", "--batch", B)
    assert [e["mobile"] for e in hit["records"]] == ["+8613900000001", "+8613900000002"]

    (hit,) = run(archive_cli, "search", "--mobile", "13900000009")
    assert hit["records"] == [] and [f["record"] for f in hit["failing"]] == ["B9,13900000009"]

    today = date.fromisoformat(archive_lines(app)[0]["received_at"][:10])
    (hit,) = run(archive_cli, "search", "--mobile", "13802102102", "--date", today.isoformat())
    assert [(e["kind"], e["text"]) for e in hit["records"]] == [("mo", "退订")]

    assert len(run(archive_cli, "search", "--date", today.isoformat())) == 3
    assert run(archive_cli, "search", "--date", (today - timedelta(days=1)).isoformat()) == []
    assert run(archive_cli, "search", "--mobile", "13900000001", "--vendor", "smsadmin") == []
    assert run(archive_cli, "search", "--mobile", "13900000003") == []


def test_search_reads_a_compressed_past_day(app_factory, r):
    app = app_factory()
    archive = app.extensions["receiver.archive"]
    day = TODAY - timedelta(days=30)
    body = f"account=acc1&GetReport={B},13900000005,DELIVRD|".encode()
    write_day(archive.directory, day, [old_line(app, day=day, body=body, published=[report("13900000005")])])

    assert archive.maintain() == {"compressed": 1, "deleted_days": 0}
    day_dir = archive.directory / day.isoformat()
    assert [p.name for p in day_dir.iterdir()] == ["old-1-0.jsonl.gz"]
    with gzip.open(day_dir / "old-1-0.jsonl.gz") as packed:
        assert json.loads(packed.read())["received_at"].startswith(day.isoformat())

    (hit,) = run(archive_cli, "search", "--mobile", "13900000005", "--date", day.isoformat())
    assert [e["mobile"] for e in hit["records"]] == ["+8613900000005"]
    assert run(archive_cli, "search", "--mobile", "13900000005", "--since",
               (day - timedelta(days=1)).isoformat(), "--until", day.isoformat())[0]["records"]
    assert run(archive_cli, "search", "--mobile", "13900000005",
               "--since", (day + timedelta(days=1)).isoformat()) == []


# 3. Compression and retention ---------------------------------------------------------------

def test_a_held_file_is_not_compressed_until_its_writer_lets_go(tmp_path):
    archive = Archive(tmp_path, keep_days=10, maintain_every=0)
    day = TODAY - timedelta(days=1)
    path = write_day(tmp_path, day, [{"received_at": f"{day}T01:00:00.000+00:00", "vendor": "x"}])
    holder = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)  # a live process still writing yesterday's file
        assert archive.maintain()["compressed"] == 0
        assert path.exists()
    finally:
        os.close(holder)
    assert archive.maintain()["compressed"] == 1
    assert not path.exists() and path.with_name(path.name + ".gz").exists()
    assert [ln["vendor"] for ln in archive.lines()] == ["x"]


def test_a_writer_lets_go_of_its_file_when_the_day_is_over(tmp_path):
    archive = Archive(tmp_path, keep_days=10, maintain_every=0)
    archive.append({"received_at": events.now(), "vendor": "first"})
    # Tomorrow's maintenance: this process's own file of the day before is closed and packed.
    assert archive.maintain(today=TODAY + timedelta(days=1))["compressed"] == 1
    archive.append({"received_at": events.now(), "vendor": "second"})
    names = sorted(p.suffix for p in (tmp_path / TODAY.isoformat()).iterdir())
    assert names == [".gz", ".jsonl"]
    assert sorted(ln["vendor"] for ln in archive.lines()) == ["first", "second"]


def test_retention_deletes_days_older_than_keep_days(tmp_path, monkeypatch):
    days = {n: TODAY - timedelta(days=n) for n in (0, 1, 183, 184, 400)}
    for n, day in days.items():
        write_day(tmp_path, day, [{"received_at": f"{day}T01:00:00.000+00:00", "vendor": str(n)}])
    (tmp_path / "not-a-day").mkdir()
    monkeypatch.setenv("RECEIVER_ARCHIVE_DIR", str(tmp_path))
    monkeypatch.delenv("RECEIVER_ARCHIVE_DAYS", raising=False)
    (done,) = run(archive_cli, "maintain")
    assert done == {"compressed": 2, "deleted_days": 2}  # days 1 and 183 packed; 184, 400 gone
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [days[n].isoformat() for n in (0, 1, 183)] + ["not-a-day"])
    assert sorted(int(ln["vendor"]) for ln in Archive(tmp_path).lines()) == [0, 1, 183]
    assert list((tmp_path / days[0].isoformat()).glob("*.gz")) == []  # today's stays plain


def test_a_line_appended_just_after_midnight_belongs_to_its_day(tmp_path):
    day = TODAY - timedelta(days=5)
    late = {"received_at": f"{day}T23:59:59.990+00:00", "vendor": "late"}
    write_day(tmp_path, day + timedelta(days=1), [
        late, {"received_at": f"{day + timedelta(days=1)}T00:00:00.020+00:00", "vendor": "next"}])
    archive = Archive(tmp_path)
    start = datetime.combine(day, datetime.min.time(), timezone.utc)
    assert [ln["vendor"] for ln in archive.lines(start, start + timedelta(days=1))] == ["late"]
    assert [ln["vendor"] for ln in archive.lines(start + timedelta(days=1),
                                                 start + timedelta(days=2))] == ["next"]


def test_a_forked_process_writes_a_file_of_its_own(tmp_path):
    archive = Archive(tmp_path, maintain_every=0)
    archive.append({"received_at": events.now(), "vendor": "parent"})
    child = os.fork()
    if child == 0:  # the child: append, then leave without running pytest's teardown
        try:
            os._exit(0 if archive.append({"received_at": events.now(), "vendor": "child"}) else 1)
        finally:
            os._exit(2)
    assert os.waitpid(child, 0)[1] == 0
    archive.append({"received_at": events.now(), "vendor": "parent"})
    files = {int(p.name.split("-")[-2]): [json.loads(ln)["vendor"] for ln in p.read_text().splitlines()]
             for p in tmp_path.glob("*/*.jsonl")}
    assert files == {os.getpid(): ["parent", "parent"], child: ["child"]}


def test_a_torn_last_line_is_skipped(tmp_path):
    day = TODAY - timedelta(days=2)
    path = write_day(tmp_path, day, [{"received_at": f"{day}T01:00:00.000+00:00", "vendor": "ok"}])
    with open(path, "ab") as out:
        out.write(b'{"received_at": "' + day.isoformat().encode() + b"T02:00")  # killed mid-write
    assert [ln["vendor"] for ln in Archive(tmp_path).lines()] == ["ok"]


# 4. Replay ----------------------------------------------------------------------------------

def test_replay_from_the_archive_after_a_parser_fix_publishes_each_record_once(app_factory, r):
    app = app_factory()
    archive = app.extensions["receiver.archive"]
    day = TODAY - timedelta(days=20)
    good, quirky = report("13900000001"), f"{B},,13900000002,DELIVRD"
    lines = [
        # Then, the `batch,,mobile,status` quirk was dead-lettered; today it decodes.
        old_line(app, day=day, body=f"account=acc1&GetReport={good['raw']}|{quirky}|".encode(),
                 published=[good], dead=[("bad record: 4 fields", quirky)]),
        # A record published then, whose id a later fix changed: skipped by its raw record.
        old_line(app, day=day, body=f"account=acc1&GetReport={B},13900000003,DELIVRD|".encode(),
                 published=[report("13900000003")], published_ids=["0" * 32]),
        # Refused then (wrong secret): never replayed.
        old_line(app, day=day, body=f"account=acc1&GetReport={B},13900000004,DELIVRD|".encode(),
                 status=404),
        # Still not decodable.
        old_line(app, day=day, body=b"hello=world", dead=[("no GetReport", None)]),
    ]
    write_day(archive.directory, day, lines)

    (dry,) = run(replay, "--archive", "--date", day.isoformat(), "--dry-run")
    assert dry == {"pushes": 3, "replayed": 1, "skipped": 2, "still_failing": 1,
                   "not_accepted": 1, "dry_run": True}
    assert r.xlen("sms:dlr") == 0

    (first,) = run(replay, "--archive", "--date", day.isoformat())
    assert (first["replayed"], first["skipped"], first["still_failing"]) == (1, 2, 1)
    (event,) = entries(r, "sms:dlr")
    assert (event["mobile"], event["raw"], event["received_at"]) == \
        ("+8613900000002", quirky, lines[0]["received_at"])
    assert events.check(event) == {}
    # Marked seen for the archive's retention, and in the live 48 h window that the receiver
    # checks.
    ttls = sorted(r.pttl(key) for key in r.scan_iter("sms:seen:*")
                  if r.sismember(key, event["id"]))
    assert len(ttls) == 2
    assert 72 * 3600 * 1000 - 60_000 < ttls[0] <= 96 * 3600 * 1000 < 180 * 86400 * 1000 < ttls[1]
    assert r.xlen("sms:deadletter") == 0  # replay publishes no new dead letters

    (second,) = run(replay, "--archive", "--date", day.isoformat())
    assert (second["replayed"], second["skipped"]) == (0, 3)
    assert r.xlen("sms:dlr") == 1
    assert run(replay, "--archive", "--date", (day + timedelta(days=1)).isoformat())[0]["pushes"] == 0


def letter(body: bytes, record: str | None = None, vendor: str = "topen",
           received_at: str = "2020-03-01T00:00:00.000+00:00") -> dict:
    """A dead letter as views._entries writes it."""
    fields = {"vendor": vendor, "reason": "bad", "received_at": received_at,
              "remote_addr": "10.0.0.1", "method": "POST", "path": f"/push/{vendor}",
              "content_type": FORM, "query": b"", "body": body}
    if record is not None:
        fields["record"] = record
    return fields


def test_replay_from_the_deadletter_stream(app_factory, r):
    app = app_factory()
    whole = f"account=acc1&GetReport={B},13900000001,DELIVRD|{B},13900000002,DELIVRD|".encode()
    partial = f"account=acc1&GetReport={B},13900000003,DELIVRD|{B},,13900000004,DELIVRD|".encode()
    for fields in (letter(whole),                                     # whole push -> 2 events
                   letter(partial, record=f"{B},,13900000004,DELIVRD"),  # only that record
                   letter(b"hello=world")):                           # still fails
        r.xadd("sms:deadletter", fields)
    # And one the live app dead-letters today: a record today's decoder still refuses.
    app.test_client().post("/push/topen", content_type=FORM,
                           data=f"account=acc1&GetReport={B},13900000005|".encode())
    assert r.xlen("sms:deadletter") == 4

    (first,) = run(replay, "--deadletter")
    assert (first["pushes"], first["replayed"], first["skipped"], first["still_failing"]) == (4, 3, 0, 2)
    assert sorted(e["mobile"] for e in entries(r, "sms:dlr")) == \
        ["+8613900000001", "+8613900000002", "+8613900000004"]
    assert r.xlen("sms:deadletter") == 4

    (second,) = run(replay, "--deadletter")
    assert (second["replayed"], second["skipped"], second["still_failing"]) == (0, 3, 2)
    assert r.xlen("sms:dlr") == 3
    assert run(replay, "--deadletter", "--vendor", "smsadmin")[0]["pushes"] == 0


def test_replay_of_the_same_record_from_archive_and_deadletter_publishes_it_once(app_factory, r):
    app = app_factory()
    archive = app.extensions["receiver.archive"]
    day = TODAY - timedelta(days=3)
    quirky = f"{B},,13900000007,DELIVRD"
    body = f"account=acc1&GetReport={quirky}|".encode()
    write_day(archive.directory, day, [old_line(app, day=day, body=body, dead=[("bad", quirky)])])
    r.xadd("sms:deadletter", letter(body, record=quirky, received_at=f"{day}T09:00:00.000+00:00"))
    (tally,) = run(replay, "--archive", "--deadletter", "--since", day.isoformat())
    assert (tally["replayed"], tally["skipped"]) == (1, 1)
    assert [e["mobile"] for e in entries(r, "sms:dlr")] == ["+8613900000007"]


def test_replay_needs_a_source(app_factory):
    app_factory()
    result = CliRunner().invoke(replay, [])
    assert result.exit_code == 2 and "--archive" in result.output


# 5. Under gunicorn: one file per worker, no interleaving ------------------------------------

def test_gunicorn_workers_write_files_of_their_own(redis_server, r):
    port = e2e.free_port()
    bodies = [f"account=acc1&GetReport=G{n},139000000{n:02d},DELIVRD|".encode() for n in range(16)]
    with e2e.start_gunicorn(port, redis_server.url, workers=2, timeout=30.0) as server:
        workers = set(e2e.children(server.pid))
        for body in bodies:
            answer = e2e.request(port, e2e.http_request("POST", b"/push/topen", body,
                                                        content_type=FORM))
            assert answer.status == 200
        server.stop()
        files = sorted((Path(server.scratch[0]) / "archive").glob("*/*.jsonl"))
        assert files and all(int(f.name.split("-")[-2]) in workers for f in files)
        lines = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    assert sorted(base64.b64decode(ln["body"]) for ln in lines) == sorted(bodies)
    assert sorted(i for ln in lines for i in ln["outcome"]["published"]) == \
        sorted(e["id"] for e in entries(r, "sms:dlr"))


def test_the_push_secret_is_masked_in_dead_letters_and_the_archive(app_factory, r):
    app = app_factory(RECEIVER_TOPEN_TOKEN="s3cret")
    response = app.test_client().post("/push/topen/s3cret", data=b"hello=world", content_type=FORM)
    assert (response.status_code, response.data) == (200, b"ok")
    [letter] = entries(r, "sms:deadletter")
    assert letter["path"] == "/push/topen/***"
    archived = list(Path(app.config["RECEIVER"].archive_dir).rglob("*.jsonl"))
    assert archived and all(b"s3cret" not in f.read_bytes() for f in archived)


@pytest.mark.parametrize("environ", [
    {"HTTP_HOST": "x", "CONTENT_TYPE": "text/xml", "CONTENT_LENGTH": "3", "HTTP_X_A_B": "1"},
    {"HTTP_CONTENT_TYPE": "dup", "CONTENT_TYPE": "", "CONTENT_LENGTH": "", "HTTP_COOKIE": "s"},
    {"HTTP_AUTHORIZATION": "Basic eA==", "HTTP_PROXY_AUTHORIZATION": "p", "REMOTE_ADDR": "1"},
    {"wsgi.input": None, "PATH_INFO": "/push/topen", "HTTP_USER_AGENT": "UA/1 \u00e9"},
])
def test_the_archived_headers_are_werkzeugs_list_with_credentials_masked(environ):
    """The archive reads headers from the environ itself (cheaper); they must be what
    `request.headers` lists, in its order, with credentials masked."""
    from receiver.archive import _headers
    assert _headers(environ) == _werkzeug_headers(environ)


def _werkzeug_headers(environ):
    """What the archive must list: `request.headers`, in its order, credentials masked."""
    from werkzeug.datastructures import EnvironHeaders
    return [[name, "***" if name.lower() in {"authorization", "proxy-authorization",
                                             "cookie"} else value]
            for name, value in EnvironHeaders(environ).items()]


_ENVIRON_KEYS = st.one_of(
    st.sampled_from(["CONTENT_TYPE", "CONTENT_LENGTH", "HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH",
                     "HTTP_COOKIE", "HTTP_AUTHORIZATION", "HTTP_PROXY_AUTHORIZATION", "HTTP_",
                     "HTTP_HOST", "REMOTE_ADDR", "wsgi.input", "PATH_INFO", "CONTENT_MD5"]),
    st.text("ABCXY_z-9", max_size=8).map(lambda name: "HTTP_" + name),
    st.text("ABCXY_z.9", max_size=8))


@given(st.dictionaries(_ENVIRON_KEYS, st.sampled_from(["", "v", "Basic eA==", "\u00e9 x"]),
                       max_size=12))
def test_any_environ_archives_the_headers_werkzeug_lists(environ):
    """The archive's own header reading (a table of the keys it has met) lists what
    `request.headers` lists, in its order, credentials masked: on a key's first sight and after."""
    from receiver.archive import _headers
    expected = _werkzeug_headers(environ)
    assert _headers(environ) == expected
    assert _headers(environ) == expected


@given(st.floats(min_value=0, max_value=2 ** 34, allow_nan=False))
def test_the_archive_day_of_a_time_is_its_utc_date(timestamp):
    from receiver.archive import _utc_day
    assert _utc_day(timestamp) == datetime.fromtimestamp(timestamp, timezone.utc).date().isoformat()


def test_a_line_with_a_lone_surrogate_is_written_and_read_back(tmp_path):
    """orjson writes the lines; one it refuses (a lone surrogate, e.g. from undecodable path
    bytes) is still written, by json with surrogates passed through, and reads back equal."""
    from receiver.archive import _read
    archive = Archive(tmp_path, maintain_every=0)
    lines = [{"path": "/push/\udc80x", "n": 1}, {"path": "/push/topen", "reason": "退订", "n": 2}]
    assert all(archive.append(line) for line in lines)
    archive.close()
    [written] = list(tmp_path.glob("*/*.jsonl"))
    assert list(_read(written)) == lines
