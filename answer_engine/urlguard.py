"""The SSRF guard: which URLs the engine may fetch, and which addresses it may connect to.

Two checks, both needed:

- :meth:`UrlGuard.check_url` looks at the URL alone (scheme, credentials, host present). It runs on
  the first URL and again on every redirect target.
- :meth:`UrlGuard.resolve` turns a host into the addresses we may connect to: an IP literal in any
  spelling the C library accepts (``2130706433``, ``0x7f.1``, ``0177.0.0.1``, ``127.1``) is read the
  same way the resolver would read it; a name is resolved once; every address is checked, and the
  connection is then made to exactly those addresses (see :mod:`answer_engine.webfetch`), so a DNS
  answer that changes between check and connect (rebinding) cannot slip a private address in.

Refused: loopback, private, link-local, multicast, reserved, unspecified, shared (CGNAT) and every
other non-global address, including IPv4 addresses wrapped in IPv6 (mapped, 6to4, NAT64).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

ALLOWED_SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}
NAT64 = ipaddress.ip_network("64:ff9b::/96")
RESOLVE_TIMEOUT_S = 5.0


class BlockedURL(Exception):
    """A URL or address the engine refuses to fetch; the message says why."""


async def system_resolver(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(RESOLVE_TIMEOUT_S):
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def literal_ip(host: str) -> IPAddress | None:
    """The address a host names by itself, in any spelling inet_aton/inet_pton accept, else None."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    try:  # decimal, octal, hex and short forms: what the C resolver would connect to
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


def embedded_ipv4(ip: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, NAT64), else the address itself."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        if ip in NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


class UrlGuard:
    """``allow_networks`` exempts ranges from the address check (an intranet deployment, tests on
    127.0.0.1); empty by default."""

    def __init__(self, *, allow_networks: Iterable[str] = (), resolver: Resolver | None = None) -> None:
        self.allow_networks = [ipaddress.ip_network(n, strict=False) for n in allow_networks]
        self.resolver = resolver or system_resolver

    def check_url(self, url: str) -> tuple[str, str, int]:
        """(scheme, host, port) of a URL we may request, or BlockedURL."""
        if any(c in url for c in "\r\n\t\x00") or any(ord(c) < 0x20 for c in url):
            raise BlockedURL("control characters in URL")
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError as exc:
            raise BlockedURL(f"malformed URL: {exc}") from exc
        scheme = parts.scheme.lower()
        if scheme not in ALLOWED_SCHEMES:
            raise BlockedURL(f"scheme {scheme or '(none)'!r} is not allowed (only http and https)")
        if parts.username is not None or parts.password is not None or "@" in parts.netloc:
            raise BlockedURL("credentials in URLs are not allowed")
        host = (parts.hostname or "").rstrip(".")
        if not host:
            raise BlockedURL("URL has no host")
        return scheme, host, port or DEFAULT_PORTS[scheme]

    def address_allowed(self, ip: IPAddress) -> bool:
        if any(ip in net for net in self.allow_networks if net.version == ip.version):
            return True
        inner = embedded_ipv4(ip)
        if inner is not ip:  # judged as the IPv4 address it carries (the v6 wrapper ranges are "reserved")
            return any(
                inner in net for net in self.allow_networks if net.version == inner.version
            ) or self._public(inner)
        return self._public(ip)

    @staticmethod
    def _public(ip: IPAddress) -> bool:
        return (
            not (
                ip.is_private
                or ip.is_loopback
                or ip.is_link_local
                or ip.is_multicast
                or ip.is_reserved
                or ip.is_unspecified
                or (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local)
            )
            and ip.is_global
        )

    async def resolve(self, host: str, port: int) -> list[str]:
        """The checked addresses to connect to; BlockedURL if any address the name has is refused."""
        ip = literal_ip(host)
        if ip is not None:
            addresses = [ip]
        else:
            try:
                found = await self.resolver(host.lower(), port)
            except (OSError, TimeoutError) as exc:
                raise BlockedURL(f"cannot resolve {host}: {exc or type(exc).__name__}") from exc
            addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in found]
            if not addresses:
                raise BlockedURL(f"cannot resolve {host}")
        # One bad address refuses the host: a name that points at both public and private
        # addresses is an attack, not a misconfiguration.
        for address in addresses:
            if not self.address_allowed(address):
                raise BlockedURL(f"{host} resolves to {address}, a non-public address")
        return [str(a) for a in addresses]

    async def check(self, url: str) -> list[str]:
        """Both checks for one URL (the fetcher runs them per connection; this is for callers and tests)."""
        _, host, port = self.check_url(url)
        return await self.resolve(host, port)
