"""Hostile input (issue 3, item 4), over every vendor endpoint: each answered clearly (200 with
the vendor's ack, or a 4xx with one line) and nothing lost (every good record published, every
bad one, or the undecodable push itself, verbatim on the dead-letter stream)."""
from __future__ import annotations

import re
import socket
import threading
from dataclasses import dataclass, replace

import pytest

from receiver import events

from .faultkit import FORM, Gunicorn, gunicorn_env, raw_exchange, request, wait_for
from .helpers import entries, sample

GB_TUIDING = "退订".encode("gb2312")   # b"\xcd\xcb\xb6\xa9"
SENTENCE = re.compile(r"^[A-Za-z<][^\n]{8,400}$")


@dataclass(frozen=True)
class Good:
    """A well-formed push of one vendor and what it yields."""

    vendor: str
    body: bytes
    query: bytes = b""
    content_type: str | None = FORM
    dlr: int = 0
    mo: int = 0
    method: str = "POST"

    @property
    def path(self) -> str:
        return f"/push/{self.vendor}"


XML = ("<?xml version=\"1.0\" encoding=\"utf-8\"?><returnsms>"
       "<statusbox><mobile>15023239810</mobile><taskid>1212</taskid><status>10</status>"
       "<receivetime>2011-12-02 22:12:11</receivetime><errorcode>DELIVRD</errorcode></statusbox>"
       "<callbox><mobile>15023239811</mobile><taskid>1212</taskid><content>退订</content>"
       "<receivetime>2011-12-02 22:12:11</receivetime></callbox></returnsms>").encode()

GOOD = {
    "topen": Good("topen", b"account=acc&GetReport=B1,13900000000,DELIVRD|"
                           b"B1,13900000001,2014-06-10 15:34:11,UNDELIVRD|", dlr=2),
    "winnerlook": Good("winnerlook", b"account=acc&GetReport=B2,13900000002,0,30,2|"
                                     b"B2,13900000003,2014/06/10 15:34:11,DELIVRD|", dlr=2),
    "smsadmin": Good("smsadmin", b"Class=mo&SmsName=acc&Mobile=13802102102&Message=%CD%CB%B6%A9"
                                 b"&LinkId=1&RevertTime=2017-09-28 10:00:00", mo=1),
    "returnsms": Good("returnsms", XML, content_type="text/xml", dlr=1, mo=1),
}
VENDORS = sorted(GOOD)


@dataclass(frozen=True)
class Hostile:
    """A request and what must come of it: exact counts, or None where only the invariants
    (a clear answer, nothing lost) can be stated."""

    name: str
    vendor: str
    body: bytes
    query: bytes = b""
    content_type: str | None = FORM
    method: str = "POST"
    dlr: int | None = 0
    mo: int | None = 0
    dead: int | None = 0
    reason: str = ""          # a substring of the (first) dead letter's reason
    text: str | None = None   # expected text of the (first) MO
    env: tuple = ()

    def __str__(self) -> str:
        return f"{self.vendor}-{self.name}"


def _like(good: Good, name: str, **change) -> Hostile:
    """The vendor's good push with `change`: by default it must yield the same events."""
    base = Hostile(name, good.vendor, good.body, good.query, good.content_type, good.method,
                   dlr=good.dlr, mo=good.mo, dead=0)
    return replace(base, **change)


