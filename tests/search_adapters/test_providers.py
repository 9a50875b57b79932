"""Each web provider against its recorded response format, through httpx.MockTransport: the request
we send (endpoint, auth, parameters) and how the answer (and each documented error) is mapped."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import httpx
import pytest

from search_adapters.base import SearchError, SearchProvider
from search_adapters.brave import Brave
from search_adapters.duckduckgo import DuckDuckGo
from search_adapters.filters import SearchFilters
from search_adapters.google import GoogleCSE
from search_adapters.searxng import SearXNG
from search_adapters.tavily import Tavily

RECORDED = Path(__file__).parent / "recorded"
BOOK = "https://doc.rust-lang.org/book/ch04-02-references-and-borrowing.html"


def recorded(name: str) -> dict:
    return json.loads((RECORDED / name).read_text(encoding="utf-8"))


class Recorder:
    """A MockTransport handler that answers with one recorded body and keeps the requests."""

    def __init__(self, body: dict | str, status: int = 200, headers: dict | None = None) -> None:
        self.body, self.status, self.headers = body, status, headers or {}
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if isinstance(self.body, str):
            return httpx.Response(self.status, text=self.body, headers=self.headers)
        return httpx.Response(self.status, json=self.body, headers=self.headers)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self))


async def test_searxng_maps_results_and_sends_json_format():
    rec = Recorder(recorded("searxng_ok.json"))
    provider = SearXNG(rec.client(), "http://searx.internal:8888/")
    assert isinstance(provider, SearchProvider)
    results = await provider.search(
        "rust borrow checker", max_results=5, filters=SearchFilters(recency="week")
    )
    req = rec.requests[0]
    assert req.url.path == "/search" and req.url.params["format"] == "json"
    assert req.url.params["q"] == "rust borrow checker" and req.url.params["time_range"] == "week"
    assert [r.url for r in results][0] == BOOK
    assert results[0].snippet.startswith("A reference is like a pointer") and results[0].provider == "searxng"
    assert results[0].date is None and results[1].date == "2022-08-05T00:00:00"


async def test_searxng_with_every_engine_failing_is_an_error_not_an_empty_answer():
    rec = Recorder(recorded("searxng_all_engines_failed.json"))
    with pytest.raises(SearchError, match="CAPTCHA"):
        await SearXNG(rec.client(), "http://searx.internal").search("q", max_results=5)


async def test_searxng_without_json_format_enabled_says_so():
    rec = Recorder("<html><body>403 Forbidden</body></html>", status=403)
    with pytest.raises(SearchError, match="HTTP 403") as err:
        await SearXNG(rec.client(), "http://searx.internal").search("q", max_results=5)
    assert err.value.status == 403


async def test_brave_sends_the_token_and_maps_web_results():
    rec = Recorder(recorded("brave_ok.json"))
    provider = Brave(rec.client(), "BSA-secret")
    results = await provider.search(
        "rust borrow checker", max_results=30, filters=SearchFilters(recency="day")
    )
    req = rec.requests[0]
    assert req.url.path == "/res/v1/web/search" and req.headers["X-Subscription-Token"] == "BSA-secret"
    assert req.url.params["count"] == "20" and req.url.params["freshness"] == "pd"  # the API caps count at 20
    assert results[0].url == BOOK and results[0].date == "2024-02-08T00:00:00"
    assert results[1].date is None and results[1].snippet.startswith("The borrow checker")


async def test_brave_date_range_filter_becomes_freshness_range():
    rec = Recorder(recorded("brave_ok.json"))
    await Brave(rec.client(), "k").search(
        "q", max_results=5, filters=SearchFilters(after=date(2024, 1, 1), before=date(2024, 6, 30))
    )
    assert rec.requests[0].url.params["freshness"] == "2024-01-01to2024-06-30"


async def test_brave_rate_limit_carries_status_code_and_retry_after():
    rec = Recorder(
        recorded("brave_429.json"),
        status=429,
        headers={"Retry-After": "1", "X-RateLimit-Remaining": "0, 1683"},
    )
    with pytest.raises(SearchError, match="RATE_LIMITED: Request rate limit exceeded") as err:
        await Brave(rec.client(), "k").search("q", max_results=5)
    assert err.value.rate_limited and err.value.retry_after == 1.0


async def test_brave_bad_token():
    rec = Recorder(recorded("brave_422.json"), status=422)
    with pytest.raises(SearchError, match="SUBSCRIPTION_TOKEN_INVALID"):
        await Brave(rec.client(), "wrong").search("q", max_results=5)


async def test_tavily_posts_json_with_bearer_and_domain_filters():
    rec = Recorder(recorded("tavily_ok.json"))
    filters = SearchFilters(domains=["rust-lang.org", "-reddit.com"], recency="month")
    results = await Tavily(rec.client(), "tvly-secret").search(
        "rust borrow checker", max_results=5, filters=filters
    )
    req = rec.requests[0]
    body = json.loads(req.content)
    assert (
        req.method == "POST"
        and req.url.path == "/search"
        and req.headers["Authorization"] == "Bearer tvly-secret"
    )
    assert (
        body["query"] == "rust borrow checker" and body["max_results"] == 5 and body["time_range"] == "month"
    )
    assert body["include_domains"] == ["rust-lang.org"] and body["exclude_domains"] == ["reddit.com"]
    assert [r.url for r in results][0] == BOOK
    assert results[1].date == "2024-03-12T09:30:00+00:00"  # RFC 2822 in the response, ISO for us


@pytest.mark.parametrize("fixture,status", [("tavily_401.json", 401), ("tavily_429.json", 429)])
async def test_tavily_errors_carry_its_message(fixture, status):
    rec = Recorder(recorded(fixture), status=status)
    with pytest.raises(SearchError, match=recorded(fixture)["detail"]["error"][:20]) as err:
        await Tavily(rec.client(), "k").search("q", max_results=5)
    assert err.value.status == status


async def test_google_sends_key_and_cx_and_reads_dates_from_metatags():
    rec = Recorder(recorded("google_ok.json"))
    provider = GoogleCSE(rec.client(), "AIza-secret", "017576662512468239146:omuauf_lfve")
    results = await provider.search(
        "rust borrow checker", max_results=25, filters=SearchFilters(domains=["example.org"])
    )
    params = rec.requests[0].url.params
    assert rec.requests[0].url.path == "/customsearch/v1"
    assert params["key"] == "AIza-secret" and params["cx"].startswith("0175") and params["num"] == "10"
    assert params["siteSearch"] == "example.org"
    assert results[0].url == BOOK and results[0].date is None
    assert results[1].date == "2025-03-03T08:00:00+00:00"


async def test_google_without_items_is_an_empty_answer():
    rec = Recorder(recorded("google_empty.json"))
    assert await GoogleCSE(rec.client(), "k", "cx").search("zzqxv", max_results=5) == []


@pytest.mark.parametrize(
    "fixture,status,text",
    [("google_429.json", 429, "RESOURCE_EXHAUSTED"), ("google_400.json", 400, "API key not valid")],
)
async def test_google_errors(fixture, status, text):
    rec = Recorder(recorded(fixture), status=status)
    with pytest.raises(SearchError, match=text) as err:
        await GoogleCSE(rec.client(), "k", "cx").search("q", max_results=5)
    assert err.value.status == status


async def test_a_provider_timing_out_is_a_search_error():
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    client = httpx.AsyncClient(transport=httpx.MockTransport(slow))
    with pytest.raises(SearchError, match="timed out"):
        await Brave(client, "k").search("q", max_results=5)


class FakeDDGS:
    """Stands in for ddgs.DDGS at its edge: text() returns rows in ddgs' shape or raises its exceptions."""

    def __init__(self, rows=None, exc=None):
        self.rows, self.exc, self.calls = rows or [], exc, []

    def __call__(self, timeout):
        return self

    def text(self, query, **kwargs):
        self.calls.append((query, kwargs))
        if self.exc:
            raise self.exc
        return self.rows


async def test_ddgs_maps_href_and_body():
    fake = FakeDDGS(
        [
            {"title": "References and Borrowing", "href": BOOK, "body": "A reference is like a pointer."},
            {"title": "no link", "href": "", "body": ""},
        ]
    )
    results = await DuckDuckGo(client_factory=fake).search(
        "rust", max_results=5, filters=SearchFilters(recency="week")
    )
    assert [(r.url, r.snippet, r.provider) for r in results] == [
        (BOOK, "A reference is like a pointer.", "ddgs")
    ]
    assert fake.calls[0][1]["timelimit"] == "w" and fake.calls[0][1]["max_results"] == 5


async def test_ddgs_rate_limit_and_empty_result():
    from ddgs.exceptions import DDGSException, RatelimitException

    with pytest.raises(SearchError) as err:
        await DuckDuckGo(client_factory=FakeDDGS(exc=RatelimitException("202 Ratelimit"))).search(
            "q", max_results=5
        )
    assert err.value.rate_limited
    assert (
        await DuckDuckGo(client_factory=FakeDDGS(exc=DDGSException("No results found."))).search(
            "q", max_results=5
        )
        == []
    )
