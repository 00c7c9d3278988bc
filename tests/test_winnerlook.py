"""Winnerlook (vendor doc 001): Topen's format plus voice-code reports.

Every shared Topen case runs again at /push/winnerlook (settings renamed), then doc 001's own
examples and the voice-code reports `batch,mobile,call_seconds,ring_seconds,hangup|`.
"""
from __future__ import annotations

from dataclasses import replace

import pytest

from .helpers import Case
from .test_topen import SHARED, T_ISO, dlr, mo, params, reply, report, run


def at_winnerlook(case: Case) -> Case:
    """A Topen case retargeted: path, RECEIVER_TOPEN_* settings and dead letters' path."""
    return replace(
        case, path=case.path.replace("/push/topen", "/push/winnerlook"),
        env={k.replace("RECEIVER_TOPEN_", "RECEIVER_WINNERLOOK_"): v for k, v in case.env.items()},
        dead=[{k: (v.replace("/push/topen", "/push/winnerlook") if k == "path" else v)
               for k, v in letter.items()} for letter in case.dead],
        name=case.name.replace("TOPEN", "WINNERLOOK") + " [winnerlook]")


V = "2314357620085030623"
OWN = [
    # --- vendor doc 001, verbatim ------------------------------------------------------------
    Case("doc 001 push, full format", "/push/winnerlook",
         body=b"account=XXX&GetReport=2314364418256720085,18000000000,DELIVRD|",
         dlr=[dlr("+8618000000000", "DELIVRD", "delivered",
                  "2314364418256720085,18000000000,DELIVRD", batch="2314364418256720085",
                  account="XXX")]),
    Case("doc 001 GetReport example verbatim (a batch per record, blank lines)",
         "/push/winnerlook",
         body=report("\n\n".join(f"{b},1390000000{n},{w}|" for n, (b, w) in enumerate([
             ("2314357620085030624", "DELIVRD"), ("2314357620085030653", "DELIVRD"),
             ("2314357620085030623", "DELIVRD"), ("2314357620085030667", "DELIVRD"),
             ("2314357620085030665", "UNDELIVRD"), ("2314357620085030629", "DELIVRD")]))),
         dlr=[dlr(f"+861390000000{n}", w, s, f"{b},1390000000{n},{w}", batch=b)
              for n, (b, w, s) in enumerate([
                  ("2314357620085030624", "DELIVRD", "delivered"),
                  ("2314357620085030653", "DELIVRD", "delivered"),
                  ("2314357620085030623", "DELIVRD", "delivered"),
                  ("2314357620085030667", "DELIVRD", "delivered"),
                  ("2314357620085030665", "UNDELIVRD", "undelivered"),
                  ("2314357620085030629", "DELIVRD", "delivered")])]),
    Case("doc 001 GetReport2 example verbatim (yyyy/MM/dd times, stray spaces)",
         "/push/winnerlook",
         body=report("2314357620085030612,13900000000,2014/06/10 15:34:11,DELIVRD|\n\n"
                     "2314357620085030629,13900000001, 2014/06/10 15:34:11,DELIVRD|\n\n"
                     "2314357620085030620,13900000002, 2014/06/10 15:34:11, UNDELIVRD |"),
         dlr=[dlr("+8613900000000", "DELIVRD", "delivered",
                  "2314357620085030612,13900000000,2014/06/10 15:34:11,DELIVRD",
                  batch="2314357620085030612", reported_at=T_ISO),
              dlr("+8613900000001", "DELIVRD", "delivered",
                  "2314357620085030629,13900000001, 2014/06/10 15:34:11,DELIVRD",
                  batch="2314357620085030629", reported_at=T_ISO),
              dlr("+8613900000002", "UNDELIVRD", "undelivered",
                  "2314357620085030620,13900000002, 2014/06/10 15:34:11, UNDELIVRD",
                  batch="2314357620085030620", reported_at=T_ISO)]),
    Case("doc 001 GetMo2 format with yyyy/MM/dd times", "/push/winnerlook",
         body=reply("13900000000|,|退订|,|2014/06/10 15:34:11|,|10690447302152|;\n"
                    "13900000001|,|好|,|2014/6/10 9:05:00|,|10690447302152|;\n", key="GetMo2"),
         mo=[mo("+8613900000000", "退订", "13900000000|,|退订|,|2014/06/10 15:34:11|,|10690447302152",
                service_number="10690447302152"),
             mo("+8613900000001", "好", "13900000001|,|好|,|2014/6/10 9:05:00|,|10690447302152",
                sent_at="2014-06-10T09:05:00+08:00", service_number="10690447302152")]),
    # --- voice-code reports ------------------------------------------------------------------
    Case("doc 001 voice-code report: 0 s call, 30 s ringing, hangup 2 (timed out)",
         "/push/winnerlook", body=report(f"{V},13900000000,0,30,2|"),
         dlr=[dlr("+8613900000000", "2", "undelivered", f"{V},13900000000,0,30,2", batch=V,
                  call_seconds="0", ring_seconds="30", hangup="timeout")]),
    Case("voice-code reports: every hangup code 0-4, answered or not", "/push/winnerlook",
         body=report(f"{V},13900000000,25,5,0|{V},13900000001,0,45,1|{V},13900000002,0,60,2|"
                     f"{V},13900000003,12,3,3|{V},13900000004,8,4,4|"),
         dlr=[dlr("+8613900000000", "0", "delivered", f"{V},13900000000,25,5,0", batch=V,
                  call_seconds="25", ring_seconds="5", hangup="unknown"),
              dlr("+8613900000001", "1", "undelivered", f"{V},13900000001,0,45,1", batch=V,
                  call_seconds="0", ring_seconds="45", hangup="no_answer"),
              dlr("+8613900000002", "2", "undelivered", f"{V},13900000002,0,60,2", batch=V,
                  call_seconds="0", ring_seconds="60", hangup="timeout"),
              dlr("+8613900000003", "3", "delivered", f"{V},13900000003,12,3,3", batch=V,
                  call_seconds="12", ring_seconds="3", hangup="completed"),
              dlr("+8613900000004", "4", "delivered", f"{V},13900000004,8,4,4", batch=V,
                  call_seconds="8", ring_seconds="4", hangup="callee_hung_up")]),
    Case("voice-code and SMS reports mixed, with stray spaces and `|;|`", "/push/winnerlook",
         body=report(f" {V} , 13900000000 , 3 , 10 , 4 |;|{V},13900000001,2014/4/16 11:14:13,DELIVRD|;|"),
         dlr=[dlr("+8613900000000", "4", "delivered", f"{V} , 13900000000 , 3 , 10 , 4", batch=V,
                  call_seconds="3", ring_seconds="10", hangup="callee_hung_up"),
              dlr("+8613900000001", "DELIVRD", "delivered",
                  f"{V},13900000001,2014/4/16 11:14:13,DELIVRD", batch=V,
                  reported_at="2014-04-16T11:14:13+08:00")]),
    Case("voice-code report with an unknown hangup code goes to dead-letter",
         "/push/winnerlook", body=report(f"{V},13900000000,5,30,9|{V},13900000001,5,30,3|"),
         dlr=[dlr("+8613900000001", "3", "delivered", f"{V},13900000001,5,30,3", batch=V,
                  call_seconds="5", ring_seconds="30", hangup="completed")],
         dead=[{"reason": "hangup", "record": f"{V},13900000000,5,30,9",
                "path": "/push/winnerlook"}]),
    Case("a 5-field record that is not numeric is a bad record", "/push/winnerlook",
         body=report(f"{V},13900000000,0,30,x|"),
         dead=[{"reason": "3 or 4 fields", "record": f"{V},13900000000,0,30,x"}]),
    Case("voice-code report with no usable mobile goes to dead-letter", "/push/winnerlook",
         body=report(f"{V},,0,30,2|"),
         dead=[{"reason": "mobile", "record": f"{V},,0,30,2"}]),
    Case("the same voice-code report twice, spaced differently: one entry", "/push/winnerlook",
         body=report(f"{V},13900000000,0,30,2|{V} , 13900000000 , 0 , 30 , 2|"),
         dlr=[dlr("+8613900000000", "2", "undelivered", f"{V},13900000000,0,30,2", batch=V,
                  call_seconds="0", ring_seconds="30", hangup="timeout")]),
    Case("RECEIVER_WINNERLOOK_ACK_BODY; RECEIVER_TOPEN_ACK_BODY does not apply here",
         "/push/winnerlook", env={"RECEIVER_WINNERLOOK_ACK_BODY": "0",
                                  "RECEIVER_TOPEN_ACK_BODY": "topen"}, response=b"0",
         body=report(f"{V},13900000000,DELIVRD|"),
         dlr=[dlr("+8613900000000", "DELIVRD", "delivered", f"{V},13900000000,DELIVRD",
                  batch=V)]),
]

CASES = [at_winnerlook(c) for c in SHARED] + OWN


@pytest.mark.parametrize("case", params(CASES))
def test_winnerlook(app_factory, r, case):
    run(app_factory, r, case)
