"""聚合云 and the many platforms speaking its `<returnsms>` XML, vendor doc 004.

The XML arrives as the request body, or inside a form field (`msg=`); reports (`<statusbox>`)
and replies (`<callbox>`) may be mixed in one document::

    POST /push/returnsms  Content-Type: text/xml
    <?xml version="1.0" encoding="utf-8" ?>
    <returnsms>
      <statusbox><mobile>15023239810</mobile><taskid>1212</taskid><status>10</status>
        <receivetime>2011-12-02 22:12:11</receivetime><errorcode>DELIVRD</errorcode><extno>01</extno></statusbox>
      <callbox><mobile>15023239811</mobile><taskid>1212</taskid><content>你好，我不需要</content>
        <receivetime>2011-12-02 22:12:11</receivetime><extno>01</extno></callbox>
    </returnsms>

`<status>` 10 is success and 20 failure; `<errorcode>` is the upstream gateway's word, detail
only, and may contradict `status` (status-codes.md rule 1).
"""
from __future__ import annotations

import codecs
import functools
import re
import xml.etree.ElementTree as ElementTree
from xml.etree.ElementTree import Element, ParseError, tostring
from xml.sax.saxutils import escape  # & < > as ElementTree escapes character data

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from .. import normalize, status
from .base import Adapter, Decoded, Options, Push, Undecodable

_DECLARATION = re.compile(rb"^\s*<\?xml[^>]*\?>", re.I)
_DECLARED = re.compile(rb"""encoding\s*=\s*["']\s*([A-Za-z0-9._-]+)""", re.I)
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._-]+)", re.I)
_GB = {"gb2312", "gbk", "gb18030", "cp936", "hz"}
_BOM = b"\xef\xbb\xbf"
# XML keywords are case-sensitive (`<!doctype` is no DOCTYPE to expat); any case, to be sure.
_DOCTYPE = re.compile("<!doctype", re.I)
FORM_FIELDS = ("msg", "xml", "data", "content", "returnsms")


def decode(push: Push, options: Options, *, fast: bool = True) -> Decoded:
    """Decode a `<returnsms>` document of `<statusbox>` and `<callbox>` records (`fast=False`
    parses every document with defusedxml, as the tests' reference)."""
    document, account = _document(push, options)
    root = _parse(document, push.content_type, options, fast=fast)
    if _tag(root) != "returnsms":
        raise Undecodable(f"XML root is <{_tag(root)}>, expected <returnsms>")
    result = Decoded(account=account)
    for box in root:
        name = _tag(box)
        if name in ("statusbox", "callbox"):
            texts, raw = _box(box)
            _add(result, (_report if name == "statusbox" else _reply)(texts, options), raw)
        elif name == "errorstatus":
            result.bad.append((f"vendor sent an error status: {_text(box, 'error')} "
                               f"{_text(box, 'remark')}".strip(), _raw(box)))
    if not result.records and not result.bad:
        raise Undecodable("<returnsms> holds no <statusbox> or <callbox>")
    return result


def _document(push: Push, options: Options) -> tuple[bytes, str | None]:
    body = _strip(push.body)
    if body.startswith(b"<"):
        pairs = normalize.form(push.query)
        xml = body
    else:
        pairs = normalize.form(push.query) + normalize.form(push.body)
        found = {k.decode("latin-1").lower(): _strip(v) for k, v in pairs}
        xml = next((found[f] for f in FORM_FIELDS if found.get(f, b"").startswith(b"<")), None)
        if xml is None:
            xml = next((v for v in found.values() if v.startswith(b"<")), None)
        if xml is None:
            raise Undecodable("no XML in the body or in a form field")
    # Doc 004: `account` is the user account, `userid` the enterprise id (a fallback only).
    named = {k.lower(): normalize.text(v, options.encoding).strip() for k, v in pairs}
    return xml.strip(), named.get(b"account") or named.get(b"userid") or None


def _strip(value: bytes) -> bytes:
    return value.strip().removeprefix(_BOM).strip()


def _parse(document: bytes, content_type: str, options: Options, *, fast: bool = True
           ) -> Element:
    # Decode the bytes ourselves, not expat: it knows no GB2312, and real documents lie (GB
    # bytes declared utf-8 and the reverse, none declared). GB2312 bytes can be valid UTF-8
    # (要 = D2 AA reads as U+04AA), so when the declaration, the Content-Type charset or the
    # setting says GB, normalize.text's GB path decides; it still recognises real UTF-8.
    declaration = _DECLARATION.match(document)
    declared = _DECLARED.search(declaration.group(0)) if declaration else None
    charset = _CHARSET.search(content_type or "")
    encoding = _encoding(declared.group(1).decode("ascii") if declared else None,
                         charset.group(1) if charset else None, options.encoding)
    text = normalize.text(document[declaration.end():] if declaration else document, encoding)
    if fast and not _DOCTYPE.search(text):
        # defusedxml parses with ElementTree's pure-Python parser and tree builder: 7.4 us a
        # box of a 500-box document, against 3.0 for ElementTree's C parser. What defusedxml
        # guards against (entities declared to expand, external entities, DTDs fetched) all
        # needs a DOCTYPE: a document without one goes to the C parser. A document with one,
        # or one the C parser refuses, goes to defusedxml, which decides and words the error
        # as before (tests/test_properties.py compares the two paths).
        try:
            return ElementTree.fromstring(text)
        except (ParseError, ValueError):
            pass
    try:
        return fromstring(text, forbid_dtd=True)
    except DefusedXmlException as problem:
        raise Undecodable(f"XML refused: {type(problem).__name__}") from None
    except (ParseError, ValueError) as problem:
        raise Undecodable(f"XML does not parse: {problem}") from None


