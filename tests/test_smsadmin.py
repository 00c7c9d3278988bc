"""smsadmin (vendor doc 003, GB2312): raw pushes -> HTTP answer -> stream entries.

Doc 003 says POST but shows the parameters in the URL; real pushes come both ways, so most
pushes are tried as a GET query and as a POST form body, raw GB2312 bytes included.
"""
from __future__ import annotations

from urllib.parse import quote_from_bytes

import pytest

from .helpers import FORM, Case, entries, run_case, sample, send

P = "/push/smsadmin"


M = "+8613800000000"


def gb(text: str) -> str:
    """`text` percent-encoded in GB2312, as the vendor's urlencode mode sends it."""
    return quote_from_bytes(text.encode("gb2312"), safe="")


def mo(text: str, raw: str, mobile: str = M, account: str | None = "ID", **extra: str) -> dict:
    """An expected mo entry (account None: the push named none, so the field is absent)."""
    return {"kind": "mo", "mobile": mobile, "text": text, "raw": raw,
            **({"account": account} if account else {}), **extra}


def rpt(vendor_status: str, status: str, raw: str, mobile: str = M,
        account: str | None = "ID", **extra: str) -> dict:
    """An expected dlr entry (account None: absent)."""
    return {"kind": "dlr", "mobile": mobile, "vendor_status": vendor_status, "status": status,
            "raw": raw, **({"account": account} if account else {}), **extra}


def both(name: str, push: bytes, **expected) -> list[Case]:
    """The same push as a GET query and as a POST form body."""
    return [Case(f"{name} (GET query)", P, method="GET", query=push, content_type=None,
                 **expected),
            Case(f"{name} (POST body)", P, body=push, **expected)]


# Doc 003 §9, verbatim but for the PDF's line break inside LinkId: note the stray space in
# `& RevertTime=` and the placeholder time, which is no time: published without sent_at.
DOC_MO = (b"Class=mo&SmsName=ID&Mobile=13802102102&Message=test&LinkId=123456789"
          b"& RevertTime=0000-00-00 00:00:00")
DOC_MO_RAW = ("Class=mo&SmsName=ID&Mobile=13802102102&Message=test&LinkId=123456789"
              "&RevertTime=0000-00-00 00:00:00")
# Doc 003 §10, verbatim: `138xxxxxxx` is the doc's placeholder, not a mobile.
DOC_RPT = (b"Class=rpt&SmsName=ID&Mobile=138xxxxxxx&LinkId=123456789&Report=DELIVRD"
           b"&ReportTime=0000-00-00 00:00:00")
RPT = "Class=rpt&SmsName=ID&Mobile=13800000000&LinkId=123456789&Report={}&ReportTime={}"
MO = "Class=mo&SmsName=ID&Mobile=13800000000&Message={}&LinkId=L1&RevertTime={}"
T = "2017-09-28 10:00:00"
T_ISO = "2017-09-28T10:00:00+08:00"


def rpt_push(report: str, time: str = "2017-09-28%2010:00:00") -> bytes:
    return RPT.format(report, time).encode()


def mo_push(message: str, time: str = "2017-09-28%2010:00:00") -> bytes:
    return MO.format(message, time).encode()


def mo_raw(text: str, time: str = T) -> str:
    return MO.format(text, time)


