"""Property-based tests of every endpoint (hypothesis, Flask test client, the real Redis).

Arbitrary bytes and near-valid pushes per wire format go in; the properties are the promises
of DESIGN.md: never a 5xx with Redis up, nothing lost (events or verbatim dead letters), every
entry honours the schema, the same bytes twice publish nothing new, and every non-empty record
of a batch ends up as one event or one dead letter. The decoders are also fuzzed directly: they
raise nothing but `Undecodable`.
"""
from __future__ import annotations

import io
import string
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote_from_bytes
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, event, given, note, settings, strategies as st

from receiver import events, normalize, status
from receiver.vendors import REGISTRY, Options, Push, Undecodable, returnsms

from .helpers import FORM, entries

VENDORS = sorted(REGISTRY)
SHANGHAI = ZoneInfo("Asia/Shanghai")

HTTP = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])
PURE = settings(HTTP, max_examples=300)


@dataclass(frozen=True)
class Request:
    """One push as sent: method, raw query bytes, raw body bytes, Content-Type (None: none)."""

    method: str
    query: bytes
    body: bytes
    content_type: str | None = None


@dataclass
class Outcome:
    """What one push did: the HTTP answer and the entries now on the three streams."""

    status: int
    data: bytes
    dlr: list[dict[str, Any]]
    mo: list[dict[str, Any]]
    dead: list[dict[str, Any]]

    @property
    def events(self) -> list[dict[str, Any]]:
        return self.dlr + self.mo


def push(client, r, vendor: str, request: Request, *, flush: bool = True) -> Outcome:
    """Send `request` to /push/<vendor> (raw query bytes in QUERY_STRING) and read the streams."""
    if flush:
        r.flushall()
    headers = {"Content-Length": str(len(request.body))}
    if request.content_type is not None:
        headers["Content-Type"] = request.content_type
    # input_stream, not data=: the test client would rewrite a multipart body and its type.
    # The body is read as under gunicorn, from a stream the server ends (the tables of each
    # vendor go through Werkzeug's get_data, the view's other way).
    response = client.open(f"/push/{vendor}", method=request.method,
                           input_stream=io.BytesIO(request.body), headers=headers,
                           environ_overrides={"QUERY_STRING": request.query.decode("latin-1"),
                                              "wsgi.input_terminated": True})
    return Outcome(response.status_code, response.data, entries(r, "sms:dlr"),
                   entries(r, "sms:mo"), entries(r, "sms:deadletter"))


def nothing_to_report(vendor: str, request: Request) -> bool:
    """A topen/winnerlook push whose GetReport/GetMo field holds no record: doc 000 says the
    platform sends an empty value when it has nothing to report, so such a push is acked and
    publishes nothing (test_topen.py's table holds this; see the report for the question)."""
    if vendor not in ("topen", "winnerlook"):
        return False
    try:
        decoded = REGISTRY[vendor].decode(Push(request.method, request.query, request.body,
                                               request.content_type or ""), Options())
    except Undecodable:
        return False
    if decoded.records or decoded.bad:
        return False
    event("a batch field holding no record: nothing to report")
    return True


def check_outcome(vendor: str, request: Request, out: Outcome) -> None:
    """Properties (a), (b), (c) of one push on an empty Redis."""
    note(f"outcome: {out}")
    # (a) never 5xx with Redis up: every push is acked.
    assert (out.status, out.data) == (200, b"ok")
    # (b) nothing lost: events, or the push kept verbatim as dead letters.
    if not nothing_to_report(vendor, request):
        assert out.events or out.dead
    # (c) every entry honours the contract.
    for entry in out.events:
        assert events.check(entry) == {}, entry
        assert entry["vendor"] == vendor
        assert entry["id"] == events.record_id({k: v for k, v in entry.items() if k != "id"})
    for letter in out.dead:
        assert events.check(letter, "deadletter") == {}, letter
        assert letter["vendor"] == vendor
        assert (letter["method"], letter["path"]) == (request.method, f"/push/{vendor}")
        # Every dead letter, whatever its reason, carries the bytes exactly as sent.
        assert letter["query"] == request.query
        assert letter["body"] == request.body
        assert letter.get("content_type", "") == (request.content_type or "")
    undecodable = [d for d in out.dead if "could not be decoded" in d["reason"]]
    if undecodable:
        # A push that cannot be decoded is one dead letter and nothing else.
        assert len(out.dead) == 1 and not out.events


