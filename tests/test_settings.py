"""Settings (DESIGN.md §4): defaults, one clear message per bad value, durations, the env file
named by RECEIVER_CONFIG, and `receiver serve` refusing to start on a bad value."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import timedelta
from ipaddress import ip_network
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from receiver import settings
from receiver.settings import SettingsError
from receiver.vendors import REGISTRY


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    """No RECEIVER_* from the outside; cwd in an empty directory (no embedded Redis socket)."""
    for name in list(os.environ):
        if name.startswith("RECEIVER_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def error_of(monkeypatch, **env: str) -> str:
    """The SettingsError message load() gives with these variables set."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as raised:
        settings.load()
    return str(raised.value)


def test_defaults():
    s = settings.load()
    assert s.redis_url == "redis://127.0.0.1:6379/0"
    assert s.redis_cluster is False
    assert s.stream_prefix == "sms"
    assert s.dedupe_ttl == 48 * 3600
    assert s.retention == 7 * 24 * 3600
    assert s.max_body == 1024 * 1024
    assert s.proxy_count == 0
    assert set(s.vendors) == set(REGISTRY)
    for slug, vendor in s.vendors.items():
        assert vendor.token == ""
        assert vendor.allowed_ips == ()
        assert vendor.accounts == frozenset()
        assert vendor.ack_body == "ok"
        assert vendor.zone == ZoneInfo("Asia/Shanghai")
        assert vendor.encoding == REGISTRY[slug].encoding
    # doc 003 pushes GB2312; the others UTF-8.
    assert s.vendors["smsadmin"].encoding == "gb2312"
    assert s.vendors["topen"].encoding == "utf-8"


def test_per_vendor_values_apply(monkeypatch):
    monkeypatch.setenv("RECEIVER_TOPEN_TOKEN", "s3cret")
    monkeypatch.setenv("RECEIVER_TOPEN_ALLOWED_IPS", "10.0.0.0/8, 2001:db8::/32")
    monkeypatch.setenv("RECEIVER_TOPEN_ACCOUNTS", " acc1 , acc2,")
    monkeypatch.setenv("RECEIVER_TOPEN_ACK_BODY", "SUCCESS")
    monkeypatch.setenv("RECEIVER_TOPEN_ENCODING", "GBK")
    monkeypatch.setenv("RECEIVER_TOPEN_TIMEZONE", "UTC")
    topen = settings.load().vendors["topen"]
    assert topen.token == "s3cret"
    assert topen.allowed_ips == (ip_network("10.0.0.0/8"), ip_network("2001:db8::/32"))
    assert topen.accounts == frozenset({"acc1", "acc2"})
    assert topen.ack_body == "SUCCESS"
    assert topen.encoding == "gbk"
    assert topen.zone == ZoneInfo("UTC")
    # Other vendors keep their defaults.
    assert settings.load().vendors["winnerlook"].token == ""


BAD = [
    ("RECEIVER_DEDUPE_TTL", "abc"),
    ("RECEIVER_MAX_BODY", "-1"),
    ("RECEIVER_MAX_BODY", "lots"),
    ("RECEIVER_TOPEN_ENCODING", "bogus"),
    ("RECEIVER_SMSADMIN_ALLOWED_IPS", "1.2.3.4/99"),
    ("RECEIVER_WINNERLOOK_ALLOWED_IPS", "10.0.0.0/8,not-an-ip"),
    ("RECEIVER_RETURNSMS_TIMEZONE", "Mars/Base"),
    ("RECEIVER_REDIS_URL", "http://x"),
    ("RECEIVER_REDIS_TIMEOUT", "0"),
    ("RECEIVER_REDIS_CLUSTER", "maybe"),
]


@pytest.mark.parametrize("name,value", BAD, ids=[f"{n}={v}" for n, v in BAD])
def test_bad_value_names_its_variable(monkeypatch, name, value):
    assert name in error_of(monkeypatch, **{name: value})


# marshmallow 4 ignores a validator's return value (it must raise): these lambdas never refuse.
OUT_OF_RANGE = [
    ("RECEIVER_DEDUPE_TTL", "0"),         # then every SET ... PX 0 fails in Redis
    ("RECEIVER_RETENTION", "-5"),         # then MINID lies in the future and trims everything
    ("RECEIVER_PROXY_COUNT", "-1"),
    ("RECEIVER_STREAM_PREFIX", "   "),
    ("RECEIVER_REDIS_DURABILITY", "bogus"),  # then create_app dies with a KeyError
    ("RECEIVER_REPLAY_INTERVAL", "-1"),
]


@pytest.mark.parametrize("name,value", OUT_OF_RANGE,
                         ids=[f"{n}={v}" for n, v in OUT_OF_RANGE])
def test_out_of_range_value_names_its_variable(monkeypatch, name, value):
    assert name in error_of(monkeypatch, **{name: value})


