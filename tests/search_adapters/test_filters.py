"""Perplexity-style filters, enforced after retrieval whatever the provider did with them."""

from datetime import UTC, date, datetime

from search_adapters.base import SearchResult
from search_adapters.filters import SearchFilters, apply_filters, normalize_domain, parse_date

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


def result(url, day=None):
    return SearchResult(url=url, title=url, provider="test", date=day)


RESULTS = [
    result("https://www.nature.com/a", "2026-11-25T09:00:00Z"),
    result("https://blog.nature.com/b", "2026-11-20"),
    result("https://example.org/c", "2025-01-01T00:00:00+00:00"),
    result("https://example.org/d"),  # no date
]


def urls(filters, results=RESULTS):
    return [r.url for r in apply_filters(results, filters, now=NOW)]


def test_no_filter_keeps_everything_including_undated():
    assert not SearchFilters().active
    assert urls(SearchFilters()) == [r.url for r in RESULTS]


def test_allow_and_deny_domains_match_subdomains_not_lookalikes():
    assert urls(SearchFilters(domains=["nature.com"])) == [
        "https://www.nature.com/a",
        "https://blog.nature.com/b",
    ]
    assert urls(SearchFilters(domains=["-blog.nature.com"])) == [
        "https://www.nature.com/a",
        "https://example.org/c",
        "https://example.org/d",
    ]
    lookalike = [result("https://notnature.com/x")]
    assert urls(SearchFilters(domains=["nature.com"]), lookalike) == []


def test_recency_and_date_ranges_drop_undated_results():
    assert urls(SearchFilters(recency="day")) == ["https://www.nature.com/a"]
    assert urls(SearchFilters(recency="week")) == ["https://www.nature.com/a", "https://blog.nature.com/b"]
    assert urls(SearchFilters(after=date(2026, 11, 21))) == ["https://www.nature.com/a"]
    assert urls(SearchFilters(before=date(2025, 12, 31))) == ["https://example.org/c"]


def test_domain_spellings_and_dates_normalize():
    assert normalize_domain(" https://WWW.Example.com/path ") == "example.com"
    assert normalize_domain("sub.example.com.") == "sub.example.com"
    assert parse_date("2026-11-25").tzinfo is UTC  # naive taken as UTC
    assert parse_date("not a date") is None and parse_date(None) is None