# --- strategies: arbitrary bytes ---------------------------------------------------------------

FRAGMENTS = [
    b"account", b"GetReport", b"GetReport2", b"GetMo", b"getmo2", b"Class", b"rpt", b"mo",
    b"SmsName", b"Mobile", b"Report", b"ReportTime", b"Message", b"RevertTime", b"LinkId",
    b"msg", b"xml", b"=", b"&", b"& ", b"|", b",", b"|,|", b"|;|", b";", b" ", b"\n", b"\r\n",
    b"\t", b"%", b"%E4%BD%A0", b"%CD%CB", b"%ZZ", b"+", b"13900000000", b"+8613900000001",
    b"0086139", b"DELIVRD", b"UNDELIVRD", b"MK:0001", b"10", b"20", b"0,30,2", b"5",
    b"2014-06-10 15:34:11", b"2018/4/16 1:2:3", b"0000-00-00 00:00:00", b"20140610153411",
    b"\xcd\xcb\xb6\xa9", "退订".encode(), b"\xff\xfe", b"\x00", b"\xef\xbb\xbf", b"<", b">",
    b"</", b"<?xml version='1.0' encoding='gb2312'?>", b'<?xml version="1.0"?>', b"<returnsms>",
    b"</returnsms>", b"<statusbox>", b"</statusbox>", b"<callbox>", b"</callbox>",
    b"<mobile>", b"</mobile>", b"<status>", b"</status>", b"<errorcode>", b"</errorcode>",
    b"<content>", b"</content>", b"<receivetime>", b"<taskid>", b"<extno>", b"<errorstatus>",
    b"<!DOCTYPE x [<!ENTITY a 'b'>]>", b"&amp;", b"&#x0;", b"&#20320;", b"<![CDATA[", b"]]>",
    b"<a:statusbox xmlns:a='urn:x'>",
]
fragments = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.binary(max_size=6)),
                     max_size=40).map(b"".join)
raw_bytes = st.one_of(st.binary(max_size=300), fragments)

CONTENT_TYPES = [FORM, "text/xml", "application/xml; charset=gb2312", "text/plain", "",
                 "multipart/form-data; boundary=x", "application/json",
                 "application/x-www-form-urlencoded; charset=GBK"]
content_types = st.one_of(
    st.none(), st.sampled_from(CONTENT_TYPES),
    st.text(alphabet=string.ascii_letters + string.digits + "/;=-+. ", max_size=40)
    .map(str.strip))
methods = st.sampled_from(["GET", "POST"])

arbitrary = st.builds(Request, method=methods, query=raw_bytes, body=raw_bytes,
                      content_type=content_types)

# --- strategies: pieces of near-valid pushes ----------------------------------------------------

# Characters of real replies: common hanzi (all in GB2312), fullwidth punctuation, ASCII.
HANZI = "退订好你我的是不了在有人这中大为上个国和地到以说时要就出会可也对生能而子那得于着下自之年"
CJK_PUNCT = "，。！？：；（）“”、"
SAFE_ASCII = string.ascii_letters + string.digits + " .!?:-/_"  # no & = % + | , ; < > '
reply_text = st.text(alphabet=HANZI + CJK_PUNCT + SAFE_ASCII, min_size=1, max_size=12)
ws = st.sampled_from(["", "", "", " ", "  ", "\n", "\r\n", "\t", " \n "])
code_words = st.one_of(
    st.sampled_from(["DELIVRD", "UNDELIVRD", "EXPIRED", "REJECTD", "MK:0001", "DB:0141",
                     "ID:0013", "ERROR:12", "BLACK", "UNKNOWN", "0", "10", "20", "MA:0004"]),
    st.text(alphabet=string.ascii_uppercase + string.digits + ":", min_size=1, max_size=10))


