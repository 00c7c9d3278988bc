"""Topen (vendor docs 000, 002): raw pushes -> HTTP answer -> stream entries."""
import pytest

from .helpers import Case, run_case

B = "0278387837488834"


def dlr(mobile, vendor_status, status, raw, batch=B, account="acc1", **extra):
    return {"kind": "dlr", "batch_id": batch, "mobile": mobile, "status": status,
            "vendor_status": vendor_status, "raw": raw, "account": account, **extra}


CASES = [
    Case("doc 000 GetReport example, 3 fields, with its batch,,mobile quirk", "/push/topen",
         body=("account=acc1&GetReport=" + "|".join([
             f"{B},13900000000,DELIVRD", f"{B},13900000004,UNDELIVRD",
             f"{B},,13900000005,DELIVRD"]) + "|").encode(),
         dlr=[dlr("+8613900000000", "DELIVRD", "delivered", f"{B},13900000000,DELIVRD"),
              dlr("+8613900000004", "UNDELIVRD", "undelivered", f"{B},13900000004,UNDELIVRD"),
              dlr("+8613900000005", "DELIVRD", "delivered", f"{B},,13900000005,DELIVRD")]),
    Case("doc 000 GetReport2 example, 4 fields with stray spaces", "/push/topen",
         body=(f"account=acc1&GetReport={B},13900000000,2014-06-10 15:34:11,DELIVRD|"
               f"{B},13900000002, 2014-06-10 15:34:11, UNDELIVRD |").encode(),
         dlr=[dlr("+8613900000000", "DELIVRD", "delivered",
                  f"{B},13900000000,2014-06-10 15:34:11,DELIVRD",
                  reported_at="2014-06-10T15:34:11+08:00"),
              dlr("+8613900000002", "UNDELIVRD", "undelivered",
                  f"{B},13900000002, 2014-06-10 15:34:11, UNDELIVRD",
                  reported_at="2014-06-10T15:34:11+08:00")]),
    Case("GetMo, 3 and 4 fields, UTF-8 text percent-encoded", "/push/topen",
         body=b"account=acc1&GetMo=13900000000|,|%E9%80%80%E8%AE%A2|,|2014-06-10 15:34:11|;|"
              b"13900000001|,|%E5%A5%BD|,|2013-9-17 17:38:08|,|10690447302152|;|",
         mo=[{"kind": "mo", "mobile": "+8613900000000", "text": "退订", "account": "acc1",
              "sent_at": "2014-06-10T15:34:11+08:00",
              "raw": "13900000000|,|退订|,|2014-06-10 15:34:11"},
             {"kind": "mo", "mobile": "+8613900000001", "text": "好", "account": "acc1",
              "sent_at": "2013-09-17T17:38:08+08:00", "service_number": "10690447302152",
              "raw": "13900000001|,|好|,|2013-9-17 17:38:08|,|10690447302152"}]),
    Case("a bad record in a good batch goes to dead-letter alone", "/push/topen",
         body=f"account=acc1&GetReport={B},13900000000,DELIVRD|garbage|".encode(),
         dlr=[dlr("+8613900000000", "DELIVRD", "delivered", f"{B},13900000000,DELIVRD")],
         dead=[{"reason": "3 or 4 fields", "record": "garbage",
                "body": f"account=acc1&GetReport={B},13900000000,DELIVRD|garbage|".encode()}]),
    Case("no GetReport/GetMo: the push goes to dead-letter verbatim", "/push/topen",
         body=b"hello=world", dead=[{"reason": "no GetReport or GetMo", "body": b"hello=world",
                                     "method": "POST", "path": "/push/topen"}]),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_topen(app_factory, r, case):
    run_case(app_factory, r, case)


def test_same_record_twice_is_published_once(app_factory, r):
    body = f"account=acc1&GetReport={B},13900000000,DELIVRD|".encode()
    client = app_factory().test_client()
    assert client.post("/push/topen", data=body, content_type="application/x-www-form-urlencoded").data == b"ok"
    assert client.post("/push/topen", data=body, content_type="application/x-www-form-urlencoded").data == b"ok"
    assert r.xlen("sms:dlr") == 1
