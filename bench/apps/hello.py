"""A bare WSGI app answering `ok`: the HTTP ceiling of the box under gunicorn."""
from __future__ import annotations

from typing import Callable, Iterable

_BODY = b"ok"
_HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(_BODY)))]


def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
    """Read the body (as any receiver must) and answer `ok`."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        environ["wsgi.input"].read(length)
    start_response("200 OK", _HEADERS)
    return [_BODY]