@st.composite
def vendor_times(draw) -> tuple[str, str | None]:
    """(a vendor time as sent, its ISO 8601 in Shanghai time or None when not a real time)."""
    if draw(st.sampled_from([False] * 5 + [True])):
        return draw(st.sampled_from(["0000-00-00 00:00:00", "2014-02-30 10:00:00",
                                     "2014-06-10 25:00:00"])), None
    moment = draw(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2037, 12, 31)))
    moment = moment.replace(microsecond=0)
    sep = draw(st.sampled_from(["-", "/"]))
    if draw(st.booleans()):
        text = moment.strftime(f"%Y{sep}%m{sep}%d %H:%M:%S")
    else:  # unpadded, as doc 001 and real traffic show
        text = (f"{moment.year}{sep}{moment.month}{sep}{moment.day} "
                f"{moment.hour}:{moment.minute:02d}:{moment.second:02d}")
    return text, moment.replace(tzinfo=SHANGHAI).isoformat()


def cn_mobile(index: int, draw) -> tuple[str, str]:
    """(a Chinese mobile as a vendor may write it, its E.164); unique per `index`."""
    digits = f"1{3 + index % 7}{index:02d}{draw(st.integers(0, 10**7 - 1)):07d}"
    prefix = draw(st.sampled_from(["", "", "+86", "86", "0086"]))
    return prefix + digits, "+86" + digits


def pct(data: bytes) -> bytes:
    return quote_from_bytes(data, safe="").encode()


@dataclass
class Built:
    """A generated push and what its records must become.

    `expected`: per record a dict of fields its event must have, "bad" when it must be a
    per-record dead letter, or None when either is fine. `records`: non-empty records sent.
    """

    request: Request
    expected: list[dict[str, str] | str | None]
    account: str | None = None

    @property
    def records(self) -> int:
        return len(self.expected)


# --- topen / winnerlook ---------------------------------------------------------------------------

field_text = st.text(alphabet=SAFE_ASCII + HANZI + "\t", max_size=14)


@st.composite
def report_record(draw, index: int, voice: bool) -> tuple[str, dict | str | None]:
    """One `batch,mobile[,time],status` record (or a voice or a random one), with its oracle."""
    batch = f"{index}" + draw(st.text(alphabet=string.digits, max_size=16))
    shape = draw(st.sampled_from(["good", "good", "quirk", "voice", "random"]))
    if shape in ("good", "quirk"):
        mobile, e164 = cn_mobile(index, draw)
        code = draw(code_words)
        parts = [batch, mobile]
        expected = {"kind": "dlr", "batch_id": batch, "mobile": e164, "vendor_status": code,
                    "status": status.classify(code)}
        if shape == "quirk":
            parts = [batch, "", mobile]  # doc 000's own `batch,,mobile,status`
        elif draw(st.booleans()):
            sent, iso = draw(vendor_times())
            parts.append(sent)
            if iso:
                expected["reported_at"] = iso
        parts.append(code)
    elif shape == "voice":
        mobile, e164 = cn_mobile(index, draw)
        call, ring = draw(st.integers(0, 600)), draw(st.integers(0, 90))
        hangup = draw(st.integers(0, 6))
        parts = [batch, mobile, str(call), str(ring), str(hangup)]
        if not voice or hangup > 4:
            expected = "bad"  # 5 fields are a report only for winnerlook, codes 0-4 (doc 001)
        else:
            expected = {"kind": "dlr", "batch_id": batch, "mobile": e164,
                        "call_seconds": str(call), "ring_seconds": str(ring),
                        "hangup": status.HANGUP[str(hangup)], "vendor_status": str(hangup),
                        "status": "delivered" if call > 0 else "undelivered"}
    else:
        parts = [batch] + draw(st.lists(field_text, max_size=6))
        expected = None
    text = ",".join(draw(ws) + p + draw(ws) for p in parts)
    return text, expected


