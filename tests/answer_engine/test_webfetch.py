"""The web fetcher against a real server on 127.0.0.1 (exempted from the guard for these tests):
redirects, size, type and charset limits, PDFs, timeouts, and the guard on every hop and connection."""

from __future__ import annotations

import httpx
import pytest

from answer_engine.fetch import FetchError
from answer_engine.urlguard import UrlGuard
from answer_engine.webfetch import GuardedTransport, WebFetcher


@pytest.fixture
async def fetcher():
    f = WebFetcher(guard=UrlGuard(allow_networks=["127.0.0.1/32"]), timeout_s=3.0, max_bytes=1_000_000)
    yield f
    await f.aclose()


async def test_reads_a_page_with_a_real_user_agent(fetcher, little_web):
    base, _ = little_web
    page = await fetcher.fetch(f"{base}/page/tides")
    assert page.content_type == "text/html" and "gravitational pull" in page.text
    assert fetcher.client.headers["User-Agent"].startswith("Mozilla/5.0 (compatible; answer-engine/")


async def test_follows_up_to_five_redirects_and_no_more(fetcher, little_web):
    base, _ = little_web
    page = await fetcher.fetch(f"{base}/redirect/5")
    assert page.url.endswith("/page/tides")
    with pytest.raises(FetchError, match="more than 5 redirects"):
        await fetcher.fetch(f"{base}/redirect/6")


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.2:{port}/page/tides",
        "http://[::1]:{port}/",
        "http://169.254.169.254/latest/meta-data/",
        "http://2130706434:{port}/",
        "file:///etc/passwd",
        "http://u:p@127.0.0.1:{port}/page/tides",
    ],
)
async def test_every_redirect_hop_is_checked(fetcher, little_web, target):
    base, _ = little_web
    port = base.rsplit(":", 1)[1]
    with pytest.raises(FetchError, match="refused|blocked"):
        await fetcher.fetch(f"{base}/redirect-to?url={target.format(port=port)}")


async def test_default_guard_refuses_loopback_at_connect_time(little_web):
    """No exemption: the server is real and listening, and still never reached."""
    base, app = little_web
    f = WebFetcher(timeout_s=3.0)
    try:
        with pytest.raises(FetchError, match="non-public"):
            await f.fetch(f"{base}/page/tides")
    finally:
        await f.aclose()


async def test_connects_to_the_address_it_checked_not_a_second_lookup(little_web):
    """DNS rebinding: the first answer is allowed, later answers point elsewhere; only one lookup
    happens per connection and the socket goes to that checked address."""
    base, _ = little_web
    port = int(base.rsplit(":", 1)[1])
    answers = [["127.0.0.1"], ["10.0.0.1"], ["10.0.0.1"]]
    lookups = []

    async def rebinding(host: str, p: int) -> list[str]:
        lookups.append(host)
        return answers[len(lookups) - 1]

    f = WebFetcher(guard=UrlGuard(allow_networks=["127.0.0.1/32"], resolver=rebinding), timeout_s=3.0)
    try:
        page = await f.fetch(f"http://rebind.test:{port}/page/volcano")
        assert "Mauna Loa" in page.text and lookups == ["rebind.test"]
    finally:
        await f.aclose()


async def test_transport_uses_the_guarded_pool():
    """Guards the one private detail we rely on: httpx's transport sending through ``_pool``."""
    transport = GuardedTransport(UrlGuard(), limits=httpx.Limits(max_connections=2))
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(httpx.ConnectError, match="blocked"):
            await client.get("http://127.0.0.1:9/")


async def test_body_size_limit_streamed_and_declared(fetcher, little_web):
    base, _ = little_web
    with pytest.raises(FetchError, match="byte limit"):
        await fetcher.fetch(f"{base}/big")
    with pytest.raises(FetchError, match="999999999 bytes"):
        await fetcher.fetch(f"{base}/big-declared")


async def test_content_types(fetcher, little_web):
    base, _ = little_web
    with pytest.raises(FetchError, match="image/png"):
        await fetcher.fetch(f"{base}/image")
    pdf = await fetcher.fetch(f"{base}/pdf")
    assert pdf.content_type == "text/plain" and "ten percent of the land" in pdf.text


async def test_charsets_from_header_and_meta(fetcher, little_web):
    base, _ = little_web
    assert "Café crème brûlée" in (await fetcher.fetch(f"{base}/latin1")).text
    assert "Привет, мир" in (await fetcher.fetch(f"{base}/meta-charset")).text


async def test_total_timeout_on_a_stalling_server(little_web):
    base, _ = little_web
    f = WebFetcher(guard=UrlGuard(allow_networks=["127.0.0.1/32"]), timeout_s=0.5)
    try:
        with pytest.raises(FetchError, match="timed out"):
            await f.fetch(f"{base}/stall")
    finally:
        await f.aclose()


async def test_http_errors_are_fetch_errors(fetcher, little_web):
    base, _ = little_web
    with pytest.raises(FetchError, match="HTTP 404"):
        await fetcher.fetch(f"{base}/page/nothing-here")


async def test_per_host_limit_and_no_growing_host_table(little_web):
    import asyncio

    base, app = little_web
    f = WebFetcher(guard=UrlGuard(allow_networks=["127.0.0.1/32"]), timeout_s=5.0, per_host=2)
    try:
        names = ["tides", "volcano", "glacier", "coral", "aurora", "tides"]
        pages = await asyncio.gather(*(f.fetch(f"{base}/slow/{n}") for n in names))
        assert all(p.text for p in pages)
        assert app.state.most_in_flight == 2  # six pages asked at once, two at a time to one host
        assert len(f.host_slots) == 0  # and nothing left behind per host once they are done
    finally:
        await f.aclose()
