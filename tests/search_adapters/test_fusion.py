"""Several providers as one: fusion, de-duplication, the deadline, fallback and the circuit breaker.
Providers here are the real HTTP adapters over MockTransport, so failures look like real ones."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from search_adapters.base import SearchError, SearchResult
from search_adapters.brave import Brave
from search_adapters.fusion import AllProvidersFailed, CircuitBreaker, MultiSearch, normalize_url, rrf_fuse
from search_adapters.searxng import SearXNG
from search_adapters.tavily import Tavily

RECORDED = Path(__file__).parent / "recorded"


def r(url: str, provider: str = "p", date: str | None = None) -> SearchResult:
    return SearchResult(url=url, title=url, provider=provider, date=date)


def test_normalize_url_merges_the_same_page():
    same = [
        "https://www.Example.com/a/?utm_source=x&b=2&a=1#top",
        "http://example.com/a?a=1&b=2",
        "https://example.com:443/a/?a=1&b=2&fbclid=zz",
    ]
    assert len({normalize_url(u) for u in same}) == 1
    assert normalize_url("https://example.com/a?page=2") != normalize_url("https://example.com/a?page=3")
    assert normalize_url("https://example.com:8080/") != normalize_url("https://example.com/")


def test_rrf_rewards_agreement_and_dedupes():
    a = [r("https://x.org/1"), r("https://x.org/2"), r("https://x.org/3")]
    b = [r("https://www.x.org/3/", "b", "2024-01-01"), r("https://x.org/4", "b"), r("https://x.org/1", "b")]
    fused = rrf_fuse([a, b])
    assert [f.url for f in fused] == [
        "https://x.org/1",
        "https://x.org/3",
        "https://x.org/2",
        "https://x.org/4",
    ]
    assert fused[1].date == "2024-01-01"  # the date one provider knew survives the merge
    assert fused[0].score == pytest.approx(1 / 61 + 1 / 63, abs=1e-6)


def test_breaker_opens_half_opens_and_closes():
    now = [0.0]
    b = CircuitBreaker(failures=2, cooldown_s=10, clock=lambda: now[0])
    b.failure()
    assert b.allow()
    b.failure()
    assert b.state == "open" and not b.allow()
    now[0] = 10.5
    assert b.allow() and not b.allow()  # one trial call at a time
    b.failure()
    assert b.state == "open"
    now[0] = 21
    assert b.allow()
    b.success()
    assert b.state == "closed" and b.allow()


def test_breaker_honours_retry_after_at_once():
    now = [0.0]
    b = CircuitBreaker(failures=5, cooldown_s=1, clock=lambda: now[0])
    b.failure(retry_after=30)
    now[0] = 29
    assert not b.allow()
    now[0] = 31
    assert b.allow()


def handler(
    body_file: str | None = None, *, status: int = 200, delay: float = 0.0, counter: list | None = None
):
    async def handle(request: httpx.Request) -> httpx.Response:
        if counter is not None:
            counter.append(request)
        if delay:
            await asyncio.sleep(delay)
        body = json.loads((RECORDED / body_file).read_text()) if body_file else {}
        return httpx.Response(status, json=body, headers={"Retry-After": "60"} if status == 429 else {})

    return handle


def client(h) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(h))


async def test_fuses_providers_in_parallel():
    in_flight, most = [0], [0]

    def tracked(body_file):
        inner = handler(body_file)

        async def handle(request):
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
            await asyncio.sleep(0.2)
            in_flight[0] -= 1
            return await inner(request)

        return handle

    multi = MultiSearch(
        [
            SearXNG(client(tracked("searxng_ok.json")), "http://s"),
            Brave(client(tracked("brave_ok.json")), "k"),
            Tavily(client(tracked("tavily_ok.json")), "k"),
        ],
        deadline_s=5,
    )
    results = await multi.search("rust borrow checker", max_results=10)
    assert most[0] == 3  # all three asked at once, not one after another
    urls = [x.url for x in results]
    assert (
        urls[0] == "https://doc.rust-lang.org/book/ch04-02-references-and-borrowing.html"
    )  # all three had it first
    assert len(urls) == len(set(normalize_url(u) for u in urls)) == 4


async def test_a_slow_provider_is_left_out_at_the_deadline():
    multi = MultiSearch(
        [
            Brave(client(handler("brave_ok.json")), "k"),
            Tavily(client(handler("tavily_ok.json", delay=30)), "k"),
        ],
        deadline_s=0.3,
    )
    async with asyncio.timeout(10):  # the 30 s provider is not waited for
        results = await multi.search("q", max_results=10)
    assert {x.provider for x in results} == {"brave"} and "no answer within" in multi.last_errors["tavily"]


async def test_falls_back_and_breaker_stops_calling_a_failing_provider():
    calls: list = []
    failing = Brave(client(handler("brave_429.json", status=429, counter=calls)), "k")
    multi = MultiSearch([failing, Tavily(client(handler("tavily_ok.json")), "k")], breaker_failures=3)
    for _ in range(3):
        results = await multi.search("q", max_results=5)
        assert results and all(x.provider == "tavily" for x in results)
    assert len(calls) == 1  # the 429's Retry-After: 60 opened the breaker at once
    assert "circuit open" in multi.last_errors["brave"]


async def test_every_provider_failing_is_an_error_listing_each():
    multi = MultiSearch(
        [
            Brave(client(handler("brave_422.json", status=422)), "k"),
            Tavily(client(handler("tavily_401.json", status=401)), "k"),
        ]
    )
    with pytest.raises(AllProvidersFailed, match="brave: HTTP 422.*tavily: HTTP 401"):
        await multi.search("q", max_results=5)


async def test_a_provider_bug_is_contained():
    class Broken:
        name = "broken"

        async def search(self, query, *, max_results, filters=None):
            raise KeyError("results")

    multi = MultiSearch([Broken(), Brave(client(handler("brave_ok.json")), "k")])
    assert await multi.search("q", max_results=5)
    assert "KeyError" in multi.last_errors["broken"]
    with pytest.raises(SearchError):
        await MultiSearch([Broken()]).search("q", max_results=5)


async def test_local_index_with_web_providers_is_prepared_through_the_fusion(shared_data_dir):
    from answer_engine.text import terms
    from search_adapters.local import LocalIndex

    prepared = []
    index = LocalIndex(
        shared_data_dir / "index" / "local", analyzer=terms, refresh=lambda: prepared.append(1)
    )
    multi = MultiSearch([index, Brave(client(handler("brave_ok.json")), "k")])
    multi.prepare()
    assert prepared  # start-up reaches the local index's builder through the fusion layer
    results = await multi.search("Warsaw capital of Poland", max_results=8)
    providers = {r.provider for r in results}
    assert providers == {"local", "brave"}