@st.composite
def reply_record(draw, index: int) -> tuple[str, dict | str | None]:
    """One `mobile|,|text|,|time[|,|service]` record (or a random one), with its oracle."""
    sep = draw(st.sampled_from(["|,|", "|,|", " |,| ", "| , |", "|,|\n"]))
    shape = draw(st.sampled_from(["good", "good", "random"]))
    if shape == "good":
        mobile, e164 = cn_mobile(index, draw)
        text = draw(reply_text).strip()
        assume(text)
        sent, iso = draw(vendor_times())
        parts = [mobile, text, sent]
        expected = {"kind": "mo", "mobile": e164, "text": text}
        if iso:
            expected["sent_at"] = iso
        if draw(st.booleans()):
            service = "1069" + draw(st.text(alphabet=string.digits, min_size=4, max_size=10))
            parts.append(service)
            expected["service_number"] = service
    else:
        parts = [f"x{index}" + draw(field_text)] + draw(st.lists(field_text, max_size=5))
        expected = None
    return sep.join(parts), expected


@st.composite
def topen_pushes(draw, voice: bool = False) -> Built:
    """A GetReport or GetMo batch: random fields, whitespace, separators, empty records."""
    replies = draw(st.booleans())
    count = draw(st.integers(1, 7))
    # Replies end in `|;|` (GetMo) or `|;` and a newline (GetMo2), one style per batch.
    style = draw(st.sampled_from(["|;|", "|;|\n", "|;\n"]))
    chunks, expected = [], []
    for index in range(count):
        text, oracle = draw(reply_record(index) if replies else report_record(index, voice))
        # Empty records in between.
        for _ in range(draw(st.integers(0, 1))):
            chunks.append(draw(ws) + (style if replies else "|"))
        end = style if replies else draw(st.sampled_from(["|", "|", "|;|", "|\n", "| "]))
        if index == count - 1 and draw(st.booleans()):
            end = ""  # the last record's terminator is sometimes missing
        chunks.append(draw(ws) + text + draw(ws) + end)
        expected.append(oracle)
    payload = "".join(chunks).encode("utf-8")
    key = draw(st.sampled_from(["GetMo", "GetMo2", "getmo"] if replies else
                               ["GetReport", "GetReport2", "getreport"]))
    account = draw(st.text(alphabet=string.ascii_letters + string.digits, max_size=8))
    if draw(st.booleans()):
        payload = pct(payload)  # urlencoded, as some accounts are configured
    form = b"account=" + account.encode() + b"&" + key.encode() + b"=" + payload
    where = draw(st.sampled_from(["body", "body", "query", "split"]))
    if where == "body":
        request = Request("POST", b"", form, draw(st.sampled_from([FORM, None, "text/plain"])))
    elif where == "query":
        request = Request(draw(methods), form, b"", None)
    else:
        request = Request("POST", b"account=" + account.encode(),
                          key.encode() + b"=" + payload, FORM)
    return Built(request, expected, account or None)


# --- smsadmin -------------------------------------------------------------------------------------

