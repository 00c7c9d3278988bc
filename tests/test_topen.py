"""Topen (vendor docs 000, 002): raw pushes -> HTTP answer -> stream entries.

`SHARED` holds the cases that hold for every platform speaking this format (test_winnerlook
runs them again at /push/winnerlook); `TOPEN_ONLY` what differs at /push/topen.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest

from .helpers import FORM, Case, run_case, sample, send

B = "0278387837488834"
T = "2014-06-10 15:34:11"
T_ISO = "2014-06-10T15:34:11+08:00"
GB = "gb2312"


@dataclass
class Pushes(Case):
    """A case whose `body` is sent after the bodies in `before` (same path, headers, env)."""

    before: list[bytes] = field(default_factory=list)


def dlr(mobile: str, vendor_status: str, status: str, raw: str, batch: str | None = B,
        account: str | None = "acc1", **extra: str) -> dict[str, str]:
    """An expected dlr entry; fields given as None are expected absent."""
    entry = {"kind": "dlr", "batch_id": batch, "mobile": mobile, "status": status,
             "vendor_status": vendor_status, "raw": raw, "account": account, **extra}
    return {k: v for k, v in entry.items() if v is not None}


def mo(mobile: str, text: str, raw: str, sent_at: str | None = T_ISO,
       service_number: str | None = None, account: str | None = "acc1") -> dict[str, str]:
    """An expected mo entry; fields given as None are expected absent."""
    entry = {"kind": "mo", "mobile": mobile, "text": text, "sent_at": sent_at,
             "service_number": service_number, "raw": raw, "account": account}
    return {k: v for k, v in entry.items() if v is not None}


def report(payload: str | bytes, account: str = "acc1", key: str = "GetReport") -> bytes:
    """A report push body exactly as the platform sends it (the payload unescaped)."""
    if isinstance(payload, str):
        payload = payload.encode()
    return f"account={account}&{key}=".encode() + payload


def reply(payload: str | bytes, account: str = "acc1", key: str = "GetMo") -> bytes:
    return report(payload, account, key)


# --- the 500-record batch of tests/samples/topen_report_500.txt (doc 001: "每次最多返回 500
# 条"): record i is batch 23143576200850<i>, mobile 139<i>, a status word cycling through
# WORDS, and every third record has a `2014/6/10 15:mm:ss` time.
WORDS = {"DELIVRD": "delivered", "UNDELIVRD": "undelivered", "EXPIRED": "expired",
         "MK:0001": "undelivered", "DB:0141": "blacklisted"}


def _batch_500() -> list[dict[str, str]]:
    out = []
    for i in range(500):
        word = list(WORDS)[i % 5]
        batch, number = f"23143576200850{i:05d}", f"139{i:08d}"
        if i % 3 == 0:
            time = f"2014/6/10 15:{i // 60:02d}:{i % 60:02d}"
            out.append(dlr("+86" + number, word, WORDS[word], f"{batch},{number},{time},{word}",
                           batch=batch, reported_at=f"2014-06-10T15:{i // 60:02d}:{i % 60:02d}+08:00"))
        else:
            out.append(dlr("+86" + number, word, WORDS[word], f"{batch},{number},{word}", batch=batch))
    return out


_BAD_BATCH = report(f"{B},13900000000,DELIVRD|garbage|{B},,DELIVRD|{B},13900000002,|"
                    f"{B},abc,DELIVRD|{B},13900000003,{T},UNDELIVRD|{B},1,2,3,4,5,6|")
_GB_REPLIES = sample("topen_mo_gb2312.bin")

SHARED = [
    # --- vendor doc 000, verbatim -----------------------------------------------------------
    Case("doc 000 GetReport example verbatim (line breaks, batch,,mobile quirk)", "/push/topen",
         body=report("".join(f"{B},1390000000{n},{w}|  \n" for n, w in
                             [(0, "DELIVRD"), (1, "DELIVRD"), (2, "DELIVRD"), (3, "DELIVRD"),
                              (4, "UNDELIVRD")]) + f"{B},,13900000005,DELIVRD|"),
         dlr=[dlr("+8613900000000", "DELIVRD", "delivered", f"{B},13900000000,DELIVRD"),
              dlr("+8613900000001", "DELIVRD", "delivered", f"{B},13900000001,DELIVRD"),
              dlr("+8613900000002", "DELIVRD", "delivered", f"{B},13900000002,DELIVRD"),
              dlr("+8613900000003", "DELIVRD", "delivered", f"{B},13900000003,DELIVRD"),
              dlr("+8613900000004", "UNDELIVRD", "undelivered", f"{B},13900000004,UNDELIVRD"),
              dlr("+8613900000005", "DELIVRD", "delivered", f"{B},,13900000005,DELIVRD")]),
    Case("doc 000 GetReport2 example verbatim (12-digit typo kept as digits, stray spaces)",
         "/push/topen",
         body=report(f"{B},13900000000,{T},DELIVRD|\n\n{B},139000000001, {T},DELIVRD|\n\n"
                     f"{B},139000000002, {T}, UNDELIVRD |"),
         dlr=[dlr("+8613900000000", "DELIVRD", "delivered", f"{B},13900000000,{T},DELIVRD",
                  reported_at=T_ISO),
              dlr("139000000001", "DELIVRD", "delivered", f"{B},139000000001, {T},DELIVRD",
                  reported_at=T_ISO),
              dlr("139000000002", "UNDELIVRD", "undelivered",
                  f"{B},139000000002, {T}, UNDELIVRD", reported_at=T_ISO)]),
    Case("doc 000 GetReport2 pushed under its own key", "/push/topen",
         body=report(f"{B},13900000000,{T},DELIVRD|", key="GetReport2"),
         dlr=[dlr("+8613900000000", "DELIVRD", "delivered", f"{B},13900000000,{T},DELIVRD",
                  reported_at=T_ISO)]),
    Case("doc 000 GetMo format: `|;| ` between replies, last one ending `|`", "/push/topen",
         body=reply(f"13900000000|,|好|,|{T}|;| 13900000001|,|不需要|,|2014-06-10 15:35:02|"),
         mo=[mo("+8613900000000", "好", f"13900000000|,|好|,|{T}"),
             mo("+8613900000001", "不需要", "13900000001|,|不需要|,|2014-06-10 15:35:02",
                sent_at="2014-06-10T15:35:02+08:00")]),
    Case("doc 000 GetMo2 format: service number, `|;` and a line break", "/push/topen",
         body=reply(f"13900000000|,|退订|,|{T}|,|10690447302152|;\n\n"
                    f"13900000001|,|TD|,|{T}|,|106904473021520001|;\n", key="GetMo2"),
         mo=[mo("+8613900000000", "退订", f"13900000000|,|退订|,|{T}|,|10690447302152",
                service_number="10690447302152"),
             mo("+8613900000001", "TD", f"13900000001|,|TD|,|{T}|,|106904473021520001",
                service_number="106904473021520001")]),
    # --- DESIGN.md §2 quirks: fields and separators ------------------------------------------
    Case("3- and 4-field reports mixed in one push", "/push/topen",
         body=report(f"{B},13900000000,DELIVRD|{B},13900000001,{T},UNDELIVRD|"),
         dlr=[dlr("+8613900000000", "DELIVRD", "delivered", f"{B},13900000000,DELIVRD"),
              dlr("+8613900000001", "UNDELIVRD", "undelivered", f"{B},13900000001,{T},UNDELIVRD",
                  reported_at=T_ISO)]),
    Case("reports ending `|;|`", "/push/topen",
         body=report(f"{B},13900000000,DELIVRD|;|{B},13900000001,DELIVRD|;|"),
         dlr=[dlr("+8613900000000", "DELIVRD", "delivered", f"{B},13900000000,DELIVRD"),
              dlr("+8613900000001", "DELIVRD", "delivered", f"{B},13900000001,DELIVRD")]),
    Case("stray spaces, tabs and CRLFs around fields and separators", "/push/topen",
         body=report(f"\r\n {B} , 13900000000 , DELIVRD \r\n|\r\n{B},\t13900000001,\n{T}\n,\n"
                     "UNDELIVRD\n|\n"),
         dlr=[dlr("+8613900000000", "DELIVRD", "delivered", f"{B} , 13900000000 , DELIVRD"),
              dlr("+8613900000001", "UNDELIVRD", "undelivered",
                  f"{B},\t13900000001,\n{T}\n,\nUNDELIVRD", reported_at=T_ISO)]),
    Case("stray spaces around keys, `=` and the account", "/push/topen",
         body=f"account = acc1 & GetReport = {B},13900000000,DELIVRD|".encode(),
         dlr=[dlr("+8613900000000", "DELIVRD", "delivered", f"{B},13900000000,DELIVRD")]),
    Case("keys in another case", "/push/topen",
         body=f"ACCOUNT=acc1&getreport={B},13900000000,DELIVRD|".encode(),
         dlr=[dlr("+8613900000000", "DELIVRD", "delivered", f"{B},13900000000,DELIVRD")]),
    Case("empty fields: no batch, empty time", "/push/topen",
         body=report(f",13900000000,DELIVRD|{B},13900000001,,DELIVRD|"),
         dlr=[dlr("+8613900000000", "DELIVRD", "delivered", ",13900000000,DELIVRD", batch=None),
              dlr("+8613900000001", "DELIVRD", "delivered", f"{B},13900000001,,DELIVRD")]),
    Case("times padded or not, with - or /", "/push/topen",
         body=report(f"{B},13900000000,2014/06/10 15:34:11,DELIVRD|"
                     f"{B},13900000001,2018/4/16 11:14:13,DELIVRD|"
                     f"{B},13900000002,2013-9-17 17:38:08,DELIVRD|"),
         dlr=[dlr("+8613900000000", "DELIVRD", "delivered",
                  f"{B},13900000000,2014/06/10 15:34:11,DELIVRD", reported_at=T_ISO),
              dlr("+8613900000001", "DELIVRD", "delivered",
                  f"{B},13900000001,2018/4/16 11:14:13,DELIVRD",
                  reported_at="2018-04-16T11:14:13+08:00"),
              dlr("+8613900000002", "DELIVRD", "delivered",
                  f"{B},13900000002,2013-9-17 17:38:08,DELIVRD",
                  reported_at="2013-09-17T17:38:08+08:00")]),
    Case("unparseable time: published without reported_at", "/push/topen",
         body=report(f"{B},13900000000,0000-00-00 00:00:00,DELIVRD|{B},13900000001,2014-02-30 10:00:00,DELIVRD|"),
         dlr=[dlr("+8613900000000", "DELIVRD", "delivered",
                  f"{B},13900000000,0000-00-00 00:00:00,DELIVRD"),
              dlr("+8613900000001", "DELIVRD", "delivered",
                  f"{B},13900000001,2014-02-30 10:00:00,DELIVRD")]),
    Case("MO with 4 fields in GetMo and 3 in GetMo2", "/push/topen",
         body=reply(f"13900000000|,|好|,|{T}|,|10690447302152|;|")
         + f"&GetMo2=13900000001|,|是|,|{T}|;|".encode(),
         mo=[mo("+8613900000000", "好", f"13900000000|,|好|,|{T}|,|10690447302152",
                service_number="10690447302152"),
             mo("+8613900000001", "是", f"13900000001|,|是|,|{T}")]),
    Case("MO with empty fields: no time, no service number", "/push/topen",
         body=reply(f"13900000000|,|好|,||;|13900000001|,|是|,|{T}|,||;|"),
         mo=[mo("+8613900000000", "好", "13900000000|,|好|,|", sent_at=None),
             mo("+8613900000001", "是", f"13900000001|,|是|,|{T}|,|")]),
    Case("MO with an empty text: published with text empty (a required field)", "/push/topen",
         body=reply(f"13900000000|,||,|{T}|;|"),
         mo=[mo("+8613900000000", "", f"13900000000|,||,|{T}")]),
    Case("MO with stray spaces and line breaks around separators", "/push/topen",
         body=reply(f" 13900000000 | , | 好 | , | 2018/4/16 11:14:13 | ; | \n"
                    f"13900000001|,|是|,|{T}|,| 10690447302152 |;|\n"),
         mo=[mo("+8613900000000", "好", "13900000000 | , | 好 | , | 2018/4/16 11:14:13",
                sent_at="2018-04-16T11:14:13+08:00"),
             mo("+8613900000001", "是", f"13900000001|,|是|,|{T}|,| 10690447302152",
                service_number="10690447302152")]),
    Case("MO with an unparseable time: published without sent_at", "/push/topen",
         body=reply("13900000000|,|好|,|0000-00-00 00:00:00|;|"),
         mo=[mo("+8613900000000", "好", "13900000000|,|好|,|0000-00-00 00:00:00",
                sent_at=None)]),
    Case("MO sent to the GetReport key is still told by its `|,|` separators", "/push/topen",
         body=report(f"13900000000|,|好|,|{T}|;|"),
         mo=[mo("+8613900000000", "好", f"13900000000|,|好|,|{T}")]),
    # --- status words and codes through the map ------------------------------------------------
    Case("status words and codes through the map, vendor_status kept trimmed", "/push/topen",
         body=report("".join(f"{B},139000000{n:02d},{w}|" for n, w in enumerate(
             ["DELIVRD", "UNDELIV", "EXPIRED", "REJECTD", "MK:0001", "DB:0141", "MC:0151",
              "ZZ:0042", " UNDELIVRD ", "delivrd", "DB:0142", "MI:0000", "MK:0115", "MB:1078",
              "Error:12"]))),
         dlr=[dlr(f"+86139000000{n:02d}", w.strip(), s, f"{B},139000000{n:02d},{w.rstrip()}")
              for n, (w, s) in enumerate([
                  ("DELIVRD", "delivered"), ("UNDELIV", "undelivered"), ("EXPIRED", "expired"),
                  ("REJECTD", "rejected"), ("MK:0001", "undelivered"), ("DB:0141", "blacklisted"),
                  ("MC:0151", "unknown"), ("ZZ:0042", "unknown"), (" UNDELIVRD ", "undelivered"),
                  ("delivrd", "delivered"), ("DB:0142", "rejected"), ("MI:0000", "expired"),
                  ("MK:0115", "rejected"), ("MB:1078", "failed"), ("Error:12", "failed")])]),
    # --- form encodings ------------------------------------------------------------------------
    Case("whole value percent-encoded, `+` for the space in the time", "/push/topen",
         body=f"account=acc1&GetReport={B}%2C13900000000%2C2014-06-10+15%3A34%3A11%2CDELIVRD%7C"
              f"{B}%2C13900000001%2CUNDELIVRD%7C".encode(),
         dlr=[dlr("+8613900000000", "DELIVRD", "delivered", f"{B},13900000000,{T},DELIVRD",
                  reported_at=T_ISO),
              dlr("+8613900000001", "UNDELIVRD", "undelivered", f"{B},13900000001,UNDELIVRD")]),
    Case("GetMo, 3 and 4 fields, UTF-8 text percent-encoded", "/push/topen",
         body=b"account=acc1&GetMo=13900000000|,|%E9%80%80%E8%AE%A2|,|2014-06-10 15:34:11|;|"
              b"13900000001|,|%E5%A5%BD|,|2013-9-17 17:38:08|,|10690447302152|;|",
         mo=[mo("+8613900000000", "退订", "13900000000|,|退订|,|2014-06-10 15:34:11"),
             mo("+8613900000001", "好", "13900000001|,|好|,|2013-9-17 17:38:08|,|10690447302152",
                sent_at="2013-09-17T17:38:08+08:00", service_number="10690447302152")]),
    Case("raw (unencoded) UTF-8 bytes in the body", "/push/topen",
         body=reply(f"13900000000|,|退订 谢谢，再见！|,|{T}|;|"),
         mo=[mo("+8613900000000", "退订 谢谢，再见！", f"13900000000|,|退订 谢谢，再见！|,|{T}")]),
    Case("`+` for spaces in a reply", "/push/topen",
         body=reply(f"13900000000|,|call+me+later|,|{T}|;|"),
         mo=[mo("+8613900000000", "call me later", f"13900000000|,|call me later|,|{T}")]),
    Case("unescaped `&` (and `=`) inside reply texts", "/push/topen",
         body=reply(f"13900000000|,|买1&送1|,|{T}|;|13900000001|,|Tom & Jerry&account x=1|,|{T}|;|"),
         mo=[mo("+8613900000000", "买1&送1", f"13900000000|,|买1&送1|,|{T}"),
             mo("+8613900000001", "Tom & Jerry&account x=1",
                f"13900000001|,|Tom & Jerry&account x=1|,|{T}")]),
    Case("invalid percent-escapes in a reply are kept", "/push/topen",
         body=reply(f"13900000000|,|100%|,|{T}|;|13900000001|,|%zz%E5%A5%BD|,|{T}|;|"),
         mo=[mo("+8613900000000", "100%", f"13900000000|,|100%|,|{T}"),
             mo("+8613900000001", "%zz好", f"13900000001|,|%zz好|,|{T}")]),
    Case("GB2312 raw bytes sent to this UTF-8 vendor (退订, 是, 好)", "/push/topen",
         body=_GB_REPLIES,
         mo=[mo("+8613900000000", "退订", f"13900000000|,|退订|,|{T}"),
             mo("+8613900000001", "是", "13900000001|,|是|,|2014-06-10 15:34:12",
                sent_at="2014-06-10T15:34:12+08:00"),
             mo("+8613900000002", "好", "13900000002|,|好|,|2014-06-10 15:34:13|,|10690447302152",
                sent_at="2014-06-10T15:34:13+08:00", service_number="10690447302152")]),
    Case("GB2312 percent-encoded sent to this UTF-8 vendor", "/push/topen",
         body=reply(f"13900000000|,|%CD%CB%B6%A9|,|{T}|;|"),
         mo=[mo("+8613900000000", "退订", f"13900000000|,|退订|,|{T}")]),
    Case("GB2312 bytes that are also valid UTF-8 (谢谢 = D0BB D0BB) sent to this UTF-8 vendor",
         "/push/topen", body=reply("13900000000|,|".encode() + "谢谢".encode(GB) + f"|,|{T}|;|".encode()),
         mo=[mo("+8613900000000", "谢谢", f"13900000000|,|谢谢|,|{T}")]),
    Case("GET with the query string instead of a POST body", "/push/topen", method="GET",
         query=report(f"{B},13900000000,2014-06-10%2015:34:11,DELIVRD|"), content_type=None,
         dlr=[dlr("+8613900000000", "DELIVRD", "delivered", f"{B},13900000000,{T},DELIVRD",
                  reported_at=T_ISO)]),
    Case("GET with a percent-encoded UTF-8 reply in the query", "/push/topen", method="GET",
         query=reply("13900000000|,|%E9%80%80%E8%AE%A2|,|2014-06-10+15:34:11|;|"),
         content_type=None, mo=[mo("+8613900000000", "退订", f"13900000000|,|退订|,|{T}")]),
    Case("POST as text/plain with a wrong charset", "/push/topen",
         content_type="text/plain; charset=gbk",
         body=report(f"{B},13900000000,DELIVRD|"),
         dlr=[dlr("+8613900000000", "DELIVRD", "delivered", f"{B},13900000000,DELIVRD")]),
    Case("POST with no content type at all", "/push/topen", content_type=None,
         body=report(f"{B},13900000000,DELIVRD|"),
         dlr=[dlr("+8613900000000", "DELIVRD", "delivered", f"{B},13900000000,DELIVRD")]),
    Case("a push naming no account", "/push/topen",
         body=f"GetReport={B},13900000000,DELIVRD|".encode(),
         dlr=[dlr("+8613900000000", "DELIVRD", "delivered", f"{B},13900000000,DELIVRD",
                  account=None)]),
    # --- mobiles ---------------------------------------------------------------------------------
    Case("mobiles with country prefixes; the doc's 12-digit typo kept as digits", "/push/topen",
         body=report(f"{B},8613900000000,DELIVRD|{B},%2B8613900000001,DELIVRD|"
                     f"{B},008613900000002,DELIVRD|{B},139000000001,DELIVRD|"
                     f"{B},+8613900000003,DELIVRD|"),
         dlr=[dlr("+8613900000000", "DELIVRD", "delivered", f"{B},8613900000000,DELIVRD"),
              dlr("+8613900000001", "DELIVRD", "delivered", f"{B},+8613900000001,DELIVRD"),
              dlr("+8613900000002", "DELIVRD", "delivered", f"{B},008613900000002,DELIVRD"),
              dlr("139000000001", "DELIVRD", "delivered", f"{B},139000000001,DELIVRD"),
              # An unescaped `+` is a space in a form: the number survives, `raw` shows the space.
              dlr("+8613900000003", "DELIVRD", "delivered", f"{B}, 8613900000003,DELIVRD")]),
    Case("a report with no usable mobile goes to dead-letter with its record", "/push/topen",
         body=report(f"{B},,DELIVRD|"),
         dead=[{"reason": "mobile", "record": f"{B},,DELIVRD", "body": report(f"{B},,DELIVRD|"),
                "method": "POST", "path": "/push/topen", "content_type": FORM}]),
    Case("a reply with no usable mobile goes to dead-letter with its record", "/push/topen",
         body=reply(f"abc|,|好|,|{T}|;|13900000000|,|是|,|{T}|;|"),
         mo=[mo("+8613900000000", "是", f"13900000000|,|是|,|{T}")],
         dead=[{"reason": "mobile", "record": f"abc|,|好|,|{T}",
                "body": reply(f"abc|,|好|,|{T}|;|13900000000|,|是|,|{T}|;|")}]),
    Case("a reply with 2 fields goes to dead-letter", "/push/topen",
         body=reply("13900000000|,|好|;|"),
         dead=[{"reason": "3 or 4 fields", "record": "13900000000|,|好"}]),
    Case("some bad records in a batch: good ones published, one dead letter per bad one",
         "/push/topen", body=_BAD_BATCH,
         dlr=[dlr("+8613900000000", "DELIVRD", "delivered", f"{B},13900000000,DELIVRD"),
              dlr("+8613900000003", "UNDELIVRD", "undelivered", f"{B},13900000003,{T},UNDELIVRD",
                  reported_at=T_ISO)],
         dead=[{"reason": "3 or 4 fields", "record": "garbage", "body": _BAD_BATCH},
               {"reason": "mobile", "record": f"{B},,DELIVRD", "body": _BAD_BATCH},
               {"reason": "status", "record": f"{B},13900000002,", "body": _BAD_BATCH},
               {"reason": "mobile", "record": f"{B},abc,DELIVRD", "body": _BAD_BATCH},
               {"reason": "3 or 4 fields", "record": f"{B},1,2,3,4,5,6", "body": _BAD_BATCH}]),
    Case("4-field reports: time before mobile, two mobiles, two times", "/push/topen",
         body=report(f"{B},{T},13900000000,DELIVRD|{B},13900000001,13900000002,DELIVRD|"
                     f"{B},{T},{T},DELIVRD|{B},,,DELIVRD|"),
         dlr=[dlr("+8613900000000", "DELIVRD", "delivered", f"{B},{T},13900000000,DELIVRD",
                  reported_at=T_ISO)],
         dead=[{"reason": "exactly one mobile", "record": f"{B},13900000001,13900000002,DELIVRD"},
               {"reason": "exactly one mobile", "record": f"{B},{T},{T},DELIVRD"},
               {"reason": "exactly one mobile", "record": f"{B},,,DELIVRD"}]),
    Case("Unicode spaces (NBSP, ideographic, NEL) around fields are stripped too", "/push/topen",
         body=report(f"{B},\u300013900000000\xa0,{T}\x85,DELIVRD|\u3000{B} ,13900000001,DELIVRD|"),
         dlr=[dlr("+8613900000000", "DELIVRD", "delivered",
                  f"{B},\u300013900000000\xa0,{T}\x85,DELIVRD", reported_at=T_ISO),
              dlr("+8613900000001", "DELIVRD", "delivered", f"{B} ,13900000001,DELIVRD")]),
    Case("an empty GetReport value: nothing published, 200 ok", "/push/topen",
         body=b"account=acc1&GetReport="),
    Case("a GetReport value of separators only: nothing published", "/push/topen",
         body=b"account=acc1&GetReport=|;|\r\n"),
    Case("an empty GetMo value: nothing published", "/push/topen", body=b"account=acc1&GetMo="),
    Case("a 500-record batch (sample file)", "/push/topen", body=sample("topen_report_500.txt"),
         dlr=_batch_500()),
    # --- duplicates ------------------------------------------------------------------------------
    Case("the same record twice in one batch: one entry", "/push/topen",
         body=report(f"{B},13900000000,DELIVRD|{B},13900000000,DELIVRD|"),
         dlr=[dlr("+8613900000000", "DELIVRD", "delivered", f"{B},13900000000,DELIVRD")]),
    Case("the same record with other spacing and mobile spelling in one batch: one entry",
         "/push/topen",
         body=report(f"{B},13900000000,{T},DELIVRD| {B} , 8613900000000 , 2014/6/10 15:34:11 , DELIVRD |"),
         dlr=[dlr("+8613900000000", "DELIVRD", "delivered", f"{B},13900000000,{T},DELIVRD",
                  reported_at=T_ISO)]),
    Pushes("the same record across two pushes: one entry", "/push/topen",
           before=[report(f"{B},13900000000,DELIVRD|")],
           body=report(f"{B},13900000000,DELIVRD|{B},13900000001,DELIVRD|"),
           dlr=[dlr("+8613900000000", "DELIVRD", "delivered", f"{B},13900000000,DELIVRD"),
                dlr("+8613900000001", "DELIVRD", "delivered", f"{B},13900000001,DELIVRD")]),
    Pushes("the same record across pushes, spaced differently: same id, one entry",
           "/push/topen", before=[report(f"{B},13900000000,{T},DELIVRD|")],
           body=report(f"\n {B} ,13900000000 , {T} ,DELIVRD |;|"),
           dlr=[dlr("+8613900000000", "DELIVRD", "delivered", f"{B},13900000000,{T},DELIVRD",
                    reported_at=T_ISO)]),
    Pushes("the same reply across two pushes: one entry", "/push/topen",
           before=[reply(f"13900000000|,|%E5%A5%BD|,|{T}|;|")],
           body=reply(f" 13900000000 |,| 好 |,| {T} |;|"),
           mo=[mo("+8613900000000", "好", f"13900000000|,|好|,|{T}")]),
    Pushes("a new status for the same message is a new record", "/push/topen",
           before=[report(f"{B},13900000000,UNDELIVRD|")],
           body=report(f"{B},13900000000,DELIVRD|"),
           dlr=[dlr("+8613900000000", "UNDELIVRD", "undelivered", f"{B},13900000000,UNDELIVRD"),
                dlr("+8613900000000", "DELIVRD", "delivered", f"{B},13900000000,DELIVRD")]),
    # --- settings that change decoding -------------------------------------------------------
    Case("RECEIVER_TOPEN_TIMEZONE=UTC: times are read as UTC", "/push/topen",
         env={"RECEIVER_TOPEN_TIMEZONE": "UTC"},
         body=report(f"{B},13900000000,{T},DELIVRD|"),
         dlr=[dlr("+8613900000000", "DELIVRD", "delivered", f"{B},13900000000,{T},DELIVRD",
                  reported_at="2014-06-10T15:34:11+00:00")]),
    Case("RECEIVER_TOPEN_TIMEZONE=UTC: reply times too", "/push/topen",
         env={"RECEIVER_TOPEN_TIMEZONE": "UTC"}, body=reply(f"13900000000|,|好|,|{T}|;|"),
         mo=[mo("+8613900000000", "好", f"13900000000|,|好|,|{T}",
                sent_at="2014-06-10T15:34:11+00:00")]),
    Case("RECEIVER_TOPEN_ACK_BODY changes the answer", "/push/topen",
         env={"RECEIVER_TOPEN_ACK_BODY": "success"}, response=b"success",
         body=report(f"{B},13900000000,DELIVRD|"),
         dlr=[dlr("+8613900000000", "DELIVRD", "delivered", f"{B},13900000000,DELIVRD")]),
    Case("RECEIVER_TOPEN_ACK_BODY is the answer to a dead-lettered push too", "/push/topen",
         env={"RECEIVER_TOPEN_ACK_BODY": "success"}, response=b"success",
         body=b"hello=world", dead=[{"reason": "no GetReport or GetMo"}]),
    Case("RECEIVER_TOPEN_ENCODING=gb18030: GB replies read as GB", "/push/topen",
         env={"RECEIVER_TOPEN_ENCODING": "gb18030"},
         body=reply("13900000000|,|".encode() + "谢谢".encode(GB) + f"|,|{T}|;|".encode()),
         mo=[mo("+8613900000000", "谢谢", f"13900000000|,|谢谢|,|{T}")]),
    Case("RECEIVER_TOPEN_ENCODING=gb18030: UTF-8 replies still read", "/push/topen",
         env={"RECEIVER_TOPEN_ENCODING": "gb18030"},
         body=reply(f"13900000001|,|退订|,|{T}|;|"),
         mo=[mo("+8613900000001", "退订", f"13900000001|,|退订|,|{T}")]),
    # --- whole pushes that cannot be decoded ---------------------------------------------------
    Case("no GetReport/GetMo: the push goes to dead-letter verbatim", "/push/topen",
         body=b"hello=world", dead=[{"reason": "no GetReport or GetMo", "body": b"hello=world",
                                     "method": "POST", "path": "/push/topen"}]),
    Case("an empty push goes to dead-letter", "/push/topen",
         dead=[{"reason": "empty push", "body": b"", "path": "/push/topen"}]),
]

# Voice-code reports are Winnerlook's (doc 001); Topen has none, so at /push/topen they are bad.
TOPEN_ONLY = [
    Case("voice-code 5-field records are bad records at /push/topen", "/push/topen",
         body=report(f"2314357620085030623,13900000000,0,30,2|{B},13900000001,DELIVRD|"),
         dlr=[dlr("+8613900000001", "DELIVRD", "delivered", f"{B},13900000001,DELIVRD")],
         dead=[{"reason": "3 or 4 fields", "record": "2314357620085030623,13900000000,0,30,2"}]),
]

def params(cases: list[Case]) -> list:
    """The cases as pytest params, named."""
    return [pytest.param(c, id=c.name) for c in cases]


def run(app_factory, r, case: Case) -> None:
    """run_case, after sending a `Pushes` case's earlier pushes."""
    if isinstance(case, Pushes):
        client = app_factory(**case.env).test_client()
        for body in case.before:
            answer = send(client, replace(case, body=body))
            assert (answer.status_code, answer.data) == (case.status, case.response), case.name
    run_case(app_factory, r, case)


CASES = SHARED + TOPEN_ONLY


@pytest.mark.parametrize("case", params(CASES))
def test_topen(app_factory, r, case):
    run(app_factory, r, case)


def test_same_record_twice_is_published_once(app_factory, r):
    body = f"account=acc1&GetReport={B},13900000000,DELIVRD|".encode()
    client = app_factory().test_client()
    assert client.post("/push/topen", data=body, content_type=FORM).data == b"ok"
    assert client.post("/push/topen", data=body, content_type=FORM).data == b"ok"
    assert r.xlen("sms:dlr") == 1
