"""End to end: the receiver under real gunicorn (and `receiver serve`), pushed raw HTTP bytes
exactly as vendors send them, against a real redis-server."""
from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote_to_bytes

import pytest
import redis

from receiver.redis_server import RedisServer, free_port

from . import e2e
from .helpers import FORM, entries

TIMEOUT = 30.0  # every bounded wait; none is expected to come close


class Server:
    """A running gunicorn and the port it serves."""

    def __init__(self, process: e2e.Process, port: int) -> None:
        self.process, self.port = process, port

    def push(self, method: str, target: bytes, body: bytes = b"", **options) -> e2e.Response:
        return e2e.request(self.port, e2e.http_request(method, target, body, **options))


@pytest.fixture(scope="module")
def server(redis_server):
    """One gunicorn with 2 workers on a free port, shared by the module's tests."""
    port = e2e.free_port()
    with e2e.start_gunicorn(port, redis_server.url, workers=2, timeout=TIMEOUT) as process:
        yield Server(process, port)


def topen_report(batch: str, mobile: str = "13900000000", code: str = "DELIVRD") -> bytes:
    return f"account=acc1&GetReport={batch},{mobile},{code}|".encode()


def batches(r: redis.Redis) -> list[str]:
    return [e["batch_id"] for e in entries(r, "sms:dlr")]


# 1. One push per vendor, as raw bytes on a socket ------------------------------------------

def test_topen_form_post(server, r):
    body = b"account=acc1&GetReport=0278387837488834,13900000000,DELIVRD|" \
           b"0278387837488834,13900000004,2014-06-10 15:34:11,UNDELIVRD|"
    answer = server.push("POST", b"/push/topen", body, content_type=FORM)
    assert (answer.status, answer.body) == (200, b"ok")
    got = [(e["vendor"], e["mobile"], e["status"], e.get("reported_at")) for e in entries(r, "sms:dlr")]
    assert got == [("topen", "+8613900000000", "delivered", None),
                   ("topen", "+8613900000004", "undelivered", "2014-06-10T15:34:11+08:00")]


def test_topen_mo_utf8_percent_encoded(server, r):
    body = b"account=acc1&GetMo=13900000000|,|%E9%80%80%E8%AE%A2|,|2014-06-10 15:34:11|;|"
    answer = server.push("POST", b"/push/topen", body, content_type=FORM)
    assert (answer.status, answer.body) == (200, b"ok")
    [mo] = entries(r, "sms:mo")
    assert (mo["mobile"], mo["text"], mo["sent_at"]) == ("+8613900000000", "退订",
                                                          "2014-06-10T15:34:11+08:00")


def test_winnerlook_voice_report(server, r):
    body = b"account=XXX&GetReport=2314357620085030623,13900000000,0,30,2|" \
           b"2314357620085030624,13900000001,12,5,3|"
    answer = server.push("POST", b"/push/winnerlook", body, content_type=FORM)
    assert (answer.status, answer.body) == (200, b"ok")
    got = [(e["vendor"], e["mobile"], e["status"], e["hangup"], e["call_seconds"], e["ring_seconds"])
           for e in entries(r, "sms:dlr")]
    assert got == [("winnerlook", "+8613900000000", "undelivered", "timeout", "0", "30"),
                   ("winnerlook", "+8613900000001", "delivered", "completed", "12", "5")]


def test_smsadmin_get_raw_gb2312_and_literal_spaces_in_the_request_line(server, r):
    # Doc 003's own example, sent as smsadmin does: raw GB2312 bytes and literal spaces in the
    # URL. gunicorn alone answers this request line 400; gunicorn_compat lets it through.
    target = (b"/push/smsadmin?Class=mo&SmsName=ID&Mobile=13802102102&Message="
              + "退订".encode("gb2312") + b"&LinkId=123456789& RevertTime=0000-00-00 00:00:00")
    assert b" " in target and any(byte > 0x7f for byte in target)
    answer = server.push("GET", target)
    assert (answer.status, answer.body) == (200, b"ok")
    [mo] = entries(r, "sms:mo")
    assert (mo["vendor"], mo["mobile"], mo["text"], mo["account"], mo["link_id"]) == \
        ("smsadmin", "+8613802102102", "退订", "ID", "123456789")
    assert "sent_at" not in mo  # 0000-00-00 00:00:00 is no time: left out, record kept
    assert entries(r, "sms:deadletter") == []


