"""Request bodies for the benchmark, as templates that a load generator makes unique per request.

A template is a list of byte parts; the body of one request is `prefix.join(parts)`, where the
prefix is unique per request (the wrk script does the same join with `table.concat`). The prefix
lands in every record's batch id / LinkId / taskid, so no record of one push is a duplicate of a
record of another push: the receiver's dedupe would otherwise skip every record after the first
pass and flatter the numbers. Duplicates *within* a push are deliberate (the realistic mix).

Each payload also says how many stream entries a push must produce, for the receiver and for the
naive handler, so the harness can check the stream lengths against the completed requests.
"""
from __future__ import annotations

from dataclasses import dataclass

# Stands where the per-request prefix goes; never occurs in a body otherwise.
MARK = b"\x00"
FORM = "application/x-www-form-urlencoded"
XML = "text/xml; charset=utf-8"

_STATUSES = ("DELIVRD", "DELIVRD", "DELIVRD", "UNDELIVRD", "EXPIRED", "DELIVRD", "MK:0001",
             "REJECTD", "DELIVRD", "DB:0141")


@dataclass(frozen=True)
class Payload:
    """Body templates for one scenario, sent round-robin."""

    path: str
    content_type: str
    templates: tuple[tuple[bytes, ...], ...]
    records: int            # records in one push, as the vendor counts them
    receiver_entries: int   # entries the receiver must add per push (duplicates skipped)
    naive_entries: int      # entries the naive handler adds per push (one per record)

    def body(self, prefix: bytes, index: int = 0) -> bytes:
        """The body of one request with its unique prefix."""
        return prefix.join(self.templates[index % len(self.templates)])


def _mix(n: int) -> tuple[list[bytes], int]:
    """`n` topen report records: 3- and 4-field, ~2% in-push duplicates, ~1% bad records.

    Returns the records and how many of them are duplicates (the receiver skips those; bad
    records become dead letters, which are entries too).
    """
    records: list[bytes] = []
    duplicates = 0
    for i in range(n):
        if n >= 50 and i % 50 == 49:
            records.append(records[i - 7])  # the vendor resends a record in the same push
            duplicates += 1
            continue
        if n >= 100 and i % 100 == 98:
            records.append(MARK + b"%d,not-a-mobile,DELIVRD" % i if i % 200 == 98
                           else MARK + b"%d,139%08d" % (i, i))  # no usable mobile / 2 fields
            continue
        status = _STATUSES[i % len(_STATUSES)].encode()
        if i % 5 in (1, 3):
            records.append(MARK + b"%d,139%08d,2024-05-01 12:%02d:%02d,%s"
                           % (i, i, i // 60 % 60, i % 60, status))
        else:
            records.append(MARK + b"%d,139%08d,%s" % (i, i, status))
    return records, duplicates


def topen(n: int = 1) -> Payload:
    """A topen (云信) GetReport push of `n` reports, as the vendor sends it (raw `|`, `,`)."""
    if n == 1:
        records, duplicates = [MARK + b"0,13900000000,DELIVRD"], 0
    else:
        records, duplicates = _mix(n)
    body = b"account=bench&GetReport=" + b"|".join(records) + b"|"
    return Payload("/push/topen", FORM, (tuple(body.split(MARK)),), n, n - duplicates, n)


def topen_bad(n: int) -> Payload:
    """A topen push of `n` reports none of which has a usable mobile: `n` dead letters, each
    holding the whole body (a vendor that changed its format)."""
    records = [MARK + b"%d,not-a-mobile,DELIVRD" % i for i in range(n)]
    body = b"account=bench&GetReport=" + b"|".join(records) + b"|"
    return Payload("/push/topen", FORM, (tuple(body.split(MARK)),), n, n, n)


def smsadmin() -> Payload:
    """smsadmin (doc 003) pushes: one record each, a report and a GB2312 reply in turn."""
    report = (b"Class=rpt&SmsName=bench&Mobile=13800000000&LinkId=" + MARK +
              b"1&Report=DELIVRD&ReportTime=2017-09-28%2010:00:00")
    # 退订 ("unsubscribe") percent-encoded GB2312, as in the document's own example.
    text = "退订".encode("gb2312")
    reply = (b"Class=mo&SmsName=bench&Mobile=13802102102&Message=" +
             b"".join(b"%%%02X" % c for c in text) + b"&LinkId=" + MARK +
             b"2& RevertTime=2017-09-28 10:00:00")
    return Payload("/push/smsadmin", FORM, (tuple(report.split(MARK)), tuple(reply.split(MARK))),
                   1, 1, 1)


def returnsms(n: int = 1) -> Payload:
    """A `<returnsms>` document of `n` boxes: mostly reports, ~5% replies, ~2% duplicates,
    ~1% bad (no mobile) when `n` is large enough."""
    boxes: list[bytes] = []
    duplicates = 0
    for i in range(n):
        if n >= 50 and i % 50 == 49:
            boxes.append(boxes[i - 7])
            duplicates += 1
        elif n >= 100 and i % 100 == 98:
            boxes.append(b"<statusbox><mobile></mobile><taskid>" + MARK + b"%d</taskid>"
                         b"<status>10</status><receivetime>2024-05-01 12:00:00</receivetime>"
                         b"<errorcode>DELIVRD</errorcode><extno>01</extno></statusbox>" % i)
        elif n >= 20 and i % 20 == 10:
            boxes.append(b"<callbox><mobile>139%08d</mobile><taskid>" % i + MARK +
                         b"%d</taskid><content>%s</content><receivetime>2024-05-01 12:00:%02d"
                         b"</receivetime><extno>01</extno></callbox>"
                         % (i, "好的，谢谢".encode(), i % 60))
        else:
            ok = i % 10 != 3
            boxes.append(b"<statusbox><mobile>139%08d</mobile><taskid>" % i + MARK +
                         b"%d</taskid><status>%s</status><receivetime>2024-05-01 12:%02d:%02d"
                         b"</receivetime><errorcode>%s</errorcode><extno>01</extno></statusbox>"
                         % (i, b"10" if ok else b"20", i // 60 % 60, i % 60,
                            b"DELIVRD" if ok else b"UNDELIV"))
    body = (b'<?xml version="1.0" encoding="utf-8" ?>\n<returnsms>\n' + b"\n".join(boxes) +
            b"\n</returnsms>\n")
    return Payload("/push/returnsms", XML, (tuple(body.split(MARK)),), n, n - duplicates, n)