@st.composite
def smsadmin_pushes(draw) -> Built:
    """A `Class=rpt` or `Class=mo` push: keys in any case and order, GB2312 raw or encoded."""
    kind = draw(st.sampled_from(["rpt", "rpt", "mo", "mo", "RPT", " mo ", "Mo", "report", ""]))
    mobile, e164 = cn_mobile(0, draw)
    mobile_shape = draw(st.sampled_from(["good"] * 5 + ["empty", "letters", "absent"]))
    sent, iso = draw(vendor_times())
    code = draw(code_words)
    message = draw(reply_text)
    account = draw(st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=8))
    fields = {"Class": kind, "SmsName": account, "LinkId": draw(st.text(string.digits, max_size=9))}
    if mobile_shape != "absent":
        fields["Mobile"] = {"good": mobile, "empty": "", "letters": "13800abc000"}[mobile_shape]
    is_rpt = kind.strip().lower() == "rpt"
    if is_rpt or draw(st.booleans()):
        if draw(st.sampled_from([True] * 6 + [False])):
            fields["Report"] = code
        fields["ReportTime"] = sent
    if not is_rpt or draw(st.booleans()):
        fields["Message"] = message
        fields["RevertTime"] = sent
    names = draw(st.permutations(list(fields)))
    charset = draw(st.sampled_from(["gb2312", "gb2312", "utf-8"]))
    raw_bytes_mode = charset == "gb2312" and draw(st.booleans())
    pairs = []
    for name in names:
        value = fields[name].encode(charset)
        key = draw(st.sampled_from([name, name.lower(), name.upper()]))
        pairs.append(key.encode() + b"=" + (value if raw_bytes_mode else pct(value)))
    glue = draw(st.sampled_from([b"&", b"&", b"& "]))  # doc 003's own `& RevertTime=`
    form = glue.join(pairs)
    where = draw(st.sampled_from(["query", "body"]))
    request = (Request(draw(methods), form, b"", None) if where == "query" else
               Request("POST", b"", form, draw(st.sampled_from([FORM, None]))))
    if kind.strip().lower() not in ("rpt", "mo"):
        return Built(request, [], account)  # the whole push is undecodable
    good_mobile = mobile_shape == "good"
    if is_rpt:
        oracle = ({"kind": "dlr", "mobile": e164, "vendor_status": code,
                   "status": status.classify(code)} if good_mobile and "Report" in fields
                  else "bad")
        if oracle != "bad" and iso:
            oracle["reported_at"] = iso
    else:
        oracle = {"kind": "mo", "mobile": e164, "text": message} if good_mobile else "bad"
        if oracle != "bad" and iso:
            oracle["sent_at"] = iso
    return Built(request, [oracle], account)


# --- returnsms ------------------------------------------------------------------------------------

def element(name: str, text: str | None, draw) -> str:
    tag = draw(st.sampled_from([name, name, name.capitalize()]))
    if text is None:
        return draw(st.sampled_from([f"<{tag}/>", f"<{tag}></{tag}>"]))
    return f"<{tag}>{draw(ws)}{escape(text)}{draw(ws)}</{tag}>"


@st.composite
def xml_box(draw, index: int) -> tuple[str, dict | str | None]:
    """A `<statusbox>`, `<callbox>`, `<errorstatus>` or unknown box, with its oracle."""
    kind = draw(st.sampled_from(["statusbox", "statusbox", "callbox", "callbox",
                                 "errorstatus", "other"]))
    mobile, e164 = cn_mobile(index, draw)
    mobile_shape = draw(st.sampled_from(["good", "good", "good", "empty", "letters", "absent"]))
    sent, iso = draw(vendor_times())
    children: list[str] = [f"<seq>{index}</seq>"]  # unknown child: ignored, keeps boxes apart
    if mobile_shape != "absent":
        children.append(element("mobile", {"good": mobile, "empty": None,
                                           "letters": f"x{index}yz"}[mobile_shape], draw))
    oracle: dict | str | None = None
    if kind == "statusbox":
        code = draw(st.sampled_from(["10", "20", "", "30"]))
        detail = draw(st.one_of(st.just(""), code_words))
        children += [element("status", code or None, draw),
                     element("errorcode", detail or None, draw),
                     element("receivetime", sent, draw)]
        if mobile_shape != "good":
            oracle = "bad"
        elif not (code or detail):
            oracle = "bad"
        else:
            oracle = {"kind": "dlr", "mobile": e164, "vendor_status": code or detail,
                      "status": status.classify_returnsms(code, detail)}
            if code and detail:
                oracle["error_code"] = detail
            if iso:
                oracle["reported_at"] = iso
    elif kind == "callbox":
        text = draw(reply_text).strip()
        assume(text)
        children += [element("content", text, draw), element("receivetime", sent, draw)]
        oracle = "bad" if mobile_shape != "good" else {"kind": "mo", "mobile": e164, "text": text}
        if isinstance(oracle, dict) and iso:
            oracle["sent_at"] = iso
    elif kind == "errorstatus":
        children = [f"<seq>{index}</seq>", element("error", "1", draw),
                    element("remark", draw(reply_text), draw)]
        oracle = "bad"
    if draw(st.booleans()):
        children.append(element("taskid", f"{index}{draw(st.integers(0, 9999))}", draw))
    if draw(st.booleans()):
        children.append(element("extno", draw(st.text(string.digits, max_size=4)) or None, draw))
    children = draw(st.permutations(children))
    tag = kind if kind != "other" else draw(st.sampled_from(["foo", "statusboxes", "call"]))
    box = f"<{tag}>" + "".join(draw(ws) + c for c in children) + f"</{tag}>"
    return box, (oracle if kind != "other" else "skip")


