"""returnsms (vendor doc 004, `<returnsms>` XML): raw pushes -> HTTP answer -> stream entries.

The XML arrives as the body (text/xml, application/xml or no Content-Type) or in a form field
(`msg=`); `<statusbox>` reports and `<callbox>` replies may share one document. `status` 10 is
delivered whatever `errorcode` says; 20 is a failure that `errorcode` may refine
(status-codes.md rule 1).
"""
from __future__ import annotations

from urllib.parse import quote_from_bytes, quote_plus
from xml.etree.ElementTree import Element, fromstring

import pytest
from hypothesis import given, settings, strategies as st

from receiver.vendors import returnsms

from .helpers import FORM, Case, entries, run_case, sample, send

P = "/push/returnsms"
XML = "text/xml"
T_ISO = "2011-12-02T22:12:11+08:00"


def dlr(mobile: str, vendor_status: str, status: str, raw: str, **extra: str) -> dict:
    return {"kind": "dlr", "mobile": mobile, "vendor_status": vendor_status, "status": status,
            "raw": raw, **extra}


def mo(mobile: str, text: str, raw: str, **extra: str) -> dict:
    return {"kind": "mo", "mobile": mobile, "text": text, "raw": raw, **extra}


def pretty(tag: str, *children: str) -> str:
    """A box as laid out in the doc samples (children indented 4, closing tag 2)."""
    return f"<{tag}>\n" + "".join(f"    {child}\n" for child in children) + f"  </{tag}>"


def doc(*boxes: str, declaration: str = '<?xml version="1.0" encoding="utf-8"?>') -> bytes:
    return (declaration + "<returnsms>" + "".join(boxes) + "</returnsms>").encode()


def statusbox(status: str, errorcode: str, mobile: str = "13800000000") -> str:
    return (f"<statusbox><mobile>{mobile}</mobile><taskid>T1</taskid><status>{status}</status>"
            f"<receivetime>2011-12-02 22:12:11</receivetime><errorcode>{errorcode}</errorcode>"
            "</statusbox>")


# Doc 004 §4.3 (statusbox) and §5.3 (callbox), as the samples lay them out.
DOC_DLR = [
    dlr("+8615023239810", "10", "delivered", pretty(
        "statusbox", "<mobile>15023239810</mobile>", "<taskid>1212</taskid>",
        "<status>10</status>", "<receivetime>2011-12-02 22:12:11</receivetime>",
        "<errorcode>DELIVRD</errorcode>", "<extno>01</extno>"),
        batch_id="1212", error_code="DELIVRD", reported_at=T_ISO, ext_no="01"),
    # `<extno></extno>`: no ext_no. errorcode `2` on status 20: failed.
    dlr("+8615023239811", "20", "failed", pretty(
        "statusbox", "<mobile>15023239811</mobile>", "<taskid>1212</taskid>",
        "<status>20</status>", "<receivetime>2011-12-02 22:12:11</receivetime>",
        "<errorcode>2</errorcode>", "<extno />"),
        batch_id="1212", error_code="2", reported_at=T_ISO),
]
DOC_MO = [
    mo("+8615023239810", "你好, 我不需要", pretty(
        "callbox", "<mobile>15023239810</mobile>", "<taskid>1212</taskid>",
        "<content>你好, 我不需要</content>", "<receivetime>2011-12-02 22:12:11</receivetime>",
        "<extno>01</extno>"), batch_id="1212", sent_at=T_ISO, ext_no="01"),
    mo("+8615023239811", "你好, 本次活动路线是怎么的", pretty(
        "callbox", "<mobile>15023239811</mobile>", "<taskid>1212</taskid>",
        "<content>你好, 本次活动路线是怎么的</content>",
        "<receivetime>2011-12-02 22:12:11</receivetime>", "<extno>01</extno>"),
        batch_id="1212", sent_at=T_ISO, ext_no="01"),
]
# The reply the encoding samples carry.
GB_TEXT = "退订，谢谢"
GB_MO = mo("+8613800000002", GB_TEXT,
           "<callbox><mobile>13800000002</mobile><taskid>T1</taskid><content>退订，谢谢</content>"
           "<receivetime>2018-04-16 11:15:00</receivetime></callbox>",
           batch_id="T1", sent_at="2018-04-16T11:15:00+08:00")