def _encoding(*names: str | None) -> str:
    """GB if any hint says so, else the first known hint (ASCII read as its superset UTF-8)."""
    known = []
    for name in names:
        try:
            known.append(codecs.lookup(name or "").name)
        except LookupError:
            continue
    if any(name.replace("-", "").replace("_", "") in _GB for name in known):
        return "gb18030"
    first = known[0] if known else "utf-8"
    return "utf-8" if first == "ascii" else first


def _tag(element: Element) -> str:
    return _name(element.tag)


@functools.lru_cache(maxsize=1024)  # a document names a few tags, each box all of them
def _name(tag: object) -> str:
    return str(tag).rsplit("}", 1)[-1].strip().lower()


def _text(box: Element, name: str) -> str:
    return _texts(box).get(name, "")


def _texts(box: Element) -> dict[str, str]:
    """A box's child elements by tag, each the text of the first child of that tag (one pass
    over the children, not one per field looked up)."""
    texts: dict[str, str] = {}
    for child in box:
        texts.setdefault(_name(child.tag), (child.text or "").strip())
    return texts


def _box(box: Element) -> tuple[dict[str, str], str]:
    """`(_texts(box), _raw(box))`, in one pass over the children when `_plain` writes the box
    (decoding a 500-box document: 99,900 instructions per box against 113,600 with the two
    passes, callgrind)."""
    texts: dict[str, str] = {}
    out: list[str] = []
    if _plain(box, out, texts):
        return texts, "".join(out).strip()
    return _texts(box), _raw(box)


def _raw(box: Element) -> str:
    """The box as XML text, without the text that follows it in the document: what
    ElementTree's tostring writes. Boxes are plain elements (no attributes, no namespaces),
    which `_plain` writes itself: tostring cost a third of decoding a 500-box document.
    Anything else goes through tostring (`_serialized`)."""
    out: list[str] = []
    if _plain(box, out, {}):
        return "".join(out).strip()
    # Both writers recurse: a box nesting thousands of elements (a few KB) would otherwise
    # raise RecursionError, a 500 for every retry of that push.
    if _deeper(box, _MAX_DEPTH):
        raise Undecodable(f"XML nested deeper than {_MAX_DEPTH} elements in a <{_tag(box)}>")
    return _serialized(box)


_MAX_DEPTH = 32  # levels of elements within a box; doc 004's boxes hold one (their fields)


def _deeper(element: Element, levels: int) -> bool:
    """Whether elements nest more than `levels` deep below `element` (level by level, no
    recursion)."""
    level = [element]
    for _ in range(levels + 1):
        level = [child for node in level for child in node]
        if not level:
            return False
    return True


def _plain(element: Element, out: list[str], texts: dict[str, str], depth: int = 0) -> bool:
    """Append what tostring writes for `element` (its tail aside) to `out`, and what `_texts`
    finds in it to `texts`; False, with both half written, for an element with attributes or
    a namespace, or with elements more than `_MAX_DEPTH` levels below the box."""
    tag = element.tag
    if element.attrib or not isinstance(tag, str) or "{" in tag \
            or depth >= _MAX_DEPTH and len(element):
        return False
    text = element.text
    if not text and not len(element):
        out.append(f"<{tag} />")
        return True
    out.append(f"<{tag}>{_escape(text)}" if text else f"<{tag}>")
    for child in element:
        if len(child):
            if not _plain(child, out, {}, depth + 1):
                return False
            texts.setdefault(_name(child.tag), (child.text or "").strip())
        else:  # a leaf, as most of a box's children are: written here, not by a call
            name, value = child.tag, child.text
            if child.attrib or not isinstance(name, str) or "{" in name:
                return False
            if value:
                out.append(f"<{name}>{_escape(value)}</{name}>")
            else:
                out.append(f"<{name} />")
            texts.setdefault(_name(name), value.strip() if value else "")
        if child.tail:
            out.append(_escape(child.tail))
    out.append(f"</{tag}>")
    return True


def _escape(text: str) -> str:
    """saxutils' `escape`, skipped for text with nothing to escape (most text)."""
    return escape(text) if "&" in text or "<" in text or ">" in text else text


def _serialized(box: Element) -> str:
    """The box through ElementTree's tostring, its tail left out."""
    tail, box.tail = box.tail, None
    try:
        return tostring(box, encoding="unicode").strip()
    finally:
        box.tail = tail


def _report(texts: dict[str, str], options: Options) -> dict:
    text = texts.get
    code, detail = text("status", ""), text("errorcode", "")
    return {"kind": "dlr", "mobile": text("mobile", ""), "batch_id": text("taskid", ""),
            "link_id": text("linkid", ""), "vendor_status": code or detail,
            "error_code": detail if code else None,
            "status": status.classify_returnsms(code, detail),
            "reported_at": normalize.local_time(text("receivetime", ""), options.zone),
            "ext_no": text("extno", "")}


def _reply(texts: dict[str, str], options: Options) -> dict:
    text = texts.get
    return {"kind": "mo", "mobile": text("mobile", ""), "batch_id": text("taskid", ""),
            "link_id": text("linkid", ""), "text": text("content", ""),
            "sent_at": normalize.local_time(text("receivetime", ""), options.zone),
            "ext_no": text("extno", "")}


def _add(result: Decoded, record: dict, raw: str) -> None:
    mobile = normalize.mobile(record["mobile"])
    if not mobile:
        result.bad.append((f"no usable mobile in {record['mobile']!r}", raw))
    elif record["kind"] == "dlr" and not record["vendor_status"]:
        result.bad.append(("report without a status or errorcode", raw))
    else:
        result.records.append({**record, "mobile": mobile, "raw": raw})


ADAPTER = Adapter(slug="returnsms", decode=decode, encoding="utf-8", doc="004")