@st.composite
def returnsms_pushes(draw) -> Built:
    """A `<returnsms>` document, mixed boxes, any declaration, as a body or in a form field."""
    boxes, expected = [], []
    for index in range(draw(st.integers(0, 6))):
        box, oracle = draw(xml_box(index))
        boxes.append(draw(ws) + box)
        if oracle != "skip":
            expected.append(oracle)
    root = draw(st.sampled_from(["returnsms"] * 4 + ["ReturnSms", "result"]))
    charset = draw(st.sampled_from(["utf-8", "utf-8", "gb2312"]))
    declaration = draw(st.sampled_from([
        "", '<?xml version="1.0" encoding="utf-8" ?>', "<?xml version='1.0' encoding='utf-8'?>",
        '<?xml version="1.0" encoding="gb2312"?>', "<?xml version='1.0'?>"]))
    document = (declaration + draw(ws) + f"<{root}>" + "".join(boxes) + draw(ws) +
                f"</{root}>").encode(charset)
    account = draw(st.one_of(st.none(), st.text(alphabet=string.ascii_letters, min_size=1,
                                                 max_size=8)))
    query = b"account=" + account.encode() if account else b""
    if draw(st.booleans()):
        if draw(st.sampled_from([False] * 4 + [True])):
            document = b"\xef\xbb\xbf" + document  # a UTF-8 BOM before the body
        request = Request("POST", query, document,
                          draw(st.sampled_from(["text/xml", "application/xml", None, FORM])))
    else:
        name = draw(st.sampled_from(["msg", "xml", "data", "returnsms", "Msg", "payload"]))
        form = (b"account=" + account.encode() + b"&" if account else b"") + name.encode() + b"="
        request = Request("POST", b"", form + pct(document), FORM)
    if root.lower() != "returnsms" or not expected:
        return Built(request, [], account)  # the whole push is undecodable
    return Built(request, expected, account)


STRUCTURED = {
    "topen": topen_pushes(),
    "winnerlook": topen_pushes(voice=True),
    "smsadmin": smsadmin_pushes(),
    "returnsms": returnsms_pushes(),
}


def test_every_vendor_has_a_structured_strategy():
    assert set(STRUCTURED) == set(REGISTRY)


def check_records(vendor: str, built: Built, out: Outcome) -> None:
    """Each non-empty record sent is one event or one per-record dead letter, as its oracle says."""
    per_record = [d for d in out.dead if "record" in d]
    if not built.expected:
        assert not out.events and not per_record
        return
    assert len(out.events) + len(per_record) == built.records
    for oracle in built.expected:
        if isinstance(oracle, dict):
            wanted = {**oracle, **({"account": built.account} if built.account else {})}
            matches = [e for e in out.events if all(e.get(k) == v for k, v in wanted.items())]
            assert matches, f"record {wanted} not published as such"
    bad = sum(1 for o in built.expected if o == "bad")
    assert len(per_record) >= bad


# --- the properties over HTTP ---------------------------------------------------------------------

