"""The HTTP edge of the one view: unknown vendors, methods, the body limit (plain and chunked),
one-line error bodies, /healthz, empty pushes, and Redis being down."""
from __future__ import annotations

import gc
import io
import sys
from pathlib import Path

import pytest
import redis as redis_py
from werkzeug.test import EnvironBuilder, run_wsgi_app

from receiver import spool
from receiver.redis_server import free_port
from receiver.vendors import REGISTRY

from . import e2e
from .helpers import FORM, entries

LIMIT = 1000
PUSH = b"account=acc1&GetReport=0278387837488834,13900000000,DELIVRD|"
STREAMS = ("sms:dlr", "sms:mo", "sms:deadletter")


def padded(size: int) -> bytes:
    """A valid topen push of exactly `size` bytes (a leading field topen ignores pads it)."""
    head = b"pad="
    return head + b"x" * (size - len(head) - len(b"&") - len(PUSH)) + b"&" + PUSH


def one_line(response) -> str:
    """The error body, checked to be one text/plain line ending in a newline."""
    assert response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    assert text.endswith("\n") and text.count("\n") == 1 and text.strip(), text
    return text


def nothing_stored(r: redis_py.Redis) -> bool:
    """No stream entry and no dedupe key at all."""
    return r.keys("*") == []


@pytest.fixture
def app(app_factory):
    return app_factory(RECEIVER_MAX_BODY=str(LIMIT))


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_unknown_vendor_is_404_naming_it(client, r, method):
    response = client.open("/push/nosuchvendor", method=method, data=PUSH, content_type=FORM)
    assert response.status_code == 404
    assert "nosuchvendor" in one_line(response)
    assert nothing_stored(r)


@pytest.mark.parametrize("path", ["/push/", "/push//x", "/push/topen/", "/push/topen/a/b",
                                  "/push/topen//"])
def test_a_push_url_of_no_route_is_404_one_line(client, r, path):
    response = client.post(path, data=PUSH, content_type=FORM)
    assert response.status_code == 404
    one_line(response)
    assert nothing_stored(r)


def test_an_unexpected_error_is_a_one_line_500_logged_and_archived(app_factory, r, caplog,
                                                                    monkeypatch):
    """A bug in the view (here: the store raising something it never should) answers 500 in
    one line, logs the traceback with the secret masked, and the request is still archived."""
    app = app_factory(RECEIVER_TOPEN_TOKEN="s3cret")
    app.testing = False
    store = app.extensions["receiver"]
    monkeypatch.setattr(store, "store", lambda entries: 1 / 0)
    lines = []
    monkeypatch.setattr(app.extensions["receiver.archive"], "append", lines.append)
    response = app.test_client().post("/push/topen/s3cret", data=PUSH, content_type=FORM)
    assert response.status_code == 500
    one_line(response)
    assert "push to /push/topen/*** failed" in caplog.text and "ZeroDivisionError" in caplog.text
    assert "s3cret" not in caplog.text
    [line] = lines
    assert (line["status"], line["path"], line["outcome"]["store"]) == (500, "/push/topen/***",
                                                                         None)


def test_unknown_path_is_404_one_line(client, r):
    response = client.get("/elsewhere")
    assert response.status_code == 404
    one_line(response)
    assert nothing_stored(r)


@pytest.mark.parametrize("vendor", sorted(REGISTRY))
@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
def test_other_methods_are_405_with_allow(client, r, vendor, method):
    response = client.open(f"/push/{vendor}", method=method, data=PUSH, content_type=FORM,
                           query_string=PUSH.decode())
    assert response.status_code == 405
    if method != "HEAD":  # a HEAD answer has no body
        assert method in one_line(response)
    allowed = {m.strip() for m in response.headers["Allow"].split(",")}
    assert {"GET", "POST"} <= allowed and method not in allowed
    assert nothing_stored(r)


def test_body_over_the_limit_is_413_and_nothing_published(client, r):
    response = client.post("/push/topen", data=padded(LIMIT + 1), content_type=FORM)
    assert response.status_code == 413
    assert str(LIMIT) in one_line(response)
    assert nothing_stored(r)


def test_body_exactly_at_the_limit_is_accepted(client, r):
    body = padded(LIMIT)
    assert len(body) == LIMIT
    response = client.post("/push/topen", data=body, content_type=FORM)
    assert (response.status_code, response.data) == (200, b"ok")
    [event] = entries(r, "sms:dlr")
    assert event["mobile"] == "+8613900000000"


# The view reads a body two ways: straight from a stream the server ends where the body ends
# (`wsgi.input_terminated`, as under gunicorn), or through Werkzeug's get_data otherwise.
READS = {"server-terminated": {"wsgi.input_terminated": True}, "werkzeug": {}}


@pytest.mark.parametrize("environ", READS.values(), ids=READS.keys())
@pytest.mark.parametrize("size, status", [(LIMIT - 1, 200), (LIMIT, 200), (LIMIT + 1, 413)])
def test_body_limit_whichever_way_the_body_is_read(client, r, environ, size, status):
    response = client.post("/push/topen", data=padded(size), content_type=FORM,
                           environ_base=environ)
    assert response.status_code == status
    if status == 200:
        assert response.data == b"ok" and len(entries(r, "sms:dlr")) == 1
    else:
        assert str(LIMIT) in one_line(response) and nothing_stored(r)


