"""Field normalisers shared by every adapter: mobiles, vendor-local times, text bytes, forms.

All pure functions of their arguments; none raises on vendor input.
"""
from __future__ import annotations

import inspect
import re
from datetime import datetime, tzinfo
from functools import lru_cache, wraps
from typing import Any, Callable, TypeVar
from urllib.parse import unquote_to_bytes

import phonenumbers

# --- caching ---------------------------------------------------------------------------------

F = TypeVar("F", bound=Callable[..., Any])


def short_cache(maxsize: int, longest: int = 64) -> Callable[[F], F]:
    """lru_cache for calls whose first argument is a short string (or None). A vendor field can
    be as long as the body limit (1 MiB): a cache of thousands of entries keyed by whatever a
    sender puts there could be made to hold gigabytes, so a longer value is computed, not
    kept. `__wrapped__` is the uncached function, `cache_info` the cache's."""
    def wrap(function: F) -> F:
        cached = lru_cache(maxsize=maxsize)(function)
        # A wrapper of the function's own arity: packing and unpacking `*rest` took a third
        # of a cached call (~70 of ~220 ns), and these run a few times per record.
        arity = len(inspect.signature(function).parameters)
        if arity == 1:
            def call(value: str | None) -> Any:
                if value is not None and len(value) > longest:
                    return function(value)
                return cached(value)
        elif arity == 2:
            def call(value: str | None, other: Any) -> Any:  # type: ignore[misc]
                if value is not None and len(value) > longest:
                    return function(value, other)
                return cached(value, other)
        else:
            raise TypeError(f"short_cache takes a function of one or two arguments, "
                            f"{function.__name__} has {arity}")
        call = wraps(function)(call)
        call.cache_info = cached.cache_info  # type: ignore[attr-defined]
        call.cache_clear = cached.cache_clear  # type: ignore[attr-defined]
        return call  # type: ignore[return-value]
    return wrap


# --- mobiles ---------------------------------------------------------------------------------

# The common case, an 11-digit Chinese mobile with or without a country prefix, skips the
# (slow) general parser.
_CN_MOBILE = re.compile(r"(?:\+?86|0086)?(1[3-9]\d{9})")
_SEPARATORS = re.compile(r"[\s\-().]")


@short_cache(maxsize=65536)
def mobile(value: str | None) -> str | None:
    """E.164 for numbers whose country is known (default China), else the digits as sent.

    None when there is no usable number (empty, or anything but digits and a leading +).
    """
    if value and len(value) == 11 and value.isdigit() and value.isascii() \
            and value[0] == "1" and value[1] in "3456789":
        return "+86" + value  # what _parse_mobile finds, with no regex: the bulk of a cache miss
    return _parse_mobile(value)


def _parse_mobile(value: str | None) -> str | None:
    """`mobile` the general way: separators dropped, the Chinese-mobile regex, then the
    phonenumbers parser."""
    text = _SEPARATORS.sub("", value or "")
    fast = _CN_MOBILE.fullmatch(text)
    if fast:
        return "+86" + fast.group(1)
    digits = text[1:] if text.startswith("+") else text
    if not digits.isdigit() or not digits.isascii():
        return None
    international = text.startswith("+") or digits.startswith("00")
    candidate = "+" + digits[2:] if digits.startswith("00") else text
    try:
        number = phonenumbers.parse(candidate, None if international else "CN")
    except phonenumbers.NumberParseException:
        return text
    if phonenumbers.is_valid_number(number):
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return text


# --- times -----------------------------------------------------------------------------------

# `2014-06-10 15:34:11`, `2014/06/10 15:34:11`, `2018/4/16 11:14:13`, `2013-9-17 17:38:08`,
# also with a `T`, fractional seconds, no seconds, or CMPP's 14-digit `20140610153411`.
_TIME = re.compile(
    r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[ T]+(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.\d+)?)?)?"
)
_COMPACT = re.compile(r"((?:19|20)\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})")


def looks_like_time(value: str) -> bool:
    """True for a value shaped like a date/time (parseable or not, e.g. `0000-00-00 00:00:00`)."""
    if value.isdigit() and len(value) != 14:
        return False  # a mobile, the common case: no strip, no regex, no cache entry
    return _time_shaped(value.strip())


# The records of a push share a handful of times: the verdict on a short value is cached (a
# real time has ~20 characters; a long value is not worth holding on to).
@short_cache(maxsize=16384, longest=32)
def _time_shaped(text: str) -> bool:
    return bool(_TIME.fullmatch(text) or _COMPACT.fullmatch(text))