@pytest.fixture
def client(app_factory):
    return app_factory().test_client()


@pytest.mark.parametrize("vendor", VENDORS)
@HTTP
@given(request=arbitrary)
def test_arbitrary_bytes(client, r, vendor, request):
    """(a)-(c) for arbitrary bytes, content types and methods."""
    check_outcome(vendor, request, push(client, r, vendor, request))


@pytest.mark.parametrize("vendor", VENDORS)
@HTTP
@given(data=st.data())
def test_near_valid_pushes(client, r, vendor, data):
    """(a)-(c), and (e): every non-empty record of the batch is an event or a dead letter."""
    built = data.draw(STRUCTURED[vendor], label="push")
    out = push(client, r, vendor, built.request)
    # Coverage of the generator, shown by --hypothesis-show-statistics.
    event(f"records sent: {min(built.records, 3)}+; published: {bool(out.events)}; "
          f"per-record dead letters: {any('record' in d for d in out.dead)}")
    check_outcome(vendor, built.request, out)
    check_records(vendor, built, out)


@pytest.mark.parametrize("vendor", VENDORS)
@settings(HTTP, max_examples=150)
@given(data=st.data())
def test_same_bytes_twice_publish_nothing_new(client, r, vendor, data):
    """(d): dedupe. The second push adds no event; pushed afresh, the ids are the same."""
    request = data.draw(st.one_of(STRUCTURED[vendor].map(lambda b: b.request), arbitrary),
                        label="request")
    first = push(client, r, vendor, request)
    again = push(client, r, vendor, request, flush=False)
    assert (again.status, again.data) == (200, b"ok")
    assert again.dlr == first.dlr and again.mo == first.mo
    fresh = push(client, r, vendor, request)
    assert [e["id"] for e in fresh.events] == [e["id"] for e in first.events]
    assert [{k: v for k, v in e.items() if k != "received_at"} for e in fresh.events] == \
        [{k: v for k, v in e.items() if k != "received_at"} for e in first.events]


LIMIT = 300


@pytest.mark.parametrize("vendor", VENDORS)
@settings(HTTP, max_examples=150)
@given(body=st.one_of(st.binary(max_size=2 * LIMIT), fragments), method=methods)
def test_413_only_over_the_limit(app_factory, r, vendor, body, method):
    client = app_factory(RECEIVER_MAX_BODY=str(LIMIT)).test_client()
    out = push(client, r, vendor, Request(method, b"", body, FORM))
    if len(body) > LIMIT:
        assert out.status == 413
        assert r.keys("*") == []
    else:
        assert (out.status, out.data) == (200, b"ok")


# --- examples the properties found or aim at ------------------------------------------------------

@pytest.mark.parametrize("vendor", ["topen", "winnerlook"])
def test_empty_getmo2_line_loses_no_reply(client, r, vendor):
    body = (b"account=a&GetMo2=13900000000|,|hi|,|2014-06-10 15:34:11|,|106904|;\n|;\n"
            b"13900000001|,|ho|,|2014-06-10 15:34:12|,|106904|;\n")
    out = push(client, r, vendor, Request("POST", b"", body, FORM))
    assert sorted(e["mobile"] for e in out.mo) == ["+8613900000000", "+8613900000001"]
    assert out.dead == []


# --- the decoders, pure ---------------------------------------------------------------------------

options = st.builds(Options, encoding=st.sampled_from(["utf-8", "gb2312", "gbk", "latin-1"]),
                    zone=st.sampled_from([SHANGHAI, ZoneInfo("UTC")]))


@pytest.mark.parametrize("vendor", VENDORS)
@PURE
@given(data=st.data(), options=options)
def test_decoders_raise_only_undecodable(vendor, data, options):
    request = data.draw(st.one_of(arbitrary, STRUCTURED[vendor].map(lambda b: b.request)),
                        label="request")
    raw = Push(request.method, request.query, request.body, request.content_type or "")
    try:
        decoded = REGISTRY[vendor].decode(raw, options)
    except Undecodable as problem:
        assert str(problem).strip()
        return
    for record in decoded.records:
        assert record["kind"] in ("dlr", "mo")
        event = events.complete({"account": decoded.account, **record}, vendor, events.now())
        assert events.check(event) == {}, event
    for reason, record in decoded.bad:
        assert isinstance(reason, str) and reason and isinstance(record, str)


