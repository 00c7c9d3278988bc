"""The normalisers: mobiles, vendor-local times, text bytes, raw forms."""
from __future__ import annotations

import re
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings, strategies as st

from receiver import normalize

SHANGHAI = ZoneInfo("Asia/Shanghai")
UTC = ZoneInfo("UTC")


@pytest.mark.parametrize("value, expected", [
    ("13900000000", "+8613900000000"),
    ("8613900000000", "+8613900000000"),
    ("+8613900000000", "+8613900000000"),
    ("008613900000000", "+8613900000000"),
    (" 13900000000 ", "+8613900000000"),
    ("+86 139 0000 0000", "+8613900000000"),
    ("139-0000-0000", "+8613900000000"),
    ("(139) 0000.0000", "+8613900000000"),
    ("19912345678", "+8619912345678"),
    ("139000000001", "139000000001"),        # doc 000's 12-digit typo: digits as sent
    ("10690447302152", "10690447302152"),    # a service number: digits as sent
    ("12345", "12345"),
    ("+16502530000", "+16502530000"),        # other countries, when the + says which
    ("0016502530000", "+16502530000"),
    ("+44 7911 123456", "+447911123456"),
    ("02112345678", "+862112345678"),        # a Shanghai landline
    ("", None), (None, None), ("   ", None), ("+", None), ("abc", None), ("139abc00000", None),
    ("１３９００００００００", None),           # fullwidth digits are not ASCII digits
])
def test_mobile(value: str | None, expected: str | None) -> None:
    assert normalize.mobile(value) == expected


@settings(max_examples=500, deadline=None)
@given(value=st.one_of(st.from_regex(r"\A1[0-9]{10}\Z"), st.from_regex(r"\A[0-9]{11}\Z"),
                       st.text("0123456789١٣９+ -", min_size=10, max_size=13)))
def test_mobile_fast_path_is_the_regex(value: str) -> None:
    # Uncached, so each example takes the path it would on a cache miss; the general path
    # (separators, the regex, phonenumbers) is what the shortcut must agree with.
    assert normalize.mobile.__wrapped__(value) == normalize._parse_mobile(value)


@pytest.mark.parametrize("value, expected", [
    ("2014-06-10 15:34:11", "2014-06-10T15:34:11+08:00"),
    ("2014/06/10 15:34:11", "2014-06-10T15:34:11+08:00"),
    ("2018/4/16 11:14:13", "2018-04-16T11:14:13+08:00"),
    ("2013-9-17 17:38:08", "2013-09-17T17:38:08+08:00"),
    ("2013-9-7 7:08:08", "2013-09-07T07:08:08+08:00"),
    (" 2014-06-10  15:34:11 \n", "2014-06-10T15:34:11+08:00"),
    ("2014-06-10T15:34:11", "2014-06-10T15:34:11+08:00"),
    ("2014-06-10 15:34:11.123", "2014-06-10T15:34:11+08:00"),
    ("2014-06-10 15:34", "2014-06-10T15:34:00+08:00"),
    ("2014-06-10", "2014-06-10T00:00:00+08:00"),
    ("2014.06.10 15:34:11", "2014-06-10T15:34:11+08:00"),
    ("20140610153411", "2014-06-10T15:34:11+08:00"),
    ("0000-00-00 00:00:00", None), ("2014-02-30 10:00:00", None), ("2014-06-10 25:00:00", None),
    ("2014-13-01 10:00:00", None), ("", None), (None, None), ("yesterday", None),
    ("13900000000", None), ("2014-06-10 15:34:11 +0800x", None),
])
def test_local_time(value: str | None, expected: str | None) -> None:
    assert normalize.local_time(value, SHANGHAI) == expected


def test_local_time_in_another_zone() -> None:
    assert normalize.local_time("2014-06-10 15:34:11", UTC) == "2014-06-10T15:34:11+00:00"
    assert (normalize.local_time("2014-01-10 15:34:11", ZoneInfo("Europe/Berlin"))
            == "2014-01-10T15:34:11+01:00")
    assert (normalize.local_time("2014-07-10 15:34:11", ZoneInfo("Europe/Berlin"))
            == "2014-07-10T15:34:11+02:00")


@pytest.mark.parametrize("value, expected", [
    ("2014-06-10 15:34:11", True), ("2018/4/16 11:14:13", True), (" 2013-9-17 17:38:08 ", True),
    ("0000-00-00 00:00:00", True),   # shaped like a time though not a real one
    ("20140610153411", True), ("2014-06-10", True),
    ("13900000000", False), ("139000000001", False), ("8613900000000", False),
    ("0278387837488834", False), ("2314357620085030623", False), ("DELIVRD", False),
    ("", False), ("2014-06-10 15", False),
    (" 13900000000 ", False), ("+8613900000000", False), (" 20140610153411\n", True),
    ("٢٠١٤-٠٦-١٠", True),   # the regex's \d: any decimal digit, as before the digit shortcut
])
def test_looks_like_time(value: str, expected: bool) -> None:
    assert normalize.looks_like_time(value) is expected