def test_several_bad_values_reported_at_once(monkeypatch):
    message = error_of(monkeypatch, RECEIVER_DEDUPE_TTL="abc", RECEIVER_MAX_BODY="-1",
                       RECEIVER_TOPEN_ENCODING="bogus", RECEIVER_SMSADMIN_ALLOWED_IPS="1.2.3.4/99",
                       RECEIVER_RETURNSMS_TIMEZONE="Mars/Base")
    for name in ("RECEIVER_DEDUPE_TTL", "RECEIVER_MAX_BODY", "RECEIVER_TOPEN_ENCODING",
                 "RECEIVER_SMSADMIN_ALLOWED_IPS", "RECEIVER_RETURNSMS_TIMEZONE"):
        assert name in message
    # One line per variable.
    assert len([line for line in message.splitlines() if "RECEIVER_" in line]) == 5


def test_bad_redis_url_reported_with_the_others(monkeypatch):
    message = error_of(monkeypatch, RECEIVER_DEDUPE_TTL="abc", RECEIVER_REDIS_URL="http://x")
    assert "RECEIVER_DEDUPE_TTL" in message and "RECEIVER_REDIS_URL" in message


@pytest.mark.parametrize("value,seconds", [("48h", 48 * 3600), ("2d", 2 * 86400),
                                           ("3600", 3600), ("90m", 5400), ("1h30m", 5400)])
def test_durations(monkeypatch, value, seconds):
    monkeypatch.setenv("RECEIVER_DEDUPE_TTL", value)
    monkeypatch.setenv("RECEIVER_RETENTION", value)
    s = settings.load()
    assert s.dedupe_ttl == seconds
    assert s.retention == seconds


def test_config_file_applies_and_environment_wins(monkeypatch, tmp_path):
    config = tmp_path / "receiver.env"
    config.write_text("# operator settings\n"
                      "RECEIVER_STREAM_PREFIX=vendorpush\n"
                      "RECEIVER_DEDUPE_TTL=2d\n"
                      "RECEIVER_TOPEN_TOKEN=from-file\n"
                      "RECEIVER_MAX_BODY=4096\n")
    monkeypatch.setenv("RECEIVER_CONFIG", str(config))
    monkeypatch.setenv("RECEIVER_MAX_BODY", "2048")       # the real environment overrides
    monkeypatch.setenv("RECEIVER_TOPEN_TOKEN", "from-env")
    s = settings.load()
    assert s.stream_prefix == "vendorpush"
    assert s.dedupe_ttl == timedelta(days=2).total_seconds()
    assert s.max_body == 2048
    assert s.vendors["topen"].token == "from-env"


def test_bad_value_in_config_file_names_its_variable(monkeypatch, tmp_path):
    config = tmp_path / "receiver.env"
    config.write_text("RECEIVER_WINNERLOOK_TIMEZONE=Mars/Base\n")
    monkeypatch.setenv("RECEIVER_CONFIG", str(config))
    with pytest.raises(SettingsError, match="RECEIVER_WINNERLOOK_TIMEZONE"):
        settings.load()


def test_missing_config_file_is_a_clear_error(monkeypatch, tmp_path):
    missing = tmp_path / "nowhere" / "receiver.env"
    monkeypatch.setenv("RECEIVER_CONFIG", str(missing))
    with pytest.raises(SettingsError) as raised:
        settings.load()
    assert "RECEIVER_CONFIG" in str(raised.value) and str(missing) in str(raised.value)


def test_config_file_values_do_not_outlive_it(monkeypatch, tmp_path):
    config = tmp_path / "receiver.env"
    config.write_text("RECEIVER_TOPEN_TOKEN=from-file\n")
    monkeypatch.setenv("RECEIVER_CONFIG", str(config))
    assert settings.load().vendors["topen"].token == "from-file"
    monkeypatch.delenv("RECEIVER_CONFIG")
    assert settings.load().vendors["topen"].token == ""


def serve(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """Run the installed `receiver serve` console script with these settings."""
    # This interpreter's own script first: `.venv/bin/python -m pytest` without the venv on
    # PATH would otherwise find none, or another environment's.
    script = shutil.which("receiver", path=os.pathsep.join(
        [str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    assert script, "the `receiver` console script is not installed in this environment"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("RECEIVER_")}
    # A Redis URL, so a wrongly accepted setting would start gunicorn rather than a Redis.
    environment.update(RECEIVER_REDIS_URL="redis://127.0.0.1:1/0",
                       RECEIVER_DATA_DIR=str(tmp_path / "data"), **env)
    # The timeout only guards against a server wrongly started; it is not an assertion.
    return subprocess.run([script, "serve", "--port", "0", "--workers", "1"], env=environment,
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("name,value", [("RECEIVER_MAX_BODY", "-1"),
                                        ("RECEIVER_SMSADMIN_TIMEZONE", "Mars/Base")])
def test_serve_refuses_a_bad_value(tmp_path, name, value):
    done = serve(tmp_path, **{name: value})
    assert done.returncode != 0
    assert name in done.stderr


def test_serve_refuses_a_missing_config_file(tmp_path):
    done = serve(tmp_path, RECEIVER_CONFIG=str(tmp_path / "missing.env"))
    assert done.returncode != 0
    assert "RECEIVER_CONFIG" in done.stderr
