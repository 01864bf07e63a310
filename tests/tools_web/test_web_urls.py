"""The URL parser and address policy against a corpus of SSRF tricks."""

from __future__ import annotations

import ipaddress

import pytest

from parley.net import AddressPolicy, FetchBlocked, blocked_reason, parse_url

# Every one of these means "this machine" or an internal service.
INTERNAL_FORMS = [
    ("http://127.0.0.1/", "127.0.0.1"),
    ("http://2130706433/", "127.0.0.1"),  # decimal
    ("http://0177.0.0.1/", "127.0.0.1"),  # octal
    ("http://0177.1/", "127.0.0.1"),  # short octal
    ("http://0x7f.0.0.1/", "127.0.0.1"),  # hex
    ("http://0x7f000001/", "127.0.0.1"),  # one hex number
    ("http://127.1/", "127.0.0.1"),  # short
    ("http://127.0.0.1./", "127.0.0.1"),  # trailing dot
    ("HTTP://127.0.0.1:80/", "127.0.0.1"),  # upper-case scheme
    ("http://１２７.０.０.１/", "127.0.0.1"),  # full-width digits (IDNA maps them)
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
    ("http://2852039166/", "169.254.169.254"),  # metadata as decimal
    ("http://0xa9fea9fe/", "169.254.169.254"),  # metadata as hex
    ("http://[::1]/", "::1"),
    ("http://[::ffff:127.0.0.1]/", "::ffff:7f00:1"),  # IPv4-mapped
    ("http://[0:0:0:0:0:ffff:7f00:1]/", "::ffff:7f00:1"),
    ("http://[::ffff:a9fe:a9fe]/", "::ffff:a9fe:a9fe"),  # mapped metadata
    ("http://[64:ff9b::a9fe:a9fe]/", "64:ff9b::a9fe:a9fe"),  # NAT64 of metadata
    ("http://[2002:7f00:1::]/", "2002:7f00:1::"),  # 6to4 of loopback
    ("http://[fd00:ec2::254]/", "fd00:ec2::254"),  # AWS IPv6 metadata
    ("http://[fe80::1]/", "fe80::1"),  # link-local
    ("http://0.0.0.0/", "0.0.0.0"),
    ("http://0/", "0.0.0.0"),
    ("http://10.1.2.3/", "10.1.2.3"),
    ("http://172.16.0.1/", "172.16.0.1"),
    ("http://192.168.1.1/", "192.168.1.1"),
    ("http://100.64.0.1/", "100.64.0.1"),  # CGNAT
    ("http://100.100.100.200/", "100.100.100.200"),  # Alibaba metadata
    ("http://224.0.0.1/", "224.0.0.1"),  # multicast
    ("http://240.0.0.1/", "240.0.0.1"),  # reserved
    ("http://255.255.255.255/", "255.255.255.255"),
]


@pytest.mark.parametrize(("url", "address"), INTERNAL_FORMS)
def test_internal_address_forms_parse_to_the_address_they_mean_and_are_blocked(
    url: str, address: str
) -> None:
    parsed = parse_url(url)
    assert parsed.host == address
    assert parsed.ip is not None
    assert blocked_reason(parsed.ip) is not None
    with pytest.raises(FetchBlocked):
        AddressPolicy().check_address(parsed.host, parsed.ip)


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("file:///etc/passwd", "http and https"),
        ("gopher://127.0.0.1:6379/_INFO", "http and https"),
        ("ftp://example.com/x", "http and https"),
        ("data:text/html,<script>alert(1)</script>", "http and https"),
        ("javascript:alert(1)", "http and https"),
        ("dict://127.0.0.1:11211/", "http and https"),
        ("//example.com/", "http and https"),
        ("http:example.com", "no host"),
        ("http:/example.com", "no host"),
        ("http://user:pass@example.com/", "user name or password"),
        ("http://example.com@127.0.0.1/", "user name or password"),
        ("http://127.0.0.1#@example.com/", None),  # fragment: host stays 127.0.0.1
        ("http://example.com\\@127.0.0.1/", "backslash"),
        ("http://127.0.0.1\\.example.com/", "backslash"),
        ("http://exa mple.com/", "spaces or control"),
        ("http://example.com\r\nHost: 127.0.0.1/", "spaces or control"),
        ("http://%31%32%37.0.0.1/", "Percent-encoded"),
        ("http://[fe80::1%25eth0]/", "zone"),
        ("http://[::1/", "unclosed"),
        ("http://[::1]x/", "after its IPv6"),
        ("http://256.0.0.1/", "not a valid address"),
        ("http://089.0.0.1/", "not a valid address"),
        ("http://1.2.3.4.5/", "not a valid host"),
        ("http://example.com:0/", "not a valid port"),
        ("http://example.com:99999/", "not a valid port"),
        ("http://example.com:80a/", "not a valid port"),
        ("http://exa_mple..com/", "not a valid host"),
        ("http://" + "a" * 5000 + ".com/", "longer than"),
    ],
)
def test_refused_and_confusing_urls(url: str, fragment: str | None) -> None:
    if fragment is None:
        parsed = parse_url(url)
        assert parsed.host == "127.0.0.1"  # what a browser would connect to, then blocked
        assert parsed.ip is not None and blocked_reason(parsed.ip) is not None
        return
    with pytest.raises(FetchBlocked) as caught:
        parse_url(url)
    assert fragment.lower() in caught.value.message.lower()


def test_canonical_form_round_trips() -> None:
    parsed = parse_url("HTTPS://Example.COM:443/a/b?q=1#frag")
    assert (parsed.scheme, parsed.host, parsed.port, parsed.target) == (
        "https",
        "example.com",
        443,
        "/a/b?q=1",
    )
    assert parsed.url == "https://example.com/a/b?q=1"
    assert parse_url("http://[2606:4700::1111]:8080").url == "http://[2606:4700::1111]:8080/"
    assert parse_url("http://bücher.example/").host == "xn--bcher-kva.example"


@pytest.mark.parametrize("address", ["1.1.1.1", "93.184.215.14", "2606:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    ip = ipaddress.ip_address(address)
    assert blocked_reason(ip) is None
    AddressPolicy().check_address(address, ip)


def test_internal_names_are_refused_before_dns() -> None:
    policy = AddressPolicy()
    for name in ("localhost", "LOCALHOST.", "metadata.google.internal", "x.localhost", "db.local"):
        with pytest.raises(FetchBlocked):
            policy.check_name(name)
    policy.check_name("example.com")


def test_allow_list_names_and_networks() -> None:
    policy = AddressPolicy.from_entries(["wiki.corp", "10.0.0.0/8", " ", "[::1]"])
    assert policy.allow_hosts == frozenset({"wiki.corp"})
    policy.check_address("wiki.corp", ipaddress.ip_address("192.168.5.5"))  # allowed by name
    policy.check_address("anything.example", ipaddress.ip_address("10.9.8.7"))  # by network
    policy.check_address("::1", ipaddress.ip_address("::1"))
    with pytest.raises(FetchBlocked) as caught:
        policy.check_address("other.example", ipaddress.ip_address("192.168.5.5"))
    assert "PARLEY_FETCH_ALLOW_HOSTS" in caught.value.message
    # An allowed IPv4 network does not open its IPv6-mapped form.
    with pytest.raises(FetchBlocked):
        policy.check_address("x", ipaddress.ip_address("::ffff:10.0.0.1"))
    with pytest.raises(FetchBlocked):
        policy.check_address("x", ipaddress.ip_address("169.254.169.254"))