@pytest.mark.parametrize("word", [
    "是", "好", "退订", "TD", "嗯", "收到", "不需要", "谢谢你", "请勿打扰", "退订，谢谢！",
    "谢谢", "谢",  # D0BB: GB2312 bytes that are valid UTF-8 too (Cyrillic 'л')
])
def test_text_gb_bytes_to_a_utf8_vendor(word: str) -> None:
    assert normalize.text(word.encode("gb2312"), "utf-8") == word


@pytest.mark.parametrize("encoding", ["gb2312", "GB2312", "gbk", "gb18030", "GB-2312", "cp936"])
@pytest.mark.parametrize("word", ["是", "好", "退订", "谢", "谢谢", "嗯", "不需要", "请勿打扰",
                                  "退订，谢谢！", "回复TD退订", "鎔"])
def test_text_gb_vendor(word: str, encoding: str) -> None:
    """A GB vendor's own bytes, short one-character replies included, and UTF-8 sent to it."""
    assert normalize.text(word.encode("gb18030"), encoding) == word
    assert normalize.text(word.encode("utf-8"), encoding) == word


@pytest.mark.parametrize("word", ["是", "好", "退订", "谢谢", "退订，谢谢！", "café", "Ünïcödé",
                                  "привет", "emoji 👍"])
def test_text_utf8_vendor(word: str) -> None:
    assert normalize.text(word.encode("utf-8"), "utf-8") == word


def test_text_ascii_and_undecodable() -> None:
    assert normalize.text(b"TD", "utf-8") == "TD"
    assert normalize.text(b"TD", "gb2312") == "TD"
    assert normalize.text(b"", "gb2312") == ""
    # Never raises: bytes valid in neither encoding become U+FFFD.
    assert "\ufffd" in normalize.text(b"\xff\xfe\x80", "gb2312")
    assert "\ufffd" in normalize.text(b"\xff\xfe\x80", "utf-8")


@pytest.mark.parametrize("raw, expected", [
    (b"a=1&b=2", [(b"a", b"1"), (b"b", b"2")]),
    (b"a=x+y&b=%2B1", [(b"a", b"x y"), (b"b", b"+1")]),
    (b"m=%E9%80%80%E8%AE%A2", [(b"m", "退订".encode())]),
    (b"m=%CD%CB%B6%A9", [(b"m", "退订".encode("gb2312"))]),   # bytes stay bytes, not UTF-8
    ("m=退订".encode("gb2312"), [(b"m", "退订".encode("gb2312"))]),
    (b"m=100%&n=%zz%4&o=%E9%80", [(b"m", b"100%"), (b"n", b"%zz%4"), (b"o", b"\xe9\x80")]),
    (b"Class=mo& RevertTime=2014&\tMobile =139", [(b"Class", b"mo"), (b"RevertTime", b"2014"),
                                                  (b"Mobile", b"139")]),
    (b"a=1&&b=2&", [(b"a", b"1"), (b"b", b"2")]),
    (b"flag&a=", [(b"flag", b""), (b"a", b"")]),
    (b"a=b=c", [(b"a", b"b=c")]),
    (b"%61ccount=x", [(b"account", b"x")]),
    (b"", []),
])
def test_form(raw: bytes, expected: list[tuple[bytes, bytes]]) -> None:
    assert normalize.form(raw) == expected


def test_form_with_a_custom_split() -> None:
    """Adapters whose values carry unescaped `&` split only before a key they know."""
    split = re.compile(rb"&(?=\s*(?:account|GetMo)\s*=)")
    assert normalize.form(b"account=a&GetMo=1|,|A&B=c|,|t|;|", split=split) == [
        (b"account", b"a"), (b"GetMo", b"1|,|A&B=c|,|t|;|")]


@pytest.mark.parametrize("name", ["mobile", "local_time", "classify"])
def test_long_values_are_computed_but_not_cached(name: str) -> None:
    """A field can be as long as the body: the caches keep only short values, so a sender
    cannot make a worker hold thousands of megabyte keys."""
    from receiver import status
    function = getattr(status if name == "classify" else normalize, name)
    extra = (ZoneInfo("Asia/Shanghai"),) if name == "local_time" else ()
    function.cache_clear()
    long_value = "1" * 65 + "x"
    assert function(long_value, *extra) == function.__wrapped__(long_value, *extra)
    assert function.cache_info().currsize == 0
    function("13900000000", *extra)
    assert function.cache_info().currsize == 1