def test_the_request_line_is_repaired_under_gunicorn_without_the_receivers_config(redis_server, r):
    # `gunicorn wsgi:app` alone, gunicorn_h1c installed (see the test below): gunicorn would
    # pick its C parser, which skips the repair; gunicorn_compat turns that choice off.
    port = e2e.free_port()
    target = (b"/push/smsadmin?Class=mo&SmsName=ID&Mobile=13802102102&Message="
              + "退订".encode("gb2312") + b"&LinkId=1& RevertTime=0000-00-00 00:00:00")
    with e2e.start_gunicorn(port, redis_server.url, config=False, timeout=TIMEOUT):
        answer = e2e.request(port, e2e.http_request("GET", target))
    assert (answer.status, answer.body) == (200, b"ok")
    [mo] = entries(r, "sms:mo")
    assert (mo["mobile"], mo["text"], mo["link_id"]) == ("+8613802102102", "退订", "1")


def test_gunicorn_would_use_its_c_parser_but_the_receiver_keeps_the_python_one():
    # What makes the two tests above the fast parser's case: gunicorn_h1c is installed (the
    # test extra), so gunicorn on its defaults would parse with it. The receiver's config
    # says python, and gunicorn_compat.install() says no whatever the config.
    probe = """
from gunicorn.config import Config
from gunicorn.http import message
from receiver import gunicorn_compat, gunicorn_conf
ours = Config()
ours.set("http_parser", gunicorn_conf.http_parser)
print(message._check_fast_parser(Config()), message._check_fast_parser(ours))
gunicorn_compat.install()
print(message._check_fast_parser(Config()))
"""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=TIMEOUT, cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False", "False"]


def test_smsadmin_get_report_with_a_space_in_the_time(server, r):
    target = (b"/push/smsadmin?Class=rpt&SmsName=ID&Mobile=13800000000&LinkId=42"
              b"&Report=DELIVRD&ReportTime=2017-09-28 10:00:00")
    answer = server.push("GET", target)
    assert (answer.status, answer.body) == (200, b"ok")
    [dlr] = entries(r, "sms:dlr")
    assert (dlr["mobile"], dlr["status"], dlr["link_id"], dlr["reported_at"]) == \
        ("+8613800000000", "delivered", "42", "2017-09-28T10:00:00+08:00")


def test_smsadmin_post_raw_gb2312_body(server, r):
    body = (b"Class=mo&SmsName=ID&Mobile=13802102102&Message=" + "你好，收到".encode("gb2312")
            + b"&LinkId=987& RevertTime=2017-09-28 10:00:00")
    answer = server.push("POST", b"/push/smsadmin", body, content_type=FORM)
    assert (answer.status, answer.body) == (200, b"ok")
    [mo] = entries(r, "sms:mo")
    assert (mo["mobile"], mo["text"], mo["link_id"], mo["sent_at"]) == \
        ("+8613802102102", "你好，收到", "987", "2017-09-28T10:00:00+08:00")


def test_returnsms_xml_body(server, r):
    body = ("<?xml version='1.0' encoding='utf-8' ?><returnsms>"
            "<statusbox><mobile>15023239810</mobile><taskid>1212</taskid><status>10</status>"
            "<receivetime>2011-12-02 22:12:11</receivetime><errorcode>DELIVRD</errorcode>"
            "<extno>01</extno></statusbox>"
            "<callbox><mobile>15023239811</mobile><taskid>1212</taskid>"
            "<content>你好，我不需要</content><receivetime>2011-12-02 22:12:11</receivetime>"
            "<extno>01</extno></callbox></returnsms>").encode()
    answer = server.push("POST", b"/push/returnsms", body, content_type="text/xml")
    assert (answer.status, answer.body) == (200, b"ok")
    [dlr] = entries(r, "sms:dlr")
    [mo] = entries(r, "sms:mo")
    assert (dlr["mobile"], dlr["status"], dlr["batch_id"], dlr["ext_no"]) == \
        ("+8615023239810", "delivered", "1212", "01")
    assert (mo["mobile"], mo["text"], mo["sent_at"]) == \
        ("+8615023239811", "你好，我不需要", "2011-12-02T22:12:11+08:00")


