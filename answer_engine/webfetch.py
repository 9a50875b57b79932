"""Reading pages from the web, safely: one shared httpx client behind the SSRF guard.

- Every TCP connection goes through :class:`GuardedNetworkBackend`: the host is resolved once, every
  address is checked, and the socket is opened to a checked address (TLS still verifies the
  certificate against the host name). So the check runs on every redirect hop and there is no
  window between check and connect for DNS rebinding.
- Redirects are followed by hand (at most 5), each target checked before it is requested.
- Limits: connect and total timeouts, connections overall and per host, a maximum body size read as
  a stream, allowed content types, a real User-Agent.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import io
import logging
import re
import ssl
from typing import Any
from urllib.parse import urljoin

import httpcore
import httpx

from answer_engine import __version__
from answer_engine.fetch import FetchedPage, FetchError
from answer_engine.urlguard import BlockedURL, UrlGuard

log = logging.getLogger(__name__)

USER_AGENT = f"Mozilla/5.0 (compatible; answer-engine/{__version__}; +https://github.com/answer-engine)"
MAX_REDIRECTS = 5
TEXT_TYPES = ("text/html", "application/xhtml+xml", "text/plain")
PDF_TYPE = "application/pdf"
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
MAX_PDF_PAGES = 50


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend with the guard between the name and the socket."""

    def __init__(self, guard: UrlGuard) -> None:
        self.guard = guard
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await self.guard.resolve(host, port)
        except BlockedURL as exc:
            raise httpcore.ConnectError(f"blocked: {exc}") from exc
        last: Exception | None = None
        for address in addresses:  # only addresses that passed the check
            try:
                return await self.inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with its connection pool built on the guarded network backend.

    httpx does not take a network backend as an argument; its transport keeps the pool in
    ``_pool`` (httpx 0.28, pinned below 1 in pyproject), so the pool is rebuilt here with the same
    limits. tests/answer_engine/test_webfetch.py fails if a new httpx stops using it."""

    def __init__(
        self, guard: UrlGuard, *, limits: httpx.Limits, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        super().__init__(limits=limits, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedNetworkBackend(guard),
        )


def media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def decode_body(body: bytes, response_charset: str | None) -> str:
    """The header's charset, else a <meta charset>, else UTF-8, else Windows-1252 (never fails)."""
    candidates = [response_charset]
    meta = _META_CHARSET.search(body[:4096])
    if meta:
        candidates.append(meta.group(1).decode("ascii", "ignore"))
    for name in candidates:
        if not name:
            continue
        try:
            codecs.lookup(name)
        except LookupError:
            continue
        return body.decode(name, errors="replace")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("cp1252", errors="replace")


def pdf_text(body: bytes) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(body))
        pages = [page.extract_text() or "" for page in reader.pages[:MAX_PDF_PAGES]]
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise FetchError(f"unreadable PDF: {exc}") from exc
    return "\n".join(p.strip() for p in pages if p.strip())


class HostSlots:
    """At most ``per_host`` requests at once to one host. An entry lives only while a request to
    that host is running or waiting, so the table does not grow with every host ever read."""

    def __init__(self, per_host: int) -> None:
        self.per_host = per_host
        self._slots: dict[str, tuple[asyncio.Semaphore, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, host: str) -> Any:
        sem, users = self._slots.get(host, (None, 0))
        if sem is None:
            sem = asyncio.Semaphore(self.per_host)
        self._slots[host] = (sem, users + 1)
        try:
            async with sem:
                yield
        finally:
            sem, users = self._slots[host]
            if users <= 1:
                del self._slots[host]
            else:
                self._slots[host] = (sem, users - 1)

    def __len__(self) -> int:
        return len(self._slots)


class WebFetcher:
    """Fetches pages from the web. One instance (one connection pool) per process; close it at exit."""

    def __init__(
        self,
        *,
        guard: UrlGuard | None = None,
        timeout_s: float = 10.0,
        connect_timeout_s: float = 5.0,
        max_bytes: int = 5_000_000,
        max_connections: int = 32,
        per_host: int = 4,
        user_agent: str = USER_AGENT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.guard = guard or UrlGuard()
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.host_slots = HostSlots(per_host)
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections // 2)
        self.client = httpx.AsyncClient(
            transport=transport or GuardedTransport(self.guard, limits=limits),
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            headers={
                "User-Agent": user_agent,
                "Accept": "text/html,application/xhtml+xml,text/plain;q=0.9,application/pdf;q=0.8,*/*;q=0.1",
                "Accept-Language": "en;q=1.0, *;q=0.5",
            },
            follow_redirects=False,
            trust_env=False,
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def fetch(self, url: str) -> FetchedPage:
        """The page at ``url`` (after redirects), or FetchError saying why not."""
        try:
            async with asyncio.timeout(self.timeout_s):
                return await self._fetch(url)
        except TimeoutError as exc:
            raise FetchError(f"timed out after {self.timeout_s:g}s: {url}") from exc
        except BlockedURL as exc:
            raise FetchError(f"refused {url}: {exc}") from exc
        except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as exc:
            raise FetchError(f"could not fetch {url}: {exc or type(exc).__name__}") from exc

    async def _fetch(self, url: str) -> FetchedPage:
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            _, host, _ = self.guard.check_url(current)
            async with self.host_slots.hold(host), self.client.stream("GET", current) as response:
                if response.is_redirect:
                    location = response.headers.get("location", "")
                    if not location:
                        raise FetchError(f"redirect without a Location from {current}")
                    current = urljoin(current, location)
                    continue
                if response.status_code >= 400:
                    raise FetchError(f"HTTP {response.status_code} from {current}")
                kind = media_type(response.headers.get("content-type", "text/html"))
                if kind not in TEXT_TYPES and kind != PDF_TYPE:
                    raise FetchError(f"content type {kind!r} is not read (HTML, XHTML, plain text, PDF only)")
                body = await self._read_limited(response)
                if kind == PDF_TYPE:
                    text = await asyncio.to_thread(pdf_text, body)
                    return FetchedPage(url=str(response.url), content_type="text/plain", text=text)
                return FetchedPage(
                    url=str(response.url),
                    content_type=kind,
                    text=decode_body(body, response.charset_encoding),
                )
        raise FetchError(f"more than {MAX_REDIRECTS} redirects from {url}")

    async def _read_limited(self, response: httpx.Response) -> bytes:
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            raise FetchError(f"page is {int(declared)} bytes, over the {self.max_bytes}-byte limit")
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self.max_bytes:
                raise FetchError(f"page is over the {self.max_bytes}-byte limit")
            chunks.append(chunk)
        return b"".join(chunks)