@pytest.mark.parametrize("environ", READS.values(), ids=READS.keys())
def test_body_shorter_than_its_content_length_is_400_and_nothing_published(app, r, environ):
    """The client went away mid-body: half a batch is not acked. (The test client sets the
    Content-Length from the body it sends, so the environ is made here.)"""
    wsgi = EnvironBuilder("/push/topen", method="POST", data=PUSH[:-12], content_type=FORM,
                          environ_base=environ).get_environ()
    wsgi["CONTENT_LENGTH"] = str(len(PUSH))
    body, status, headers = run_wsgi_app(app, wsgi, buffered=True)
    text = b"".join(body).decode()
    assert status.startswith("400 ")
    assert text.startswith("body ended ") and text.endswith(
        f" of its {len(PUSH)} bytes; nothing was accepted\n" if environ else
        f" before its {len(PUSH)} bytes; nothing was accepted\n")
    assert nothing_stored(r)


# A push must leave no reference cycle behind (why: the comment in PushView.__call__).
# Checked by the environ's reference count, with the collector off: a request (or anything
# else the push made) caught in a cycle still holds the environ after the answer. Background
# threads cannot disturb that count, as they could a look at gc.garbage.
CYCLE_FREE = {
    "push": ("POST", "/push/topen", PUSH),
    "dead letter": ("POST", "/push/topen", b"no push field"),
    "unknown vendor": ("POST", "/push/nobody", PUSH),
    "wrong method": ("PUT", "/push/topen", PUSH),
    "over the limit": ("POST", "/push/topen", padded(LIMIT + 1)),
}


@pytest.mark.parametrize("method, path, body", CYCLE_FREE.values(), ids=CYCLE_FREE.keys())
def test_a_push_leaves_no_reference_cycle(app, r, method, path, body):
    def environ() -> dict:
        return EnvironBuilder(path, method=method, data=body, content_type=FORM,
                              environ_base=READS["server-terminated"]).get_environ()

    def answer(wsgi: dict) -> str:  # called directly: run_wsgi_app would pass on a copy
        statuses = []
        b"".join(app(wsgi, lambda status, headers, exc_info=None: statuses.append(status)))
        return statuses[0]

    answer(environ())  # warm: lazily built caches and the script
    gc.disable()
    try:
        wsgi = environ()
        before = sys.getrefcount(wsgi)
        status = answer(wsgi)
        after = sys.getrefcount(wsgi)
    finally:
        gc.enable()
    assert after == before, f"{status}: {after - before} reference(s) to the environ left"


def chunked(client, body: bytes):
    """A body with no Content-Length, as a chunked request reaches the app under gunicorn,
    which de-chunks it and sets `wsgi.input_terminated`."""
    return client.post("/push/topen", input_stream=io.BytesIO(body), content_type=FORM,
                       headers={"Transfer-Encoding": "chunked"},
                       environ_base={"wsgi.input_terminated": True})


def test_chunked_body_over_the_limit_is_413(client, r):
    """Werkzeug cuts a streamed body at the limit without an error: the view must notice."""
    response = chunked(client, padded(LIMIT + 500))
    assert response.status_code == 413
    one_line(response)
    assert nothing_stored(r)


def test_chunked_body_within_the_limit_is_read_whole(client, r):
    body = b"no push field at all: " + b"y" * 500
    response = chunked(client, body)
    assert (response.status_code, response.data) == (200, b"ok")
    [letter] = entries(r, "sms:deadletter")
    assert letter["body"] == body


@pytest.fixture
def gunicorn(redis_server, tmp_path):
    """The receiver under real gunicorn (one worker), body limit LIMIT."""
    port = free_port()
    with e2e.start_gunicorn(port, redis_server.url, RECEIVER_MAX_BODY=str(LIMIT),
                            RECEIVER_DATA_DIR=str(tmp_path / "data")):
        yield port


def chunked_request(body: bytes, size: int = 100) -> bytes:
    """A raw HTTP/1.1 chunked POST of `body` to /push/topen."""
    head = (b"POST /push/topen HTTP/1.1\r\nHost: x\r\nContent-Type: " + FORM.encode() +
            b"\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size])
                      for i in range(0, len(body), size))
    return head + chunks + b"0\r\n\r\n"


def test_gunicorn_chunked_body_over_the_limit_is_413(gunicorn, r):
    # The push record sits past the limit: acking this loses it.
    body = b"account=acc1&GetReport=" + b" " * LIMIT + PUSH.split(b"GetReport=")[1]
    response = e2e.request(gunicorn, chunked_request(body))
    assert response.status == 413
    assert response.body.count(b"\n") == 1
    assert nothing_stored(r)