def test_conforming_request_line_reaches_the_app_unchanged(server, r):
    # No Class: undecodable, so the dead letter shows the query exactly as the app got it.
    query = b"Msg=%CD%CB%B6%A9&a=b+c%20d&t=~!$'()*,;:@/?x=%7e%7E"
    answer = server.push("GET", b"/push/smsadmin?" + query)
    assert (answer.status, answer.body) == (200, b"ok")
    [letter] = entries(r, "sms:deadletter")
    assert letter["query"] == query
    assert "Class" in letter["reason"]


def test_nonconforming_request_line_decodes_to_the_bytes_sent(server, r):
    raw_query = b"Msg=" + "退订".encode("gb2312") + b"&note=a b\t"
    answer = server.push("GET", b"/push/smsadmin?" + raw_query)
    assert (answer.status, answer.body) == (200, b"ok")
    [letter] = entries(r, "sms:deadletter")
    assert letter["query"] == b"Msg=%CD%CB%B6%A9&note=a%20b%09"
    assert unquote_to_bytes(letter["query"]) == raw_query


# 2. HTTP/1.1 connection handling ----------------------------------------------------------

def test_pushes_on_one_connection_are_answered_or_the_close_is_announced(server, r):
    """A vendor client reusing its connection: every push is answered 200 and stored; when
    the server closes the connection it says so first (`Connection: close`)."""
    sent, conn = [], e2e.Connection(server.port)
    try:
        for n in range(4):
            if conn is None:
                conn = e2e.Connection(server.port)
            conn.send(e2e.http_request("POST", b"/push/topen", topen_report(f"ka{n}"),
                                       content_type=FORM, close=False))
            answer = conn.read_response()
            assert (answer.status, answer.body) == (200, b"ok")
            sent.append(f"ka{n}")
            if answer.header("connection").lower() == "close":
                assert conn.closed_by_peer(TIMEOUT), "announced close, connection left open"
                conn.close()
                conn = None
    finally:
        if conn:
            conn.close()
    assert batches(r) == sent


def test_keep_alive_several_pushes_on_one_connection(server, r):
    with e2e.Connection(server.port) as conn:
        for n in range(3):
            conn.send(e2e.http_request("POST", b"/push/topen", topen_report(f"keep{n}"),
                                       content_type=FORM, close=False))
            answer = conn.read_response()
            assert (answer.status, answer.body) == (200, b"ok")
            assert answer.header("connection").lower() != "close"
    assert batches(r) == ["keep0", "keep1", "keep2"]


def test_chunked_request_body(server, r):
    body = (b"Class=mo&SmsName=ID&Mobile=13802102102&Message=" + "收到，谢谢".encode("gb2312")
            + b"&LinkId=55")
    # 7-byte chunks: some GB2312 characters are split across two chunks.
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 7]), body[i:i + 7])
                      for i in range(0, len(body), 7))
    raw = (b"POST /push/smsadmin HTTP/1.1\r\nHost: receiver.example\r\n"
           b"Content-Type: " + FORM.encode() + b"\r\nTransfer-Encoding: chunked\r\n"
           b"Connection: close\r\n\r\n" + chunks + b"0\r\n\r\n")
    answer = e2e.request(server.port, raw)
    assert (answer.status, answer.body) == (200, b"ok")
    [mo] = entries(r, "sms:mo")
    assert (mo["mobile"], mo["text"], mo["link_id"]) == ("+8613802102102", "收到，谢谢", "55")


def test_expect_100_continue(server, r):
    body = topen_report("expect1")
    head = (b"POST /push/topen HTTP/1.1\r\nHost: receiver.example\r\nContent-Type: " + FORM.encode()
            + b"\r\nContent-Length: %d\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
            % len(body))
    with e2e.Connection(server.port) as conn:
        conn.send(head)
        interim = conn.read_response()  # the body is not sent until the server asks for it
        assert interim.status == 100
        conn.send(body)
        answer = conn.read_response()
    assert (answer.status, answer.body) == (200, b"ok")
    assert batches(r) == ["expect1"]


# 3. Workers killed ------------------------------------------------------------------------