def _cases() -> list[Hostile]:
    out = []
    for vendor in VENDORS:
        good = GOOD[vendor]
        xml = vendor == "returnsms"
        out += [
            _like(good, "as-is"),
            Hostile("empty-body", vendor, b"", dead=1),
            Hostile("empty-get", vendor, b"", method="GET", content_type=None, dead=1),
            Hostile("whitespace-body", vendor, b" \r\n\t ", dead=1),
            Hostile("truncated-half", vendor, good.body[: len(good.body) // 2],
                    content_type=good.content_type, dlr=None, mo=None, dead=None),
            Hostile("truncated-one-byte", vendor, good.body[:-1], content_type=good.content_type,
                    dlr=None, mo=None, dead=None),
            _like(good, "bad-escapes-in-query", query=b"junk=%zz%E9%8&x%=%%"),
            _like(good, "nul-in-query", query=b"junk=a%00b\x00c"),
            Hostile("nul-bytes-in-body", vendor, good.body.replace(b"1", b"\x001", 1)
                    .replace(b"<", b"\x00<", 1) if xml else good.body.replace(b"=", b"=\x00", 2),
                    content_type=good.content_type, dlr=None, mo=None, dead=None),
            Hostile("binary-garbage", vendor, bytes(range(256)) * 4, dead=1),
            Hostile("xml-bomb", vendor, sample("returnsms_bomb.xml"), content_type="text/xml",
                    dead=1, reason="XML refused" if xml else ""),
            Hostile("xml-external-entity", vendor, sample("returnsms_xxe.xml"),
                    content_type="text/xml", dead=1, reason="XML refused" if xml else ""),
            _like(good, "no-content-type", content_type=None),
            _like(good, "content-type-json", content_type="application/json"),
            _like(good, "content-type-multipart-no-boundary", content_type="multipart/form-data"),
            _like(good, "content-type-multipart-bad-boundary",
                  content_type="multipart/form-data; boundary=zz"),
            _like(good, "content-type-wrong-charset", content_type=f"{good.content_type or FORM}; "
                                                                    "charset=klingon"),
            _like(good, "content-type-garbage", content_type="\x00;;=/"),
            _like(good, "method-get-with-body", method="GET"),
        ]
        if xml:
            out += [
                _like(good, "content-type-form", content_type=FORM),
                _like(good, "repeated-boxes", body=XML.replace(b"</returnsms>", XML[
                    XML.index(b"<statusbox>"):XML.index(b"<callbox>")] + b"</returnsms>")),
                _like(good, "huge-field", body=XML.replace("退订".encode(), "退".encode() * 150_000)),
                Hostile("document-twice", vendor, XML + XML, content_type="text/xml", dead=1,
                        reason="does not parse"),
                # Elements nested within a box, deeper than Python's recursion limit: the box's
                # raw text (our writer, or tostring for a box with attributes) cannot be made.
                Hostile("deeply-nested-box", vendor, XML.replace(
                    b"</statusbox>", b"<x>" * 5000 + b"</x>" * 5000 + b"</statusbox>"),
                    content_type="text/xml", dead=1, reason="nested deeper than"),
                Hostile("deeply-nested-box-with-attributes", vendor, XML.replace(
                    b"<statusbox>", b'<statusbox id="1">' + b"<x>" * 5000 + b"</x>" * 5000),
                    content_type="text/xml", dead=1, reason="nested deeper than"),
                _like(good, "gb2312-declared-utf8", body=sample("returnsms_gb2312_declared_utf8.xml"),
                      dlr=None, mo=None, dead=0),
            ]
        else:
            out += [
                _like(good, "content-type-xml", content_type="text/xml"),
                _like(good, "repeated-fields", body=good.body + b"&" + good.body),
                _like(good, "huge-field", body=b"junk=" + b"x" * 900_000 + b"&" + good.body),
                _like(good, "same-push-as-query", body=b"", query=good.body, method="GET",
                      content_type=None),
            ]
    # Wrong encodings: GB2312 to a UTF-8 vendor and the reverse, raw and percent-encoded.
    out += [
        Hostile("gb2312-raw-to-utf8-vendor", "topen", b"account=acc&GetMo=13900000000|,|" + GB_TUIDING
                + b"|,|2014-06-10 15:34:11|;|", mo=1, text="退订"),
        Hostile("gb2312-escaped-to-utf8-vendor", "topen",
                b"account=acc&GetMo=13900000000|,|%CD%CB%B6%A9|,|2014-06-10 15:34:11|;|",
                mo=1, text="退订"),
        Hostile("utf8-raw-to-gb2312-vendor", "smsadmin", b"Class=mo&SmsName=acc&Mobile=13802102102"
                b"&Message=" + "退订".encode() + b"&LinkId=1", mo=1, text="退订"),
        Hostile("utf8-escaped-to-gb2312-vendor", "smsadmin",
                b"Class=mo&SmsName=acc&Mobile=13802102102&Message=%E9%80%80%E8%AE%A2", mo=1,
                text="退订"),
        Hostile("gb2312-raw-xml-declared-utf8", "returnsms",
                XML.replace("退订".encode(), GB_TUIDING), content_type="text/xml",
                dlr=1, mo=1, text="退订"),
        Hostile("invalid-utf8-and-gb-to-utf8-vendor", "topen",
                b"account=acc&GetMo=13900000000|,|\xff\xfe\x80|,|2014-06-10 15:34:11|;|", mo=1),
        Hostile("truncated-batch-mid-record", "topen",
                b"account=acc&GetReport=B1,13900000000,DELIVRD|B1,1390000", dlr=1, dead=1,
                reason="fields"),
        Hostile("truncated-mo-mid-record", "topen",
                b"account=acc&GetMo=13900000000|,|hi|,|2014-06-10 15:34:11|;|13900000001|,|he",
                mo=1, dead=1, reason="fields"),
        Hostile("truncated-xml", "returnsms", XML[:-20], content_type="text/xml", dead=1,
                reason="does not parse"),
    ]
    return out


CASES = _cases()


def _check_letter(letter: dict, sent: Hostile) -> None:
    assert events.check(letter, "deadletter") == {}, letter
    assert SENTENCE.match(letter["reason"]), letter["reason"]
    # Nothing lost: the push's bytes are all there, exactly as sent.
    assert letter.get("body", b"") == sent.body
    assert letter.get("query", b"") == sent.query
    assert letter["vendor"] == sent.vendor and letter["method"] == sent.method


@pytest.mark.parametrize("case", CASES, ids=str)
def test_hostile_input(app_factory, r, case):
    app = app_factory(**dict(case.env))
    headers = {"Content-Type": case.content_type} if case.content_type is not None else {}
    # A WSGI QUERY_STRING is bytes as latin-1 text: this sends the query's bytes unchanged.
    response = app.test_client().open(f"/push/{case.vendor}", method=case.method,
                                      query_string=case.query.decode("latin-1"), data=case.body,
                                      headers=headers)
    assert (response.status_code, response.data) == (200, b"ok"), response.data[:300]
    dlr, mo, dead = entries(r, "sms:dlr"), entries(r, "sms:mo"), entries(r, "sms:deadletter")
    for event in dlr + mo:
        assert events.check(event) == {}, event
        assert event["vendor"] == case.vendor
    for letter in dead:
        _check_letter(letter, case)
    assert dlr or mo or dead, "a push answered 200 left nothing on any stream"
    for expected, got in ((case.dlr, dlr), (case.mo, mo), (case.dead, dead)):
        if expected is not None:
            assert len(got) == expected, (len(dlr), len(mo), [d["reason"] for d in dead])
    if case.reason:
        assert case.reason in dead[0]["reason"], dead[0]["reason"]
    if case.text is not None:
        assert mo[0]["text"] == case.text


def test_a_truncated_push_loses_no_record(app_factory, r):
    """Cut a batch at every byte: what is published plus what is dead-lettered always covers
    every record of the cut body (good records published, the cut one a dead letter)."""
    body = b"account=acc&GetReport=" + b"|".join(
        b"B9,1390000%04d,DELIVRD" % i for i in range(6)) + b"|"
    client_ = app_factory().test_client()
    # (Cut right after `GetReport=`, the push holds no record at all: see the report.)
    for cut in range(len(b"account=acc&GetReport=") + 1, len(body) + 1):
        r.flushall()
        sent = body[:cut]
        assert client_.post("/push/topen", data=sent, content_type=FORM).data == b"ok"
        records = [p for p in sent.split(b"=", 2)[-1].split(b"|") if p.strip()]
        dlr, dead = entries(r, "sms:dlr"), entries(r, "sms:deadletter")
        published = {d["raw"].encode() for d in dlr}
        dead_records = {d.get("record", "").encode() for d in dead}
        assert records and set(records) <= published | dead_records, (sent, published, dead)


# --- the size limit ------------------------------------------------------------------------------

LIMIT = 4096


def _at_size(good: Good, size: int) -> bytes:
    """The vendor's good push padded to exactly `size` bytes, still decoding the same."""
    if good.vendor == "returnsms":
        return good.body + b" " * (size - len(good.body))
    prefix = b"pad="
    return prefix + b"p" * (size - len(prefix) - 1 - len(good.body)) + b"&" + good.body


@pytest.mark.parametrize("vendor", VENDORS)
def test_body_exactly_at_the_limit_is_taken(app_factory, r, vendor):
    good = GOOD[vendor]
    body = _at_size(good, LIMIT)
    assert len(body) == LIMIT
    app = app_factory(RECEIVER_MAX_BODY=str(LIMIT))
    response = app.test_client().post(good.path, data=body, content_type=good.content_type)
    assert (response.status_code, response.data) == (200, b"ok")
    assert (r.xlen("sms:dlr"), r.xlen("sms:mo"), r.xlen("sms:deadletter")) == (good.dlr, good.mo, 0)


@pytest.mark.parametrize("vendor", VENDORS)
def test_body_one_byte_over_the_limit_is_413_one_line(app_factory, r, vendor):
    good = GOOD[vendor]
    body = _at_size(good, LIMIT + 1)
    app = app_factory(RECEIVER_MAX_BODY=str(LIMIT))
    response = app.test_client().post(good.path, data=body, content_type=good.content_type)
    assert response.status_code == 413
    assert response.data == f"body over the limit of {LIMIT} bytes\n".encode()
    assert (r.xlen("sms:dlr"), r.xlen("sms:mo"), r.xlen("sms:deadletter")) == (0, 0, 0)


# --- under gunicorn: chunked bodies, slow and vanishing clients ----------------------------------

@pytest.fixture(scope="module")
def served(redis_server, tmp_path_factory):
    env = gunicorn_env(redis_server.url, tmp_path_factory.mktemp("hostile"),
                       RECEIVER_MAX_BODY=str(LIMIT))
    with Gunicorn(env) as server:
        yield server


def _head(path: str, length: int | None, content_type: str = FORM) -> bytes:
    size = f"Content-Length: {length}\r\n" if length is not None else "Transfer-Encoding: chunked\r\n"
    return (f"POST {path} HTTP/1.1\r\nHost: vendor\r\nContent-Type: {content_type}\r\n{size}"
            "Connection: close\r\n\r\n").encode()


def _status(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1.1 "), answer[:200]
    return int(answer[9:12])


def test_slow_client_trickling_a_body_is_taken(served, r):
    body = GOOD["topen"].body
    chunks = [_head("/push/topen", len(body))] + [body[i:i + 8] for i in range(0, len(body), 8)]
    pause = 2.0 / len(chunks)  # the whole body over about two seconds
    answer = raw_exchange(served.port, chunks, pause=pause, timeout=30)
    assert _status(answer) == 200 and answer.endswith(b"\r\n\r\nok")
    assert r.xlen("sms:dlr") == 2


def test_client_that_stalls_mid_body_and_leaves_gets_nothing_published(served, r):
    body = GOOD["topen"].body
    head = _head("/push/topen", len(body))
    others: list = []
    seen = served.output().count('"POST /push/topen ')

    def meanwhile() -> None:  # other vendors are served while the bad client stalls
        others.append(request(served.port, "POST", "/push/smsadmin", GOOD["smsadmin"].body,
                              {"Content-Type": FORM}))

    with socket.create_connection(("127.0.0.1", served.port)) as sock:
        sock.sendall(head + body[: len(body) // 2])
        thread = threading.Thread(target=meanwhile)
        thread.start()
        thread.join(30)
    assert others == [(200, b"ok")]
    assert r.xlen("sms:mo") == 1
    # The stalled request ends with its connection: wait until the server has answered it.
    wait_for(lambda: served.output().count('"POST /push/topen ') > seen, 30,
             lambda: "the stalled request to end:\n" + served.output())
    assert request(served.port, "GET", "/healthz") == (200, b"ok\n")
    assert (r.xlen("sms:dlr"), r.xlen("sms:deadletter")) == (0, 0), entries(r, "sms:dlr")


def test_chunked_body_over_the_limit_is_413(served, r):
    body = _at_size(GOOD["topen"], LIMIT + 100)
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 1000]), body[i:i + 1000])
                       for i in range(0, len(body), 1000)) + b"0\r\n\r\n"
    answer = raw_exchange(served.port, [_head("/push/topen", None), chunked], timeout=30)
    assert _status(answer) == 413
    assert answer.endswith(f"body over the limit of {LIMIT} bytes\n".encode())
    assert (r.xlen("sms:dlr"), r.xlen("sms:deadletter")) == (0, 0)


