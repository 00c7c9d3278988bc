"""Per-vendor access control (DESIGN.md §2): secret path segment, source CIDRs (behind a proxy
or not), and accepted accounts. Every vendor, one valid push each."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from receiver.vendors import REGISTRY

from .helpers import FORM, entries

XML = "text/xml"


@dataclass(frozen=True)
class Push:
    """One valid push naming `account`, as the vendor sends it."""

    method: str
    query: bytes
    body: bytes
    content_type: str | None


def valid_push(vendor: str, account: str = "acc1") -> Push:
    """A one-record DLR push for `vendor` from `account`."""
    a = account.encode()
    if vendor in ("topen", "winnerlook"):
        return Push("POST", b"", b"account=" + a + b"&GetReport=0278387837488834,13900000000,"
                    b"DELIVRD|", FORM)
    if vendor == "smsadmin":
        return Push("GET", b"Class=rpt&SmsName=" + a + b"&Mobile=13900000000&LinkId=1&"
                    b"Report=DELIVRD&ReportTime=2017-09-28%2010:00:00", b"", None)
    if vendor == "returnsms":
        return Push("POST", b"account=" + a, b"<?xml version='1.0'?><returnsms><statusbox>"
                    b"<mobile>13900000000</mobile><taskid>1212</taskid><status>10</status>"
                    b"<receivetime>2011-12-02 22:12:11</receivetime><errorcode>DELIVRD</errorcode>"
                    b"</statusbox></returnsms>", XML)
    raise AssertionError(f"no sample push for {vendor}: add one when registering a vendor")


VENDORS = sorted(REGISTRY)


def test_every_vendor_has_a_sample():
    for vendor in VENDORS:
        valid_push(vendor)


def send(client, vendor: str, push: Push, *, path: str | None = None,
         remote_addr: str = "127.0.0.1", headers: dict[str, str] | None = None):
    """Send the push with its exact query bytes from `remote_addr`."""
    all_headers = dict(headers or {})
    if push.content_type:
        all_headers["Content-Type"] = push.content_type
    return client.open(path or f"/push/{vendor}", method=push.method, data=push.body,
                       headers=all_headers,
                       environ_base={"REMOTE_ADDR": remote_addr},
                       environ_overrides={"QUERY_STRING": push.query.decode("latin-1")})


def published(r) -> list[dict]:
    [event] = entries(r, "sms:dlr")
    assert event["mobile"] == "+8613900000000"
    return [event]


def one_line(response) -> str:
    assert response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    assert text.endswith("\n") and text.count("\n") == 1, text
    return text


def nothing_stored(r) -> bool:
    return r.keys("*") == []


def token_env(vendor: str, token: str) -> dict[str, str]:
    return {f"RECEIVER_{vendor.upper()}_TOKEN": token}


# --- secret path segment ------------------------------------------------------------------

@pytest.mark.parametrize("vendor", VENDORS)
def test_right_secret_publishes(app_factory, r, vendor):
    client = app_factory(**token_env(vendor, "s3cret-Tok")).test_client()
    response = send(client, vendor, valid_push(vendor), path=f"/push/{vendor}/s3cret-Tok")
    assert (response.status_code, response.data) == (200, b"ok")
    published(r)


@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize("suffix", ["/wrong", "/s3cret-to", "/s3cret-Tok2", "/S3CRET-TOK", ""],
                         ids=["wrong", "prefix", "longer", "case", "missing"])
def test_wrong_or_missing_secret_is_404(app_factory, r, vendor, suffix):
    client = app_factory(**token_env(vendor, "s3cret-Tok")).test_client()
    response = send(client, vendor, valid_push(vendor), path=f"/push/{vendor}{suffix}")
    assert response.status_code == 404
    assert "s3cret" not in one_line(response)
    assert nothing_stored(r)


@pytest.mark.parametrize("vendor", VENDORS)
def test_secret_given_when_none_configured_is_404(app_factory, r, vendor):
    client = app_factory().test_client()
    response = send(client, vendor, valid_push(vendor), path=f"/push/{vendor}/anything")
    assert response.status_code == 404
    one_line(response)
    assert nothing_stored(r)


@pytest.mark.parametrize("vendor", VENDORS)
def test_secret_of_another_vendor_is_404(app_factory, r, vendor):
    other = next(v for v in VENDORS if v != vendor)
    client = app_factory(**token_env(other, "theirs")).test_client()
    response = send(client, vendor, valid_push(vendor), path=f"/push/{vendor}/theirs")
    assert response.status_code == 404
    assert nothing_stored(r)


# --- source addresses -----------------------------------------------------------------------

NETS = "10.0.0.0/8, 192.168.7.0/24,2001:db8::/32"
INSIDE = ["10.1.2.3", "192.168.7.255", "2001:db8::5", "2001:db8:ffff::1"]
OUTSIDE = ["11.0.0.1", "192.168.8.1", "127.0.0.1", "2001:db9::1", "::1"]


def ips_env(vendor: str, nets: str = NETS, **extra: str) -> dict[str, str]:
    return {f"RECEIVER_{vendor.upper()}_ALLOWED_IPS": nets, **extra}


@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize("address", INSIDE)
def test_address_inside_the_networks_publishes(app_factory, r, vendor, address):
    client = app_factory(**ips_env(vendor)).test_client()
    response = send(client, vendor, valid_push(vendor), remote_addr=address)
    assert (response.status_code, response.data) == (200, b"ok")
    published(r)


@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize("address", OUTSIDE)
def test_address_outside_the_networks_is_403(app_factory, r, vendor, address):
    client = app_factory(**ips_env(vendor)).test_client()
    response = send(client, vendor, valid_push(vendor), remote_addr=address)
    assert response.status_code == 403
    assert address in one_line(response)
    assert nothing_stored(r)


@pytest.mark.parametrize("vendor", VENDORS)
def test_other_vendors_networks_do_not_apply(app_factory, r, vendor):
    other = next(v for v in VENDORS if v != vendor)
    client = app_factory(**ips_env(other, "10.0.0.0/8")).test_client()
    response = send(client, vendor, valid_push(vendor), remote_addr="11.0.0.1")
    assert response.status_code == 200
    published(r)


@pytest.mark.parametrize("vendor", VENDORS)
def test_ipv4_mapped_address_matches_ipv4_networks(app_factory, r, vendor):
    client = app_factory(**ips_env(vendor)).test_client()
    response = send(client, vendor, valid_push(vendor), remote_addr="::ffff:10.1.2.3")
    assert response.status_code == 200
    published(r)


@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize("forwarded,status", [
    ("10.1.2.3", 200),
    ("2001:db8::7", 200),
    ("11.0.0.1", 403),
    # The proxy appends what it saw; a client-written first hop must not count.
    ("10.1.2.3, 11.0.0.1", 403),
    ("11.0.0.1, 10.1.2.3", 200),
])
def test_behind_one_proxy_x_forwarded_for_decides(app_factory, r, vendor, forwarded, status):
    client = app_factory(**ips_env(vendor, RECEIVER_PROXY_COUNT="1")).test_client()
    response = send(client, vendor, valid_push(vendor), remote_addr="127.0.0.1",
                    headers={"X-Forwarded-For": forwarded})
    assert response.status_code == status
    if status == 200:
        published(r)
    else:
        one_line(response)
        assert nothing_stored(r)


@pytest.mark.parametrize("vendor", VENDORS)
def test_behind_a_proxy_dead_letters_carry_the_client_address(app_factory, r, vendor):
    client = app_factory(RECEIVER_PROXY_COUNT="1").test_client()
    garbage = Push("POST", b"", b"not a push", FORM)
    response = send(client, vendor, garbage, remote_addr="127.0.0.1",
                    headers={"X-Forwarded-For": "203.0.113.9"})
    assert response.status_code == 200
    [letter] = entries(r, "sms:deadletter")
    assert letter["remote_addr"] == "203.0.113.9"


@pytest.mark.parametrize("vendor", VENDORS)
def test_without_proxy_x_forwarded_for_is_ignored(app_factory, r, vendor):
    client = app_factory(**ips_env(vendor)).test_client()
    # Spoofing an allowed address in the header does not pass the check...
    response = send(client, vendor, valid_push(vendor), remote_addr="11.0.0.1",
                    headers={"X-Forwarded-For": "10.1.2.3"})
    assert response.status_code == 403
    assert "11.0.0.1" in one_line(response)
    assert nothing_stored(r)
    # ...and a foreign address in the header does not block an allowed peer.
    response = send(client, vendor, valid_push(vendor), remote_addr="10.1.2.3",
                    headers={"X-Forwarded-For": "11.0.0.1"})
    assert response.status_code == 200
    published(r)


# --- accounts ---------------------------------------------------------------------------------

def accounts_env(vendor: str, accounts: str = " acc1 , acc2,") -> dict[str, str]:
    return {f"RECEIVER_{vendor.upper()}_ACCOUNTS": accounts}


@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize("account", ["acc1", "acc2"])
def test_listed_account_publishes(app_factory, r, vendor, account):
    client = app_factory(**accounts_env(vendor)).test_client()
    response = send(client, vendor, valid_push(vendor, account))
    assert (response.status_code, response.data) == (200, b"ok")
    [event] = published(r)
    assert event["account"] == account
    assert entries(r, "sms:deadletter") == []


@pytest.mark.parametrize("vendor", VENDORS)
def test_other_account_is_dead_lettered_and_acked(app_factory, r, vendor):
    client = app_factory(**accounts_env(vendor)).test_client()
    push = valid_push(vendor, "intruder7")
    response = send(client, vendor, push)
    assert (response.status_code, response.data) == (200, b"ok")
    assert entries(r, "sms:dlr") == entries(r, "sms:mo") == []
    [letter] = entries(r, "sms:deadletter")
    assert "intruder7" in letter["reason"]
    assert (letter["query"], letter["body"]) == (push.query, push.body)


@pytest.mark.parametrize("vendor", VENDORS)
def test_push_naming_no_account_is_dead_lettered_when_accounts_are_set(app_factory, r, vendor):
    client = app_factory(**accounts_env(vendor)).test_client()
    push = valid_push(vendor, "")
    response = send(client, vendor, push)
    assert (response.status_code, response.data) == (200, b"ok")
    assert entries(r, "sms:dlr") == []
    [letter] = entries(r, "sms:deadletter")
    assert "account" in letter["reason"]


@pytest.mark.parametrize("vendor", VENDORS)
def test_all_checks_together(app_factory, r, vendor):
    env = {**token_env(vendor, "tok"), **ips_env(vendor), **accounts_env(vendor)}
    client = app_factory(**env).test_client()
    response = send(client, vendor, valid_push(vendor), path=f"/push/{vendor}/tok",
                    remote_addr="10.9.9.9")
    assert (response.status_code, response.data) == (200, b"ok")
    published(r)
    # The right secret from a wrong address is still refused.
    response = send(client, vendor, valid_push(vendor), path=f"/push/{vendor}/tok",
                    remote_addr="11.9.9.9")
    assert response.status_code == 403