@pytest.mark.parametrize("vendor", VENDORS)
@PURE
@given(data=st.data())
def test_decoders_are_deterministic(vendor, data):
    request = data.draw(STRUCTURED[vendor].map(lambda b: b.request), label="request")
    raw = Push(request.method, request.query, request.body, request.content_type or "")
    results = []
    for _ in range(2):
        try:
            results.append(REGISTRY[vendor].decode(raw, Options()))
        except Undecodable as problem:
            results.append(str(problem))
    assert results[0] == results[1]


# The returnsms decoder parses a document without a DOCTYPE with ElementTree's C parser, and
# everything else with defusedxml (the reference): the two must decode every push alike.
XML_PIECES = [
    "<statusbox>", "</statusbox>", "<callbox>", "</callbox>", "<mobile>", "</mobile>",
    "13900000000", "<status>10</status>", "<errorcode>DELIVRD</errorcode>", "<content>",
    "</content>", "<receivetime>2011-12-02 22:12:11</receivetime>", "<extno/>", "<taskid>",
    "</taskid>", "<errorstatus><error>1</error></errorstatus>", " ", "\n  ", "好的", "&amp;",
    "&lt;", "&gt;", "&quot;", "&#20320;", "&#x4e00;", "&#0;", "&#xD800;", "&nope;", "&", "<",
    ">", "]]>", "<![CDATA[a<b&c]]>", "<![CDATA[<!DOCTYPE x>]]>", "<!-- note -->", "<?pi x?>",
    '<statusbox id="1">', "<a:statusbox xmlns:a='urn:x'>", "</a:statusbox>", "<Mobile>",
    "</Mobile>", "<!DOCTYPE returnsms>", "<!doctype returnsms>",
    "<!DOCTYPE r [<!ENTITY e 'x'>]>", "&e;", '<!DOCTYPE r SYSTEM "http://127.0.0.1:1/x.dtd">',
    "\x00", "\x0b", "\ud800", "\ufeff", "\u2028",
]
hostile_xml = st.builds(
    lambda declaration, pieces, content_type: Request(
        "POST", b"", (declaration + "<returnsms>" + "".join(pieces) + "</returnsms>")
        .encode("utf-8", "surrogatepass"), content_type),
    st.sampled_from(["", '<?xml version="1.0" encoding="utf-8"?>', "<!DOCTYPE returnsms>",
                     '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e "x">]>']),
    st.lists(st.one_of(st.sampled_from(XML_PIECES), st.text(max_size=3)), max_size=30),
    st.sampled_from(["text/xml", "text/xml; charset=gb2312", None]))


@PURE
@given(request=st.one_of(STRUCTURED["returnsms"].map(lambda b: b.request), hostile_xml,
                         arbitrary))
def test_returnsms_fast_parse_decodes_as_defusedxml(request):
    raw = Push(request.method, request.query, request.body, request.content_type or "")
    outcomes = []
    for fast in (True, False):
        try:
            outcomes.append(returnsms.decode(raw, Options(), fast=fast))
        except Undecodable as problem:
            outcomes.append(str(problem))
    event("undecodable" if isinstance(outcomes[1], str) else "decoded")
    assert outcomes[0] == outcomes[1]


def test_normalize_text_never_raises_on_gb_family():
    """The text decoder the adapters rely on takes any bytes in every configured charset."""
    for codec in ("utf-8", "gb2312", "gbk", "gb18030", "latin-1"):
        for raw in (bytes(range(256)), b"\x80\xff\xfe", "退订".encode("gb2312")):
            assert isinstance(normalize.text(raw, codec), str)