def test_chunked_body_within_the_limit_is_taken(served, r):
    body = GOOD["topen"].body
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 10]), body[i:i + 10])
                       for i in range(0, len(body), 10)) + b"0\r\n\r\n"
    answer = raw_exchange(served.port, [_head("/push/topen", None), chunked], timeout=30)
    assert _status(answer) == 200
    assert r.xlen("sms:dlr") == 2


def test_content_length_over_the_limit_is_refused_before_the_body(served, r):
    """A Content-Length past the limit is answered 413 without reading the body."""
    answer = raw_exchange(served.port, [_head("/push/topen", 10 * LIMIT), b"x" * 100], timeout=30)
    assert _status(answer) == 413
    assert r.xlen("sms:deadletter") == 0


def test_raw_gb2312_and_nul_in_the_request_line_through_gunicorn(served, r):
    """Bytes gunicorn would refuse in a request line (raw GB2312, NUL, spaces) still reach the
    adapter: the push is published or dead-lettered, never a 400 the vendor would not resend."""
    line = (b"GET /push/smsadmin?Class=mo&SmsName=acc&Mobile=13802102102&Message=" + GB_TUIDING
            + b"&LinkId=1& RevertTime=0000-00-00 00:00:00&junk=a\x00b HTTP/1.1\r\n"
            b"Host: vendor\r\nConnection: close\r\n\r\n")
    answer = raw_exchange(served.port, [line], timeout=30)
    assert _status(answer) == 200, answer[:300]
    (reply,) = entries(r, "sms:mo")
    assert reply["text"] == "退订"


@pytest.mark.parametrize("vendor", ["topen", "winnerlook"])
def test_a_second_account_field_does_not_swallow_records(app_factory, r, vendor):
    """Found by bench/resilience.py (c): one inserted `&account=` in a batch (or a reply text
    typed with one) hid every record after it. Each record must reach a stream."""
    records = [f"B7,1390000000{i},DELIVRD" for i in range(4)]
    body = ("account=acc&GetReport=" + records[0] + "|&account=" + "|".join(records[1:]) + "|")
    response = app_factory().test_client().post(f"/push/{vendor}", data=body.encode(),
                                                content_type=FORM)
    assert response.data == b"ok"
    blob = "".join(str(e) for stream in ("sms:dlr", "sms:deadletter") for e in entries(r, stream))
    assert [rec for rec in records if rec not in blob] == []