def test_gunicorn_chunked_body_within_the_limit(gunicorn, r):
    body = padded(LIMIT)
    response = e2e.request(gunicorn, chunked_request(body))
    assert (response.status, response.body) == (200, b"ok")
    [event] = entries(r, "sms:dlr")
    assert event["mobile"] == "+8613900000000"


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.data.strip() == b"ok"


@pytest.mark.parametrize("vendor", sorted(REGISTRY))
def test_empty_get_push_is_one_dead_letter(client, r, vendor):
    response = client.get(f"/push/{vendor}")
    assert (response.status_code, response.data) == (200, b"ok")
    [letter] = entries(r, "sms:deadletter")
    assert "empty push" in letter["reason"]
    assert (letter["method"], letter["path"], letter["query"], letter["body"]) == (
        "GET", f"/push/{vendor}", b"", b"")
    assert entries(r, "sms:dlr") == entries(r, "sms:mo") == []


@pytest.mark.parametrize("vendor", sorted(REGISTRY))
def test_empty_get_push_is_kept_verbatim(client, r, vendor):
    """Whatever its reason says, an empty push is one dead letter, nothing else."""
    response = client.get(f"/push/{vendor}")
    assert (response.status_code, response.data) == (200, b"ok")
    [letter] = entries(r, "sms:deadletter")
    assert (letter["method"], letter["path"], letter["query"], letter["body"]) == (
        "GET", f"/push/{vendor}", b"", b"")
    assert entries(r, "sms:dlr") == entries(r, "sms:mo") == []


def down_app(app_factory, spool_dir: Path):
    """An app whose Redis URL points at a port where nothing listens."""
    return app_factory(RECEIVER_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
                       RECEIVER_REDIS_TIMEOUT="0.5", RECEIVER_SPOOL_DIR=str(spool_dir))


def test_redis_down_spools_before_the_ack(app_factory, r, tmp_path):
    """Redis down: the ack comes only once the push is in the spool (replayed later)."""
    spool_dir = tmp_path / "spool"
    client = down_app(app_factory, spool_dir).test_client()
    response = client.post("/push/topen", data=PUSH, content_type=FORM)
    assert (response.status_code, response.data) == (200, b"ok")
    [path] = spool.Spool(spool_dir).pending()
    [pushed] = list(spool.read(path))
    [(kind, _id, event)] = pushed
    assert (kind, event["mobile"], event["vendor_status"]) == ("dlr", "+8613900000000", "DELIVRD")
    assert nothing_stored(r)


def test_an_upgrade_from_the_key_per_id_layout_publishes_nothing_twice(app_factory, r):
    """A report the version before 1a4cd8b published and claimed as `sms:seen:<id>`: pushed
    again after the upgrade (the vendor retrying), it is a duplicate; a new one in the same
    push is published."""
    client = app_factory().test_client()
    assert client.post("/push/topen", data=PUSH, content_type=FORM).data == b"ok"
    [(_, fields)] = r.xrange("sms:dlr")
    r.flushall()  # what the old version left instead: the stream entry and a key per id
    r.xadd("sms:dlr", fields)
    r.set(b"sms:seen:" + fields[b"id"], "1", px=48 * 3600 * 1000)
    upgraded = app_factory().test_client()
    retry = PUSH + b"0278387837488835,13900000001,DELIVRD|"
    response = upgraded.post("/push/topen", data=retry, content_type=FORM)
    assert (response.status_code, response.data) == (200, b"ok")
    assert [f[b"mobile"] for _, f in r.xrange("sms:dlr")] == [b"+8613900000000",
                                                               b"+8613900000001"]
    assert not r.exists(b"sms:seen:" + fields[b"id"])


@pytest.mark.parametrize("body", [PUSH, b"garbage", b""], ids=["push", "undecodable", "empty"])
def test_redis_and_spool_down_is_503_and_nothing_acked(app_factory, r, tmp_path, body):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the spool directory should be")
    client = down_app(app_factory, blocker / "spool").test_client()
    response = client.post("/push/topen", data=body, content_type=FORM)
    assert response.status_code == 503
    assert b"ok" != response.data
    one_line(response)
    assert nothing_stored(r)


def test_a_clean_push_logs_at_debug_and_a_push_with_trouble_at_info(client, r, caplog):
    # gunicorn's access log and the archive have every push; the log's INFO lines are the
    # pushes worth a look: dead letters, duplicates, a spooled batch.
    bad = b"account=acc1&GetReport=0278387837488835,not-a-mobile,DELIVRD|"
    with caplog.at_level("DEBUG", logger="receiver"):
        for body in (PUSH, PUSH, bad):
            assert client.post("/push/topen", data=body, content_type=FORM).status_code == 200
    summaries = [(rec.levelname, rec.getMessage()) for rec in caplog.records
                 if rec.getMessage().startswith("push topen")]
    assert summaries == [
        ("DEBUG", "push topen from 127.0.0.1: 1 dlr, 0 mo, 0 dead letters, 0 duplicates"),
        ("INFO", "push topen from 127.0.0.1: 1 dlr, 0 mo, 0 dead letters, 1 duplicates"),
        ("INFO", "push topen from 127.0.0.1: 0 dlr, 0 mo, 1 dead letters, 0 duplicates"),
    ]