CASES = [
    # --- the documented pushes -----------------------------------------------------------
    *both("doc 003 §9 mo example verbatim, `& RevertTime=0000-00-00 00:00:00`", DOC_MO,
          mo=[mo("test", DOC_MO_RAW, mobile="+8613802102102", link_id="123456789")]),
    *both("doc 003 §10 rpt example verbatim: its 138xxxxxxx placeholder is no mobile", DOC_RPT,
          dead=[{"reason": "no usable mobile in '138xxxxxxx'",
                 "record": DOC_RPT.decode()}]),
    *both("doc 003 §10 rpt with a real mobile and the doc's placeholder time",
          rpt_push("DELIVRD", "0000-00-00 00:00:00"),
          dlr=[rpt("DELIVRD", "delivered", RPT.format("DELIVRD", "0000-00-00 00:00:00"),
                   link_id="123456789")]),
    *both("rpt, v1.0.5 with its time", rpt_push("DELIVRD"),
          dlr=[rpt("DELIVRD", "delivered", RPT.format("DELIVRD", T), link_id="123456789",
                   reported_at=T_ISO)]),
    *both("mo, v1.0.5 with its time", mo_push("ok"),
          mo=[mo("ok", mo_raw("ok"), link_id="L1", sent_at=T_ISO)]),
    *both("mo before v1.0.5: no LinkId, no RevertTime",
          b"Class=mo&SmsName=ID&Mobile=13800000000&Message=%CD%CB%B6%A9",
          mo=[mo("退订", "Class=mo&SmsName=ID&Mobile=13800000000&Message=退订")]),
    *both("keys in any case, Class=RPT, stray spaces around values",
          b"class=RPT&smsname=ID&mobile=%20138%200000%200000&linkid=%20L1%20&report=%20DELIVRD%20",
          dlr=[rpt("DELIVRD", "delivered",
                   "class=RPT&smsname=ID&mobile= 138 0000 0000&linkid= L1 &report= DELIVRD ",
                   link_id="L1")]),
    Case("a push split between query and form body", P,
         query=b"Class=rpt&SmsName=ID", body=b"Mobile=13800000000&Report=DELIVRD&LinkId=L1",
         dlr=[rpt("DELIVRD", "delivered",
                  "Class=rpt&SmsName=ID&Mobile=13800000000&Report=DELIVRD&LinkId=L1",
                  link_id="L1")]),
    Case("a key in both query and body: the body's value wins", P,
         query=b"Class=rpt&Report=UNDELIV", body=b"Mobile=13800000000&Report=DELIVRD",
         dlr=[rpt("DELIVRD", "delivered",
                  "Class=rpt&Report=UNDELIV&Mobile=13800000000&Report=DELIVRD", account=None)]),

    # --- text: GB2312 percent-encoded or raw, UTF-8, GB18030 ------------------------------
    *both("GB2312 percent-encoded (%CD%CB%B6%A9 = 退订)", mo_push("%CD%CB%B6%A9"),
          mo=[mo("退订", mo_raw("退订"), link_id="L1", sent_at=T_ISO)]),
    *both("GB2312 as raw bytes", sample("smsadmin_mo_gb2312_raw.txt"),
          mo=[mo("退订", "Class=mo&SmsName=ID&Mobile=13800000000&Message=退订&LinkId=L20170928"
                 "&RevertTime=2017-09-28 10:00:00", link_id="L20170928", sent_at=T_ISO)]),
    *[case for reply in ("是", "好", "要", "1", "TD") for case in both(
        f"one-character reply {reply!r}, percent-encoded", mo_push(gb(reply)),
        mo=[mo(reply, mo_raw(reply), link_id="L1", sent_at=T_ISO)])],
    *both("one-character reply 是 as raw bytes", sample("smsadmin_mo_shi_raw.txt"),
          mo=[mo("是", "Class=mo&SmsName=ID&Mobile=13800000000&Message=是")]),
    # 要 is D2 AA in GB2312, which is also valid UTF-8 (U+04AA): GB2312 must win.
    *both("one-character reply 要 as raw bytes", sample("smsadmin_mo_yao_raw.txt"),
          mo=[mo("要", "Class=mo&SmsName=ID&Mobile=13800000000&Message=要")]),
    *both("a reply with spaces, a CRLF, `+` for a space and an escaped %2B",
          mo_push("%C7%EB+%BB%D8%B5%E7%0D%0A%B5%E7%BB%B0:%20%2B86%20138"),
          mo=[mo("请 回电\r\n电话: +86 138", mo_raw("请 回电\r\n电话: +86 138"), link_id="L1",
                 sent_at=T_ISO)]),
    *both("GB18030-only characters (4-byte 𠮷 and 䶮, €), percent-encoded",
          mo_push(quote_from_bytes("𠮷䶮€".encode("gb18030"))),
          mo=[mo("𠮷䶮€", mo_raw("𠮷䶮€"), link_id="L1", sent_at=T_ISO)]),
    *both("GB18030-only characters as raw bytes", sample("smsadmin_mo_gb18030_raw.txt"),
          mo=[mo("𠮷䶮€", "Class=mo&SmsName=ID&Mobile=13800000000&Message=𠮷䶮€")]),
    *both("UTF-8 percent-encoded sent to this GB2312 vendor", mo_push("%E9%80%80%E8%AE%A2"),
          mo=[mo("退订", mo_raw("退订"), link_id="L1", sent_at=T_ISO)]),
    *both("UTF-8 raw bytes, fullwidth punctuation", sample("smsadmin_mo_utf8_raw.txt"),
          mo=[mo("好的，谢谢！", "Class=mo&SmsName=ID&Mobile=13800000000&Message=好的，谢谢！")]),
    Case("Content-Type with a charset", P, body=mo_push("%CD%CB%B6%A9"),
         content_type="application/x-www-form-urlencoded; charset=GB2312",
         mo=[mo("退订", mo_raw("退订"), link_id="L1", sent_at=T_ISO)]),
    Case("POST with no Content-Type", P, body=sample("smsadmin_mo_gb2312_raw.txt"),
         content_type=None,
         mo=[mo("退订", "Class=mo&SmsName=ID&Mobile=13800000000&Message=退订&LinkId=L20170928"
                "&RevertTime=2017-09-28 10:00:00", link_id="L20170928", sent_at=T_ISO)]),
    Case("POST with Content-Type text/plain", P, body=mo_push("%CD%CB%B6%A9"),
         content_type="text/plain",
         mo=[mo("退订", mo_raw("退订"), link_id="L1", sent_at=T_ISO)]),
    *both("SmsName in GB2312", b"Class=rpt&SmsName=%D5%C5%C8%FD&Mobile=13800000000&Report=DELIVRD",
          dlr=[rpt("DELIVRD", "delivered",
                   "Class=rpt&SmsName=张三&Mobile=13800000000&Report=DELIVRD", account="张三")]),

    # --- Report -> status, times ----------------------------------------------------------
    *[case for code, status in (("UNDELIV", "undelivered"), ("MK:0001", "undelivered"),
                                ("EXPIRED", "expired"), ("DB:0141", "blacklisted"),
                                ("NEWCODE7", "unknown"))
      for case in both(f"Report {code} -> {status}", rpt_push(code),
                       dlr=[rpt(code, status, RPT.format(code, T), link_id="123456789",
                                reported_at=T_ISO)])],
    *both("Report MK%3A0001 percent-encoded", rpt_push("MK%3A0001"),
          dlr=[rpt("MK:0001", "undelivered", RPT.format("MK:0001", T), link_id="123456789",
                   reported_at=T_ISO)]),
    *[case for time, iso in (("2017/09/28%2010:00:00", T_ISO),
                             ("2017-9-8%209:05:07", "2017-09-08T09:05:07+08:00"),
                             ("2017/9/8+9:05:07", "2017-09-08T09:05:07+08:00"),
                             ("2017-09-28%2010%3A00%3A00", T_ISO))
      for case in both(f"ReportTime {time}", rpt_push("DELIVRD", time),
                       dlr=[rpt("DELIVRD", "delivered",
                                RPT.format("DELIVRD", time.replace("%20", " ").replace(
                                    "+", " ").replace("%3A", ":")),
                                link_id="123456789", reported_at=iso)])],
    *both("RevertTime with `/`, unpadded", mo_push("ok", "2017/9/8%209:05:07"),
          mo=[mo("ok", mo_raw("ok", "2017/9/8 9:05:07"), link_id="L1",
                 sent_at="2017-09-08T09:05:07+08:00")]),
    *both("an impossible time (2017-02-30) is left out",
          rpt_push("DELIVRD", "2017-02-30%2010:00:00"),
          dlr=[rpt("DELIVRD", "delivered", RPT.format("DELIVRD", "2017-02-30 10:00:00"),
                   link_id="123456789")]),

    # --- bad pushes -----------------------------------------------------------------------
    *both("no Class", b"SmsName=ID&Mobile=13800000000&Report=DELIVRD",
          dead=[{"reason": "no Class field"}]),
    Case("no Class, raw GB2312 body: dead-letter keeps the bytes", P,
         body=sample("smsadmin_no_class_gb2312_raw.txt"), query=b"x=%CD%CB",
         dead=[{"reason": "no Class field", "body": sample("smsadmin_no_class_gb2312_raw.txt"),
                "query": b"x=%CD%CB", "method": "POST", "path": P, "content_type": FORM,
                "remote_addr": "127.0.0.1"}]),
    Case("no Class, raw GB2312 query: dead-letter keeps the bytes", P, method="GET",
         query=sample("smsadmin_no_class_gb2312_raw.txt"), content_type=None,
         dead=[{"reason": "no Class field", "query": sample("smsadmin_no_class_gb2312_raw.txt"),
                "body": b"", "method": "GET", "path": P}]),
    *both("Class=other", b"Class=other&SmsName=ID&Mobile=13800000000",
          dead=[{"reason": "Class is 'other', expected 'rpt' or 'mo'"}]),
    Case("an empty GET", P, method="GET", content_type=None,
         dead=[{"reason": "empty push", "query": b"", "body": b"", "method": "GET"}]),
    *both("no Mobile", b"Class=rpt&SmsName=ID&LinkId=L1&Report=DELIVRD",
          dead=[{"reason": "no usable mobile",
                 "record": "Class=rpt&SmsName=ID&LinkId=L1&Report=DELIVRD"}]),
    *both("an unusable Mobile", b"Class=mo&SmsName=ID&Mobile=abc&Message=%CD%CB%B6%A9",
          dead=[{"reason": "no usable mobile in 'abc'",
                 "record": "Class=mo&SmsName=ID&Mobile=abc&Message=退订"}]),
    *both("rpt without Report", b"Class=rpt&SmsName=ID&Mobile=13800000000&LinkId=L1",
          dead=[{"reason": "without a Report",
                 "record": "Class=rpt&SmsName=ID&Mobile=13800000000&LinkId=L1"}]),
    *both("rpt with an empty Report", b"Class=rpt&SmsName=ID&Mobile=13800000000&Report=%20",
          dead=[{"reason": "without a Report",
                 "record": "Class=rpt&SmsName=ID&Mobile=13800000000&Report= "}]),

    # --- settings -------------------------------------------------------------------------
    Case("RECEIVER_SMSADMIN_ACCOUNTS lists the account", P, body=rpt_push("DELIVRD"),
         env={"RECEIVER_SMSADMIN_ACCOUNTS": "other,ID"},
         dlr=[rpt("DELIVRD", "delivered", RPT.format("DELIVRD", T), link_id="123456789",
                  reported_at=T_ISO)]),
    Case("RECEIVER_SMSADMIN_ACCOUNTS does not list the account", P, body=rpt_push("DELIVRD"),
         env={"RECEIVER_SMSADMIN_ACCOUNTS": "other"},
         dead=[{"reason": "account 'ID' is not allowed", "body": rpt_push("DELIVRD")}]),
    Case("RECEIVER_SMSADMIN_ACCOUNTS and no SmsName", P,
         body=b"Class=rpt&Mobile=13800000000&Report=DELIVRD",
         env={"RECEIVER_SMSADMIN_ACCOUNTS": "ID"}, dead=[{"reason": "is not allowed"}]),
    Case("RECEIVER_SMSADMIN_ENCODING=big5 decodes Big5 bytes", P,
         body=sample("smsadmin_mo_big5_raw.txt"), env={"RECEIVER_SMSADMIN_ENCODING": "big5"},
         mo=[mo("是", "Class=mo&SmsName=ID&Mobile=13800000000&Message=是")]),
    Case("RECEIVER_SMSADMIN_ENCODING=utf-8, UTF-8 bytes", P,
         body=sample("smsadmin_mo_utf8_raw.txt"), env={"RECEIVER_SMSADMIN_ENCODING": "utf-8"},
         mo=[mo("好的，谢谢！", "Class=mo&SmsName=ID&Mobile=13800000000&Message=好的，谢谢！")]),
    Case("RECEIVER_SMSADMIN_ENCODING=utf-8 still reads GB2312 bytes", P,
         body=sample("smsadmin_mo_shi_raw.txt"), env={"RECEIVER_SMSADMIN_ENCODING": "utf-8"},
         mo=[mo("是", "Class=mo&SmsName=ID&Mobile=13800000000&Message=是")]),
    Case("RECEIVER_SMSADMIN_TIMEZONE=UTC", P, body=rpt_push("DELIVRD"),
         env={"RECEIVER_SMSADMIN_TIMEZONE": "UTC"},
         dlr=[rpt("DELIVRD", "delivered", RPT.format("DELIVRD", T), link_id="123456789",
                  reported_at="2017-09-28T10:00:00+00:00")]),

    # --- empty replies and emoji (UTF-8 detection for GB vendors) -------------------------
    Case("an empty reply is published with text ''", P,
         body=b"Class=mo&SmsName=ID&Mobile=13800000000&Message=",
         mo=[mo("", "Class=mo&SmsName=ID&Mobile=13800000000&Message=")]),
    Case("UTF-8 with an emoji sent to this GB2312 vendor", P,
         body=sample("smsadmin_mo_emoji_utf8_raw.txt"),
         mo=[mo("好👍", "Class=mo&SmsName=ID&Mobile=13800000000&Message=好👍")]),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_smsadmin(app_factory, r, case):
    run_case(app_factory, r, case)


def _push_all(app_factory, pushes: list[Case]) -> None:
    client = app_factory().test_client()
    for case in pushes:
        response = send(client, case)
        assert (response.status_code, response.data) == (200, b"ok"), case.name


def test_same_push_twice_is_published_once(app_factory, r):
    push = Case("rpt", P, body=rpt_push("DELIVRD"))
    _push_all(app_factory, [push, push])
    assert [e["raw"] for e in entries(r, "sms:dlr")] == [RPT.format("DELIVRD", T)]


def test_same_reply_as_get_raw_and_post_encoded_is_published_once(app_factory, r):
    # The same record, once as a GET with raw GB2312 bytes, once as a percent-encoded POST.
    raw = sample("smsadmin_mo_gb2312_raw.txt")
    encoded = raw.replace("退订".encode("gb2312"), b"%CD%CB%B6%A9").replace(b" ", b"+")
    _push_all(app_factory, [Case("get", P, method="GET", query=raw, content_type=None),
                            Case("post", P, body=encoded)])
    assert [e["text"] for e in entries(r, "sms:mo")] == ["退订"]


def test_different_reports_for_one_send_are_all_published(app_factory, r):
    _push_all(app_factory, [Case("a", P, body=rpt_push("DELIVRD")),
                            Case("b", P, body=rpt_push("UNDELIV")),
                            Case("a again", P, method="GET", query=rpt_push("DELIVRD"),
                                 content_type=None)])
    assert [e["vendor_status"] for e in entries(r, "sms:dlr")] == ["DELIVRD", "UNDELIV"]