@short_cache(maxsize=16384)
def local_time(value: str | None, zone: tzinfo) -> str | None:
    """ISO 8601 with offset for a zone-less vendor time, or None when it is not a real time."""
    text = (value or "").strip()
    match = _TIME.fullmatch(text) or _COMPACT.fullmatch(text)
    if not match:
        return None
    parts = [int(p) if p else 0 for p in match.groups()]
    try:
        moment = datetime(*parts[:6], tzinfo=zone)
    except ValueError:  # 0000-00-00 00:00:00, 2014-02-30, 25:00 ...
        return None
    offset = moment.utcoffset()
    if offset is None or offset.seconds % 60:
        return None  # local mean time of a zone before ~1930: no SMS was ever sent then
    return moment.isoformat()


# --- bytes to text ---------------------------------------------------------------------------

_GB_FAMILY = {"gb2312", "gbk", "gb18030", "cp936", "hz"}
# Characters a real UTF-8 Chinese text consists of besides ASCII: CJK, fullwidth forms,
# punctuation, emoji. GB2312 bytes misread as UTF-8 give Latin/Greek/Cyrillic (U+0080-U+07FF) instead.
_MISREAD = re.compile(r"[\u0100-\u07ff]")
_CJKISH = re.compile(r"[\u2000-\u206f\u2600-\u27bf\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff"
                     r"\ufe00-\ufe0f\ufe30-\uffef\U0001f000-\U0001faff]")


def text(raw: bytes, encoding: str) -> str:
    """Decode a vendor's text, tolerating the other Chinese encoding than the one configured.

    GB2312 is decoded as gb18030 (its superset). A UTF-8 vendor that sends GB bytes is decoded as
    gb18030; a GB vendor that sends UTF-8 is recognised when the bytes are valid UTF-8 made only
    of CJK-range characters. Nothing raises: undecodable bytes become U+FFFD (and `raw` keeps
    the original).
    """
    if raw.isascii():
        return raw.decode("ascii")
    codec = "gb18030" if encoding.lower().replace("-", "").replace("_", "") in _GB_FAMILY else encoding
    if codec == "gb18030":
        try:
            utf8 = raw.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            non_ascii = [c for c in utf8 if ord(c) > 127]
            if all(_CJKISH.match(c) for c in non_ascii):
                return utf8
        return raw.decode("gb18030", errors="replace")
    try:
        decoded = raw.decode(codec)
    except UnicodeDecodeError:
        try:
            return raw.decode("gb18030")
        except UnicodeDecodeError:
            return raw.decode(codec, errors="replace")
    # GB2312 pairs with a lead byte C4-DF and a trail A1-BF are valid UTF-8 too (谢 = D0 BB reads
    # as Cyrillic 'л'): a reading with no CJK but letters past Latin-1 is GB, when it is GB2312.
    if _MISREAD.search(decoded) and not _CJKISH.search(decoded):
        try:
            gb = raw.decode("gb2312")
        except UnicodeDecodeError:
            return decoded
        if all(_CJKISH.match(c) for c in gb if ord(c) > 127):
            return gb
    return decoded


def form(raw: bytes, *, split: re.Pattern[bytes] | None = None) -> list[tuple[bytes, bytes]]:
    """Parse `application/x-www-form-urlencoded` bytes (or a query string) into raw byte pairs.

    Unlike Werkzeug, nothing is decoded as UTF-8: values stay bytes for the adapter to decode in
    the vendor's charset. Invalid percent-escapes are kept as they are. `split` overrides the
    pair separator (adapters whose values carry unescaped `&`). Keys are stripped of stray
    whitespace (doc 003's own example sends `& RevertTime=`).
    """
    pairs = []
    for chunk in (split.split(raw) if split else raw.split(b"&")):
        if not chunk.strip():
            continue
        key, _, value = chunk.partition(b"=")
        pairs.append((_unquote(key).strip(), _unquote(value)))
    return pairs


def _unquote(raw: bytes) -> bytes:
    # The bytes' values, not b"%" and b"+": `bytes in bytes` first tries its argument as an
    # integer and makes (and drops) a TypeError, ~2,100 instructions a test, 8 tests a push.
    return unquote_to_bytes(raw.replace(b"+", b" ")) if (_PERCENT in raw or _PLUS in raw) else raw


_PERCENT, _PLUS = ord("%"), ord("+")
