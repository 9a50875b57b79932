"""The SSRF guard's matrix: schemes, credentials, every private range, odd IP spellings, IPv6
wrappers, names that resolve to private addresses (the resolver is faked: no DNS in tests)."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from answer_engine.urlguard import BlockedURL, UrlGuard

pytestmark = pytest.mark.security

PUBLIC = "93.184.215.14"


async def fake_resolver(host: str, port: int) -> list[str]:
    table = {
        "public.example": [PUBLIC],
        "v6.example": ["2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
        "internal.example": ["10.0.0.5"],
        "mixed.example": [PUBLIC, "127.0.0.1"],
        "metadata.example": ["169.254.169.254"],
        "localhost": ["127.0.0.1", "::1"],
    }
    if host not in table:
        raise OSError(f"no such host: {host}")
    return table[host]


@pytest.fixture
def guard() -> UrlGuard:
    return UrlGuard(resolver=fake_resolver)


@pytest.mark.parametrize(
    "url",
    [
        "http://public.example/page",
        "https://public.example:8443/a?b=c#d",
        f"http://{PUBLIC}/",
        "https://v6.example/",
        "http://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/",
        "HTTP://PUBLIC.EXAMPLE/",
    ],
)
async def test_public_targets_pass(guard, url):
    assert await guard.check(url)


@pytest.mark.parametrize(
    "url,why",
    [
        ("file:///etc/passwd", "scheme"),
        ("gopher://public.example/", "scheme"),
        ("ftp://public.example/", "scheme"),
        ("javascript:alert(1)", "scheme"),
        ("//public.example/", "scheme"),
        ("data:text/html,hi", "scheme"),
        ("http://user:pass@public.example/", "credentials"),
        ("http://public.example@127.0.0.1/", "credentials"),
        ("http://@127.0.0.1/", "credentials"),
        ("http:///path", "no host"),
        ("http://public.example\r\nHost: evil/", "control"),
    ],
)
async def test_urls_refused_before_any_lookup(guard, url, why):
    with pytest.raises(BlockedURL, match=why):
        guard.check_url(url)


@pytest.mark.parametrize(
    "url",
    [
        # loopback, in every spelling the C library accepts
        "http://127.0.0.1/",
        "http://127.1/",
        "http://2130706433/",
        "http://0x7f000001/",
        "http://0x7f.0.0.1/",
        "http://0177.0.0.1/",
        "http://017700000001/",
        "http://127.000.000.001/",
        "http://[::1]/",
        "http://localhost/",
        "http://127.0.0.1.:8080/",
        "http://[0:0:0:0:0:0:0:1]/",
        # private, shared (CGNAT), link-local (cloud metadata), unspecified, multicast, reserved, broadcast
        "http://10.0.0.1/",
        "http://172.16.5.4/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",
        "http://169.254.169.254/",
        "http://0.0.0.0/",
        "http://0/",
        "http://224.0.0.1/",
        "http://240.0.0.1/",
        "http://255.255.255.255/",
        "http://198.18.0.1/",
        "http://192.0.2.1/",
        # IPv6: unique-local, link-local, multicast, and IPv4 wrapped in IPv6 (mapped, 6to4, NAT64)
        "http://[fd00::1]/",
        "http://[fe80::1]/",
        "http://[ff02::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:7f00:1]/",
        "http://[::ffff:10.0.0.1]/",
        "http://[2002:7f00:1::]/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://[::]/",
        # names resolving to private addresses, and a name with one private address among public ones
        "http://internal.example/",
        "http://metadata.example/latest/meta-data/",
        "http://mixed.example/",
    ],
)
async def test_private_targets_refused(guard, url):
    with pytest.raises(BlockedURL):
        await guard.check(url)


async def test_unresolvable_host_is_refused(guard):
    with pytest.raises(BlockedURL, match="cannot resolve"):
        await guard.check("http://nowhere.example/")


async def test_allow_networks_exempts_only_that_range():
    guard = UrlGuard(allow_networks=["127.0.0.1/32"], resolver=fake_resolver)
    assert await guard.check("http://127.0.0.1:8000/") == ["127.0.0.1"]
    with pytest.raises(BlockedURL):
        await guard.check("http://127.0.0.2/")
    with pytest.raises(BlockedURL):  # localhost also has ::1, which is not exempt
        await guard.check("http://localhost/")


# ----------------------------------------------------------------------------- properties (hypothesis)


def spellings(ip: int) -> list[str]:
    """One IPv4 address written the ways inet_aton reads it."""
    a, b, c, d = ip.to_bytes(4, "big")
    return [
        str(ipaddress.IPv4Address(ip)),
        str(ip),
        hex(ip),
        f"0{ip:o}",
        f"{a}.{b}.{(c << 8) | d}",
        f"{a}.{(b << 16) | (c << 8) | d}",
        f"{hex(a)}.{hex(b)}.{hex(c)}.{hex(d)}",
        f"0{a:o}.{b}.{c}.{d}",
    ]


@given(ip=st.integers(min_value=0, max_value=2**32 - 1))
@settings(max_examples=400, deadline=None)
async def test_every_spelling_of_an_address_gets_the_same_decision(ip):
    guard = UrlGuard(resolver=fake_resolver)
    address = ipaddress.IPv4Address(ip)
    public = address.is_global and not (address.is_multicast or address.is_reserved or address.is_private)
    for spelled in spellings(ip):
        assert socket.inet_aton(spelled) == address.packed  # the C library reads it as this address
        try:
            await guard.check(f"http://{spelled}/")
            allowed = True
        except BlockedURL:
            allowed = False
        assert allowed == public, spelled
        try:  # and wrapped in IPv6 (mapped) it is judged as the IPv4 address it carries
            await guard.check(f"http://[::ffff:{address}]/")
            assert public
        except BlockedURL:
            assert not public


@given(url=st.text(max_size=80))
@settings(max_examples=400, deadline=None)
def test_any_string_is_refused_or_an_http_url_with_a_host_and_no_credentials(url):
    guard = UrlGuard(resolver=fake_resolver)
    try:
        scheme, host, port = guard.check_url(url)
    except BlockedURL:
        return
    assert scheme in ("http", "https") and host and 0 < port < 65536
    assert "@" not in url.split("#", 1)[0].split("?", 1)[0].split("/", 3)[2] if "//" in url else True


@given(url=st.from_regex(r"https?://[a-z0-9.@:\[\]%-]{1,30}/[a-z]{0,5}", fullmatch=True))
@settings(max_examples=300, deadline=None)
async def test_url_shaped_strings_never_reach_a_private_address(url):
    """Whatever the parser makes of it, a URL the guard lets through resolves only to public addresses."""
    guard = UrlGuard(resolver=fake_resolver)
    try:
        addresses = await guard.check(url)
    except BlockedURL:
        return
    assert all(ipaddress.ip_address(a).is_global for a in addresses)
