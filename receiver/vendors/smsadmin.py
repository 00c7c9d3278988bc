"""通用短信平台 (smsadmin.cn), vendor doc 003 (v1.0.5): one record per push, GB2312.

The document says POST but shows the parameters in the URL; real pushes do both, as a query
string or a form body, percent-encoded GB2312 or raw GB2312 bytes::

    GET /push/smsadmin?Class=rpt&SmsName=ID&Mobile=13800000000&LinkId=123456789&Report=DELIVRD&ReportTime=2017-09-28%2010:00:00

    POST /push/smsadmin  Content-Type: application/x-www-form-urlencoded
    Class=mo&SmsName=ID&Mobile=13802102102&Message=%CD%CB%B6%A9&LinkId=123456789& RevertTime=0000-00-00 00:00:00
"""
from __future__ import annotations

from .. import normalize, status
from .base import Adapter, Decoded, Options, Push, Undecodable


def decode(push: Push, options: Options) -> Decoded:
    """Decode one `Class=rpt` (report) or `Class=mo` (reply) push."""
    fields: dict[str, str] = {}
    pairs: list[str] = []
    # Query first, body second: a value in the body wins. Keys are matched case-insensitively.
    for key, value in normalize.form(push.query) + normalize.form(push.body):
        name, text = key.decode("latin-1"), normalize.text(value, options.encoding)
        fields[name.lower()] = text
        pairs.append(f"{name}={text}")
    kind = fields.get("class", "").strip().lower()
    if kind not in ("rpt", "mo"):
        raise Undecodable(f"Class is {fields.get('class')!r}, expected 'rpt' or 'mo'"
                          if "class" in fields else "no Class field in the push")
    raw = "&".join(pairs)
    result = Decoded(account=fields.get("smsname", "").strip() or None)
    mobile = normalize.mobile(fields.get("mobile"))
    if not mobile:
        result.bad.append((f"no usable mobile in {fields.get('mobile', '')!r}", raw))
        return result
    common = {"account": result.account, "mobile": mobile,
              "link_id": fields.get("linkid", "").strip(), "raw": raw}
    if kind == "rpt":
        code = fields.get("report", "").strip()
        if not code:
            result.bad.append(("report without a Report status", raw))
            return result
        result.records.append({"kind": "dlr", **common, "vendor_status": code,
                               "status": status.classify(code),
                               "reported_at": normalize.local_time(fields.get("reporttime"),
                                                                   options.zone)})
    else:
        result.records.append({"kind": "mo", **common, "text": fields.get("message", ""),
                               "sent_at": normalize.local_time(fields.get("reverttime"),
                                                               options.zone)})
    return result


ADAPTER = Adapter(slug="smsadmin", decode=decode, encoding="gb2312", doc="003")