def test_killed_workers_are_replaced_and_nothing_acked_is_lost(server, r):
    acked = []
    for n in range(4):
        assert server.push("POST", b"/push/topen", topen_report(f"before{n}"),
                           content_type=FORM).status == 200
        acked.append(f"before{n}")

    # A push in flight: headers and half its body, taken by a worker, when the workers die.
    body = topen_report("inflight")
    with e2e.Connection(server.port, timeout=TIMEOUT) as inflight:
        inflight.send(b"POST /push/topen HTTP/1.1\r\nHost: receiver.example\r\nContent-Type: "
                      + FORM.encode() + b"\r\nContent-Length: %d\r\n\r\n" % len(body)
                      + body[:len(body) // 2])
        e2e.wait_for(lambda: e2e.accept_queue(server.port) == 0, TIMEOUT,
                     "a worker to accept the in-flight connection")
        old = e2e.children(server.process.pid)
        assert len(old) == 2
        for pid in old:
            e2e.kill(pid, signal.SIGKILL)
        assert inflight.closed_by_peer(TIMEOUT), "the dead worker's connection stayed open"
        assert inflight.buffer == b"", "a killed request must not be answered"

    e2e.wait_for(lambda: (lambda now: len(now) == 2 and not set(now) & set(old))(
        e2e.children(server.process.pid)), TIMEOUT, "gunicorn to replace both workers")
    for n in range(3):
        answer = server.push("POST", b"/push/topen", topen_report(f"after{n}"), content_type=FORM)
        assert (answer.status, answer.body) == (200, b"ok")
        acked.append(f"after{n}")
    assert batches(r) == acked  # all acked pushes, in order; the unacked one is not there
    assert entries(r, "sms:deadletter") == []


# 4. Port binding --------------------------------------------------------------------------

def test_binds_the_given_port_and_a_second_server_there_fails(server, redis_server, tmp_path):
    # Listening on exactly that port, one SO_REUSEPORT socket per worker (the kernel spreads
    # connections over them; a shared socket let one gthread worker take them all).
    assert len(e2e.listen_queues(server.port)) == 2
    # ... and saying so (gunicorn's own line names no address then).
    assert f"Listening at: http://127.0.0.1:{server.port} (a socket per worker" in \
        server.process.output()
    second = e2e.Process(e2e.gunicorn_command(server.port, 1),
                         e2e.clean_env(RECEIVER_REDIS_URL=redis_server.url,
                                       XDG_RUNTIME_DIR=str(tmp_path)))
    with second:
        code = second.wait(TIMEOUT)
        output = second.output()
    # SO_REUSEPORT would let a second server of this user share the port: it must refuse.
    assert code != 0, output
    assert f"127.0.0.1:{server.port} is already in use by another process" in output, output
    assert len(e2e.listen_queues(server.port)) == 2
    answer = e2e.request(server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.status == 200  # the first server is unharmed


def test_usr2_leaves_the_running_server_serving(redis_server, r, tmp_path):
    """gunicorn 27 cannot upgrade in place (USR2) with a socket per worker: the new master
    finds no inherited sockets and exits. The running server must go on serving and lose
    nothing (the README says to upgrade with a restart)."""
    port = e2e.free_port()
    # The `gunicorn` script, as deploy/ runs it (`python -m gunicorn` re-executes
    # gunicorn/__main__.py as a script, whose folder shadows the stdlib's `http` package).
    command = e2e.gunicorn_command(port, 1, script=True)
    old = e2e.Process(command, e2e.clean_env(RECEIVER_REDIS_URL=redis_server.url,
                                             RECEIVER_DATA_DIR=str(tmp_path / "data"),
                                             XDG_RUNTIME_DIR=str(tmp_path)))
    with old:
        e2e.wait_ready(old, port, TIMEOUT)
        [worker] = e2e.wait_for(lambda: e2e.children(old.pid), TIMEOUT, old.output)
        push = e2e.http_request("POST", b"/push/topen", topen_report("usr2-before"),
                                content_type=FORM)
        assert e2e.request(port, push).status == 200
        old.signal(signal.SIGUSR2)
        # The new master logs its start, then is gone, leaving the old master and its worker.
        e2e.wait_for(lambda: old.output().count("Starting gunicorn") == 2, TIMEOUT, old.output)
        e2e.wait_for(lambda: e2e.children(old.pid) == [worker], TIMEOUT, old.output)
        assert old.alive()
        push = e2e.http_request("POST", b"/push/topen", topen_report("usr2-after"),
                                content_type=FORM)
        assert e2e.request(port, push).status == 200
    assert batches(r) == ["usr2-before", "usr2-after"]


def test_a_unix_socket_bind_serves_on_one_shared_listener(redis_server, tmp_path):
    """Per-worker sockets are for TCP: a unix socket (behind a local proxy) stays shared."""
    path = tmp_path / "receiver.sock"
    command = e2e.gunicorn_command(0, 2, bind=f"unix:{path}")
    served = e2e.Process(command, e2e.clean_env(RECEIVER_REDIS_URL=redis_server.url,
                                                RECEIVER_DATA_DIR=str(tmp_path / "data"),
                                                XDG_RUNTIME_DIR=str(tmp_path)))

    def healthz() -> bytes:
        with socket.socket(socket.AF_UNIX) as client:
            client.settimeout(5)
            client.connect(str(path))
            client.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
            return b"".join(iter(lambda: client.recv(4096), b""))

    with served:
        e2e.wait_for(lambda: path.exists() and len(e2e.children(served.pid)) == 2, TIMEOUT,
                     served.output)
        answer = e2e.wait_for(lambda: _try(healthz), TIMEOUT, served.output)
        assert answer.startswith(b"HTTP/1.0 200") and answer.endswith(b"\r\n\r\nok\n"), answer


def _try(call):
    try:
        return call()
    except OSError:
        return None


# 5. `receiver serve` with its embedded Redis ----------------------------------------------

def serve(port: int, data: Path, scratch: Path, **env: str) -> e2e.Process:
    return e2e.Process(e2e.serve_command("serve", "--port", str(port), "--workers", "1",
                                         "--host", "127.0.0.1"),
                       e2e.clean_env(RECEIVER_DATA_DIR=str(data), XDG_RUNTIME_DIR=str(scratch),
                                     **env))


def descendants(pid: int) -> list[int]:
    out = []
    for child in e2e.children(pid):
        out += [child, *descendants(child)]
    return out


def test_serve_embedded_redis_is_durable_across_restarts(tmp_path):
    data = tmp_path / "data"
    target = (b"/push/smsadmin?Class=rpt&SmsName=ID&Mobile=13800000000&LinkId=7"
              b"&Report=DELIVRD&ReportTime=2017-09-28 10:00:00")
    family: list[int] = []  # what serve started, killed at the end if a failure left it running
    try:
        port = e2e.free_port()
        with serve(port, data, tmp_path) as first:
            url = e2e.embedded_redis_url(first, TIMEOUT)
            e2e.wait_ready(first, port, TIMEOUT)
            family += descendants(first.pid)  # gunicorn master, its worker, redis-server
            assert len(family) == 3, family
            answer = e2e.request(port, e2e.http_request("GET", target))
            assert (answer.status, answer.body) == (200, b"ok")
            with redis.Redis.from_url(url) as client:
                [dlr] = entries(client, "sms:dlr")
            assert (dlr["mobile"], dlr["status"], dlr["link_id"]) == \
                ("+8613800000000", "delivered", "7")
            first.signal(signal.SIGTERM)
            assert first.wait(TIMEOUT) == 0, first.output()[-3000:]
        e2e.wait_for(lambda: all(e2e.gone(pid) for pid in family), TIMEOUT,
                     "gunicorn and redis-server to exit")
        assert list((data / "redis").rglob("*.aof")), "no AOF under RECEIVER_DATA_DIR"

        port = e2e.free_port()
        with serve(port, data, tmp_path) as second:
            url = e2e.embedded_redis_url(second, TIMEOUT)
            e2e.wait_ready(second, port, TIMEOUT)
            family += descendants(second.pid)
            with redis.Redis.from_url(url) as client:
                assert entries(client, "sms:dlr") == [dlr]  # the first run's entry, unchanged
            second.signal(signal.SIGTERM)
            assert second.wait(TIMEOUT) == 0, second.output()[-3000:]
    finally:
        for pid in family:
            if not e2e.gone(pid):
                e2e.kill(pid, signal.SIGKILL)


def test_the_embedded_redis_never_takes_the_port_serve_is_about_to_bind():
    # `receiver serve --port P` starts its Redis before gunicorn binds P, and the kernel can
    # hand out an unbound P as a free port (seen in CI: "127.0.0.1:42383 is already in use").
    # Here every port but a few free ones is to be avoided: a port picked without regard to
    # `avoid` is one of them almost surely.
    allowed = {free_port() for _ in range(200)}
    avoid = set(range(1, 65536)) - allowed
    assert {free_port(avoid=avoid) for _ in range(20)} <= allowed


def test_serve_rejects_an_invalid_setting(tmp_path):
    with serve(e2e.free_port(), tmp_path / "data", tmp_path, RECEIVER_MAX_BODY="-1") as bad:
        code = bad.wait(TIMEOUT)
        output = bad.output()
    assert code != 0
    assert "RECEIVER_MAX_BODY" in output, output
    assert "embedded Redis" not in output  # refused before anything was started


# 6. Redis stopped while gunicorn runs -----------------------------------------------------

@pytest.fixture
def own_redis(tmp_path):
    """A dedicated, persistent redis-server that a test may stop and restart on its port."""
    server = RedisServer(tmp_path / "redis", persistent=True).start()
    yield server
    server.stop()


def restart(server: RedisServer) -> RedisServer:
    return RedisServer(server.directory, port=server.port, persistent=True).start()


def test_redis_down_and_spool_unusable_answers_503_then_recovers(own_redis, tmp_path):
    (tmp_path / "not-a-directory").write_text("")  # the spool cannot be created under a file
    port = e2e.free_port()
    with e2e.start_gunicorn(port, own_redis.url, workers=1, timeout=TIMEOUT,
                            RECEIVER_SPOOL_DIR=str(tmp_path / "not-a-directory" / "spool")) as g:
        push = lambda batch: e2e.request(port, e2e.http_request(  # noqa: E731
            "POST", b"/push/topen", topen_report(batch), content_type=FORM), timeout=TIMEOUT)
        assert push("up1").status == 200
        own_redis.stop()
        down = push("down1")
        assert down.status == 503, down
        assert down.body.endswith(b"\n") and down.body.count(b"\n") == 1, down.body
        again = restart(own_redis)
        try:
            with redis.Redis(port=again.port) as client:
                assert batches(client) == ["up1"]  # the refused push was not stored
                answer = push("up2")
                assert (answer.status, answer.body) == (200, b"ok"), g.output()[-2000:]
                assert batches(client) == ["up1", "up2"]
        finally:
            again.stop()


def test_redis_down_spools_acks_and_replays_after_restart(own_redis, tmp_path):
    spool = tmp_path / "spool"
    port = e2e.free_port()
    with e2e.start_gunicorn(port, own_redis.url, workers=1, timeout=TIMEOUT,
                            RECEIVER_SPOOL_DIR=str(spool), RECEIVER_REPLAY_INTERVAL="0.2") as g:
        push = lambda batch: e2e.request(port, e2e.http_request(  # noqa: E731
            "POST", b"/push/topen", topen_report(batch), content_type=FORM), timeout=TIMEOUT)
        assert push("up1").status == 200
        own_redis.stop()
        down = push("down1")
        assert (down.status, down.body) == (200, b"ok"), g.output()[-2000:]
        assert list(spool.glob("*.spool")), "acked while Redis was down, but nothing spooled"
        again = restart(own_redis)
        try:
            with redis.Redis(port=again.port) as client:
                assert push("up2").status == 200
                e2e.wait_for(lambda: sorted(batches(client)) == ["down1", "up1", "up2"], TIMEOUT,
                             "the spooled push to be replayed into Redis")
                e2e.wait_for(lambda: not list(spool.glob("*.spool")), TIMEOUT,
                             "the replayed spool file to be removed")
        finally:
            again.stop()


def test_spooled_push_is_replayed_without_a_further_push(own_redis, tmp_path):
    spool = tmp_path / "spool"
    port = e2e.free_port()
    with e2e.start_gunicorn(port, own_redis.url, workers=1, timeout=TIMEOUT,
                            RECEIVER_SPOOL_DIR=str(spool), RECEIVER_REPLAY_INTERVAL="0.2"):
        own_redis.stop()
        down = e2e.request(port, e2e.http_request("POST", b"/push/topen", topen_report("down1"),
                                                  content_type=FORM), timeout=TIMEOUT)
        assert (down.status, down.body) == (200, b"ok")
        again = restart(own_redis)
        try:
            with redis.Redis(port=again.port) as client:
                # 50 replay intervals: a bound, not a measurement.
                e2e.wait_for(lambda: batches(client) == ["down1"], 10.0,
                             "the spooled push to be replayed into Redis")
        finally:
            again.stop()