YAO_MO = mo("+8613800000002", "要",
            "<callbox><mobile>13800000002</mobile><content>要</content></callbox>")
ERRORSTATUS = ('<?xml version="1.0" encoding="utf-8" ?>\n<returnsms>\n<errorstatus>\n'
               '<error>1</error>\n<remark>用户名或密码不能为空</remark>\n</errorstatus>\n'
               '</returnsms>\n').encode()
NO_MOBILE = "<callbox><taskid>T1</taskid><content>hi</content></callbox>"
TRUNCATED = sample("returnsms_doc_statusbox.xml")[:200]


def refused(name: str, body: bytes, reason: str, content_type: str | None = XML) -> Case:
    """A push refused as a whole: dead-letter verbatim, 200 ok, nothing published."""
    return Case(name, P, body=body, content_type=content_type,
                dead=[{"reason": reason, "body": body, "query": b"", "method": "POST",
                       "path": P, "content_type": content_type or ""}])


CASES = [
    # --- the documented pushes -----------------------------------------------------------
    *[Case(f"doc 004 §4.3 statusbox example, Content-Type {ct}", P,
           body=sample("returnsms_doc_statusbox.xml"), content_type=ct, dlr=DOC_DLR)
      for ct in (XML, "application/xml", "text/xml; charset=utf-8", None)],
    *[Case(f"doc 004 §5.3 callbox example, Content-Type {ct}", P,
           body=sample("returnsms_doc_callbox.xml"), content_type=ct, mo=DOC_MO)
      for ct in (XML, "application/xml", None)],
    Case("doc 004 §4.3 as printed, its `-----` annotations in the boxes", P,
         body=sample("returnsms_doc_statusbox_annotated.xml"), content_type=XML,
         dlr=[dlr("+8615023239810", "10", "delivered",
                  sample("returnsms_doc_statusbox_annotated.xml").decode().split(
                      "<returnsms>\n  ")[1].split("\n</returnsms>")[0],
                  batch_id="1212", error_code="DELIVRD", reported_at=T_ISO, ext_no="01")]),
    Case("doc statusbox in a form field msg=, percent-encoded", P,
         body=b"msg=" + quote_plus(sample("returnsms_doc_statusbox.xml")).encode(),
         dlr=DOC_DLR),
    Case("doc callbox in a form field msg=, with account and userid", P,
         body=(b"userid=12&account=acc1&msg="
               + quote_from_bytes(sample("returnsms_doc_callbox.xml")).encode()),
         mo=[{**m, "account": "acc1"} for m in DOC_MO]),
    Case("userid only: it stands in for the account", P,
         body=b"userid=12&msg=" + quote_plus(sample("returnsms_doc_callbox.xml")).encode(),
         mo=[{**m, "account": "12"} for m in DOC_MO]),
    Case("XML in another form field (returnsms=)", P,
         body=b"returnsms=" + quote_plus(sample("returnsms_doc_callbox.xml")).encode(),
         mo=DOC_MO),
    Case("XML in a GET query msg=", P, method="GET", content_type=None,
         query=b"account=acc1&msg=" + quote_plus(sample("returnsms_doc_statusbox.xml")).encode(),
         dlr=[{**d, "account": "acc1"} for d in DOC_DLR]),
    Case("XML body, account in the query", P, query=b"account=acc1",
         body=sample("returnsms_doc_callbox.xml"), content_type=XML,
         mo=[{**m, "account": "acc1"} for m in DOC_MO]),
    Case("statusbox and callbox mixed in one document", P, body=sample("returnsms_mixed.xml"),
         content_type=XML,
         dlr=[dlr("+8613800000001", "10", "delivered",
                  "<statusbox><mobile>13800000001</mobile><taskid>T1</taskid><status>10</status>"
                  "<receivetime>2018/4/16 11:14:13</receivetime><errorcode>DELIVRD</errorcode>"
                  "<extno>01</extno></statusbox>", batch_id="T1", error_code="DELIVRD",
                  reported_at="2018-04-16T11:14:13+08:00", ext_no="01"),
              dlr("+8613800000003", "20", "undelivered",
                  "<statusbox><mobile>13800000003</mobile><taskid>T1</taskid><status>20</status>"
                  "<receivetime>2018/4/16 11:14:13</receivetime><errorcode>MK:0001</errorcode>"
                  "<extno>01</extno></statusbox>", batch_id="T1", error_code="MK:0001",
                  reported_at="2018-04-16T11:14:13+08:00", ext_no="01")],
         mo=[mo("+8613800000002", "退订",
                "<callbox><mobile>13800000002</mobile><taskid>T1</taskid><content>退订</content>"
                "<receivetime>2018-04-16 11:15:00</receivetime><extno>01</extno></callbox>",
                batch_id="T1", sent_at="2018-04-16T11:15:00+08:00", ext_no="01")]),

    # --- status and errorcode (status-codes.md rule 1) ------------------------------------
    *[Case(f"status {s} errorcode {e!r} -> {expected}", P, body=doc(statusbox(s, e)),
           content_type=XML,
           dlr=[dlr("+8613800000000", s, expected, statusbox(s, e), batch_id="T1",
                    error_code=e, reported_at=T_ISO)])
      for s, e, expected in (("10", "DELIVRD", "delivered"), ("10", "UNDELIV", "delivered"),
                             ("10", "MK:0001", "delivered"), ("20", "DELIVRD", "failed"),
                             ("20", "UNKNOWN", "failed"), ("20", "2", "failed"),
                             ("20", "QQ:4242", "failed"), ("20", "MK:0001", "undelivered"),
                             ("20", "DB:0141", "blacklisted"), ("20", "EXPIRED", "expired"),
                             ("20", "REJECTD", "rejected"), ("20", "MC:0001", "failed"))],
    Case("status 20, empty errorcode: failed, no error_code", P,
         body=doc(statusbox("20", "")), content_type=XML,
         dlr=[dlr("+8613800000000", "20", "failed",
                  statusbox("20", "").replace("<errorcode></errorcode>", "<errorcode />"),
                  batch_id="T1", reported_at=T_ISO)]),
    Case("no status, errorcode only: errorcode is the vendor status", P,
         body=doc("<statusbox><mobile>13800000000</mobile><errorcode>DELIVRD</errorcode>"
                  "</statusbox>"), content_type=XML,
         dlr=[dlr("+8613800000000", "DELIVRD", "delivered",
                  "<statusbox><mobile>13800000000</mobile><errorcode>DELIVRD</errorcode>"
                  "</statusbox>")]),
    Case("an unseen status, no errorcode: unknown", P,
         body=doc("<statusbox><mobile>13800000000</mobile><status>30</status></statusbox>"),
         content_type=XML,
         dlr=[dlr("+8613800000000", "30", "unknown",
                  "<statusbox><mobile>13800000000</mobile><status>30</status></statusbox>")]),
    Case("linkid, and a placeholder receivetime that is no time", P,
         body=doc("<statusbox><mobile>13800000000</mobile><status>10</status>"
                  "<linkid>L-42</linkid><receivetime>0000-00-00 00:00:00</receivetime>"
                  "</statusbox>"), content_type=XML,
         dlr=[dlr("+8613800000000", "10", "delivered",
                  "<statusbox><mobile>13800000000</mobile><status>10</status>"
                  "<linkid>L-42</linkid><receivetime>0000-00-00 00:00:00</receivetime>"
                  "</statusbox>", link_id="L-42")]),

    # --- declarations and encodings ---------------------------------------------------------
    Case("no XML declaration", P, body=doc(statusbox("10", "DELIVRD"), declaration=""),
         content_type=XML,
         dlr=[dlr("+8613800000000", "10", "delivered", statusbox("10", "DELIVRD"),
                  batch_id="T1", error_code="DELIVRD", reported_at=T_ISO)]),
    Case("single-quoted XML declaration, leading blank line", P,
         body=doc(statusbox("10", "DELIVRD"),
                  declaration="\r\n<?xml version='1.0' encoding='utf-8' ?>\r\n"),
         content_type=XML,
         dlr=[dlr("+8613800000000", "10", "delivered", statusbox("10", "DELIVRD"),
                  batch_id="T1", error_code="DELIVRD", reported_at=T_ISO)]),
    Case("declares gb2312, GB2312 bytes", P, content_type=XML,
         body=sample("returnsms_gb2312_declared_gb2312.xml"), mo=[GB_MO]),
    Case("declares utf-8, GB2312 bytes", P, content_type=XML,
         body=sample("returnsms_gb2312_declared_utf8.xml"), mo=[GB_MO]),
    Case("declares gb2312, UTF-8 bytes", P, content_type=XML,
         body=sample("returnsms_utf8_declared_gb2312.xml"), mo=[GB_MO]),
    Case("no declaration, GB2312 bytes", P, content_type=XML,
         body=sample("returnsms_gb2312_no_declaration.xml"), mo=[GB_MO]),
    Case("a UTF-8 BOM and CRLFs", P, content_type=XML, body=sample("returnsms_bom.xml"),
         mo=[GB_MO]),
    Case("GB2312 XML percent-encoded in msg=", P,
         body=b"msg=" + quote_from_bytes(sample("returnsms_gb2312_declared_gb2312.xml")).encode(),
         mo=[GB_MO]),
    # 要 is D2 AA in GB2312, also valid UTF-8 (U+04AA): only a GB hint can tell.
    Case("要 in GB2312, declared gb2312", P, content_type=XML,
         body=sample("returnsms_yao_declared_gb2312.xml"), mo=[YAO_MO]),
    Case("要 in GB2312, no declaration, Content-Type charset=gb2312", P,
         content_type="text/xml; charset=GB2312", body=sample("returnsms_yao_no_declaration.xml"),
         mo=[YAO_MO]),
    Case("要 in GB2312, no declaration, RECEIVER_RETURNSMS_ENCODING=gb2312", P,
         content_type=XML, body=sample("returnsms_yao_no_declaration.xml"),
         env={"RECEIVER_RETURNSMS_ENCODING": "gb2312"}, mo=[YAO_MO]),

    # --- element quirks ---------------------------------------------------------------------
    Case("empty elements <extno></extno> and <extno/>, <taskid/>: fields absent", P,
         content_type=XML,
         body=doc("<callbox><mobile>13800000000</mobile><content>a</content><extno></extno>"
                  "</callbox><callbox><mobile>13800000001</mobile><taskid/><content>b</content>"
                  "<extno/></callbox>"),
         mo=[mo("+8613800000000", "a", "<callbox><mobile>13800000000</mobile>"
                "<content>a</content><extno /></callbox>"),
             mo("+8613800000001", "b", "<callbox><mobile>13800000001</mobile><taskid />"
                "<content>b</content><extno /></callbox>")]),
    Case("extra unknown elements and attributes, reordered elements", P, content_type=XML,
         body=doc('<statusbox id="9"><extno>07</extno><errorcode>DELIVRD</errorcode>'
                  "<sendtime>2011-12-02 22:00:00</sendtime><status>10</status>"
                  "<receivetime>2011-12-02 22:12:11</receivetime><mobile>13800000000</mobile>"
                  "<taskid>T9</taskid><fee>1</fee></statusbox>"),
         dlr=[dlr("+8613800000000", "10", "delivered",
                  '<statusbox id="9"><extno>07</extno><errorcode>DELIVRD</errorcode>'
                  "<sendtime>2011-12-02 22:00:00</sendtime><status>10</status>"
                  "<receivetime>2011-12-02 22:12:11</receivetime><mobile>13800000000</mobile>"
                  "<taskid>T9</taskid><fee>1</fee></statusbox>", batch_id="T9",
                  error_code="DELIVRD", reported_at=T_ISO, ext_no="07")]),
    Case("an element repeated in a box: the first one counts", P, content_type=XML,
         body=doc("<statusbox><mobile>13800000000</mobile><status>10</status>"
                  "<mobile>13900000000</mobile><status>20</status><taskid>T8</taskid>"
                  "</statusbox>"),
         dlr=[dlr("+8613800000000", "10", "delivered",
                  "<statusbox><mobile>13800000000</mobile><status>10</status>"
                  "<mobile>13900000000</mobile><status>20</status><taskid>T8</taskid>"
                  "</statusbox>", batch_id="T8")]),
    Case("whitespace and newlines inside elements", P, content_type=XML,
         body=doc("<callbox>\n<mobile>\n  138 0000 0000\n</mobile>\n<taskid> T1 </taskid>\n"
                  "<content>\n  第一行\n第二行  \n</content>\n<receivetime>\t2011-12-02 22:12:11 "
                  "</receivetime>\n<extno> 01 </extno>\n</callbox>"),
         mo=[mo("+8613800000000", "第一行\n第二行",
                "<callbox>\n<mobile>\n  138 0000 0000\n</mobile>\n<taskid> T1 </taskid>\n"
                "<content>\n  第一行\n第二行  \n</content>\n<receivetime>\t2011-12-02 22:12:11 "
                "</receivetime>\n<extno> 01 </extno>\n</callbox>",
                batch_id="T1", sent_at=T_ISO, ext_no="01")]),
    Case("uppercase and mixed-case tags", P, content_type=XML,
         body=b"<RETURNSMS><StatusBox><MOBILE>13800000000</MOBILE><Status>20</Status>"
              b"<ErrorCode>MK:0001</ErrorCode></StatusBox></RETURNSMS>",
         dlr=[dlr("+8613800000000", "20", "undelivered",
                  "<StatusBox><MOBILE>13800000000</MOBILE><Status>20</Status>"
                  "<ErrorCode>MK:0001</ErrorCode></StatusBox>", error_code="MK:0001")]),
    Case("escaped text and CDATA in content", P, content_type=XML,
         body=doc("<callbox><mobile>13800000000</mobile><content>A&amp;B &lt;3</content>"
                  "</callbox><callbox><mobile>13800000001</mobile>"
                  "<content><![CDATA[回复 <TD> & 退订]]></content></callbox>"),
         mo=[mo("+8613800000000", "A&B <3", "<callbox><mobile>13800000000</mobile>"
                "<content>A&amp;B &lt;3</content></callbox>"),
             mo("+8613800000001", "回复 <TD> & 退订", "<callbox><mobile>13800000001</mobile>"
                "<content>回复 &lt;TD&gt; &amp; 退订</content></callbox>")]),
    Case("text between boxes is not part of a box's raw", P, content_type=XML,
         body=doc(statusbox("10", "DELIVRD") + "stray text"
                  + statusbox("10", "DELIVRD", "13800000001")),
         dlr=[dlr("+8613800000000", "10", "delivered", statusbox("10", "DELIVRD"),
                  batch_id="T1", error_code="DELIVRD", reported_at=T_ISO),
              dlr("+8613800000001", "10", "delivered",
                  statusbox("10", "DELIVRD", "13800000001"), batch_id="T1",
                  error_code="DELIVRD", reported_at=T_ISO)]),

    # --- bad input ----------------------------------------------------------------------------
    Case("doc 004 §4.4 <errorstatus> document", P, body=ERRORSTATUS, content_type=XML,
         dead=[{"reason": "vendor sent an error status: 1 用户名或密码不能为空",
                "record": "<errorstatus>\n<error>1</error>\n<remark>用户名或密码不能为空</remark>"
                          "\n</errorstatus>", "body": ERRORSTATUS}]),
    Case("a box with no mobile: dead letter with record, the others published", P,
         content_type=XML,
         body=doc(statusbox("10", "DELIVRD"), NO_MOBILE,
                  statusbox("20", "MK:0001", "13800000001")),
         dlr=[dlr("+8613800000000", "10", "delivered", statusbox("10", "DELIVRD"),
                  batch_id="T1", error_code="DELIVRD", reported_at=T_ISO),
              dlr("+8613800000001", "20", "undelivered",
                  statusbox("20", "MK:0001", "13800000001"), batch_id="T1",
                  error_code="MK:0001", reported_at=T_ISO)],
         dead=[{"reason": "no usable mobile in ''", "record": NO_MOBILE,
                "body": doc(statusbox("10", "DELIVRD"), NO_MOBILE,
                            statusbox("20", "MK:0001", "13800000001"))}]),
    Case("a statusbox with neither status nor errorcode", P, content_type=XML,
         body=doc("<statusbox><mobile>13800000000</mobile><taskid>T1</taskid></statusbox>"),
         dead=[{"reason": "report without a status or errorcode",
                "record": "<statusbox><mobile>13800000000</mobile><taskid>T1</taskid>"
                          "</statusbox>"}]),
    refused("not XML", b"hello, this is not XML", "no XML in the body", "text/plain"),
    refused("JSON", b'{"mobile": "13800000000", "status": 10}', "no XML in the body",
            "application/json"),
    refused("an empty POST", b"", "empty push", None),
    refused("truncated XML", TRUNCATED, "XML does not parse"),
    refused("a wrong root element", b"<response><statusbox><mobile>13800000000</mobile>"
            b"<status>10</status></statusbox></response>", "XML root is <response>"),
    refused("a send-API answer, not a push: <returnsms> without boxes",
            b'<?xml version="1.0" encoding="utf-8" ?><returnsms><returnstatus>Success'
            b"</returnstatus><message>ok</message></returnsms>", "holds no <statusbox>"),
    refused("billion laughs", sample("returnsms_bomb.xml"), "XML refused"),
    refused("billion laughs in msg=", b"msg=" + quote_plus(sample("returnsms_bomb.xml")).encode(),
            "XML refused", FORM),
    refused("external entity (XXE)", sample("returnsms_xxe.xml"), "XML refused"),
    refused("a DOCTYPE", sample("returnsms_doctype.xml"), "XML refused"),

    # --- an empty reply is still a reply ------------------------------------------------------
    Case("an empty <content/> is published with text ''", P, content_type=XML,
         body=doc("<callbox><mobile>13800000000</mobile><content/></callbox>"),
         mo=[mo("+8613800000000", "",
                "<callbox><mobile>13800000000</mobile><content /></callbox>")]),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_returnsms(app_factory, r, case):
    run_case(app_factory, r, case)


def _push_all(app_factory, bodies: list[bytes]) -> None:
    client = app_factory().test_client()
    for body in bodies:
        response = send(client, Case("push", P, body=body, content_type=XML))
        assert (response.status_code, response.data) == (200, b"ok")


def test_same_document_twice_is_published_once(app_factory, r):
    _push_all(app_factory, [sample("returnsms_mixed.xml")] * 2)
    assert [e["mobile"] for e in entries(r, "sms:dlr")] == ["+8613800000001", "+8613800000003"]
    assert [e["mobile"] for e in entries(r, "sms:mo")] == ["+8613800000002"]


def test_overlapping_pushes_publish_each_box_once(app_factory, r):
    a, b, c = (statusbox("10", "DELIVRD", m) for m in ("13800000001", "13800000002",
                                                         "13800000003"))
    _push_all(app_factory, [doc(a, b), doc(b, c),
                            # the same box re-serialised differently is the same record
                            doc(c.replace("><", ">\n  <"), declaration="")])
    assert [e["mobile"] for e in entries(r, "sms:dlr")] == [
        "+8613800000001", "+8613800000002", "+8613800000003"]


def test_a_later_report_with_another_outcome_is_published(app_factory, r):
    _push_all(app_factory, [doc(statusbox("20", "MK:0001")), doc(statusbox("10", "DELIVRD"))])
    assert [e["status"] for e in entries(r, "sms:dlr")] == ["undelivered", "delivered"]


# --- the raw field: written without ElementTree's tostring, byte for byte the same ---------

_TAGS = st.sampled_from(["statusbox", "callbox", "mobile", "content", "x", "标签", "a.b", "a-b"])
_TEXT = st.one_of(st.none(), st.text(st.characters(blacklist_categories=("Cs",)), max_size=12),
                  st.sampled_from(["", " ", "\n  ", "a&b", "<x>", "]]>", "\"'", "好的，谢谢"]))
_ATTRS = st.one_of(st.just({}), st.just({}), st.dictionaries(
    st.sampled_from(["id", "{urn:x}id", "t"]), st.text(max_size=5), max_size=2))


@st.composite
def _trees(draw, depth: int = 0) -> Element:
    tag = draw(st.one_of(_TAGS, st.just("{urn:x}box")) if depth else _TAGS)
    element = Element(tag, draw(_ATTRS))
    element.text = draw(_TEXT)
    for _ in range(draw(st.integers(0, 3 if depth < 3 else 0))):
        child = draw(_trees(depth + 1))
        child.tail = draw(_TEXT)
        element.append(child)
    element.tail = draw(_TEXT)
    return element


@settings(max_examples=500, deadline=None)
@given(box=_trees())
def test_raw_is_what_tostring_writes(box):
    """Any element (attributes, namespaces and nesting take the tostring path) gives the same
    raw text as ElementTree's tostring, and the box's tail is left as it was."""
    tail = box.tail
    assert returnsms._raw(box) == returnsms._serialized(box)
    assert box.tail == tail


@settings(max_examples=500, deadline=None)
@given(box=_trees())
def test_one_pass_over_a_box_gives_its_texts_and_raw(box):
    """The decoder's single pass (_box) finds what _texts and _raw find separately, whatever
    the box: plain ones take the pass, the others fall back to the two."""
    assert returnsms._box(box) == (returnsms._texts(box), returnsms._raw(box))


@pytest.mark.parametrize("document", [
    "<r><statusbox><mobile>1</mobile><status/><content>a &amp; b &lt;c&gt;</content></statusbox></r>",
    "<r><callbox>\n  <mobile> 1 </mobile>\n  <content>好</content>\n</callbox>tail</r>",
    '<r><statusbox id="7"><mobile>1</mobile></statusbox></r>',
    '<r xmlns:v="urn:v"><v:statusbox><v:mobile>1</v:mobile></v:statusbox></r>',
])
def test_raw_of_parsed_boxes_is_what_tostring_writes(document):
    for box in fromstring(document):
        assert returnsms._raw(box) == returnsms._serialized(box)


@pytest.mark.parametrize("attributes", ["", ' id="1"'], ids=["plain", "tostring"])
def test_raw_of_a_box_nested_32_deep_is_written_and_33_refused(attributes):
    def box(levels: int) -> Element:
        return fromstring(f"<statusbox{attributes}>" + "<x>" * levels + "y" + "</x>" * levels +
                          "</statusbox>")
    assert returnsms._raw(box(32)) == returnsms._serialized(box(32))
    with pytest.raises(returnsms.Undecodable, match="nested deeper than 32 elements"):
        returnsms._raw(box(33))
