"""Let vendors' non-conforming request lines through gunicorn.

Real pushes put raw GB2312 bytes (doc 003) and literal spaces (doc 003's own example:
`& RevertTime=0000-00-00 00:00:00`) in the URL. gunicorn (>= 22) answers such a request line
400 before the app sees it, and the push is lost: smsadmin never resends. This shim
percent-encodes exactly those bytes in the request target before gunicorn validates the line;
the query then decodes to the bytes the vendor sent. Conforming request lines are untouched,
and everything else gunicorn checks still applies.

gunicorn >= 25 parses with a C extension instead when `gunicorn_h1c` is installed (what
`pip install gunicorn[fast]` adds), and that parser never calls `parse_request_line`: the repair
would not run and such pushes would be answered 400 again. So the receiver keeps gunicorn on
its Python parser: `http_parser = "python"` in receiver/gunicorn_conf.py, and, for a gunicorn
started without that file, `install()` turns the fast parser's check off in the process too.
"""
from __future__ import annotations

import re

_VERSION = re.compile(rb"HTTP/\d\.\d")
_UNSAFE = re.compile(rb"[^\x21-\x7e]")


def repair(line: bytes) -> bytes:
    """The request line with the target's spaces, controls and non-ASCII bytes %-encoded."""
    method, _, rest = line.partition(b" ")
    target, _, version = rest.rpartition(b" ")
    if not target or not _VERSION.fullmatch(version) or not _UNSAFE.search(target):
        return line
    target = _UNSAFE.sub(lambda m: b"%%%02X" % m.group()[0], target)
    return b" ".join((method, target, version))


def install() -> None:
    """Patch gunicorn's request-line parser, once, in the process that serves requests."""
    try:
        from gunicorn.http import message
    except ImportError:  # not served by gunicorn
        return
    original = message.Request.parse_request_line
    if getattr(original, "receiver_tolerant", False):
        return

    def parse_request_line(self, line_bytes: bytes):
        return original(self, repair(line_bytes))

    parse_request_line.receiver_tolerant = True
    message.Request.parse_request_line = parse_request_line
    # gunicorn >= 25 asks this per request whether to use gunicorn_h1c's parser (see above).
    if hasattr(message, "_check_fast_parser"):
        message._check_fast_parser = _python_parser_only


def _python_parser_only(cfg: object) -> bool:
    """gunicorn's fast-parser check, always no: only the Python parser repairs the line."""
    return False
