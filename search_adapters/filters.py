"""Search filters with Perplexity's semantics, enforced by us after retrieval (a provider may ignore them).

- domain filter: entries without a prefix form an allow-list; entries prefixed with "-" a deny-list.
  "example.com" matches example.com and its subdomains.
- recency: hour, day, week, month, year before now, by the result's published date.
- published after / before a date (inclusive).

A date filter keeps only results whose date is known and inside the window.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field

from search_adapters.base import SearchResult

Recency = Literal["hour", "day", "week", "month", "year"]
RECENCY_WINDOWS: dict[str, timedelta] = {
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(weeks=1),
    "month": timedelta(days=31),
    "year": timedelta(days=366),
}


class SearchFilters(BaseModel):
    domains: list[str] = Field(default_factory=list, description='Allow "site.com"; deny "-site.com".')
    recency: Recency | None = None
    after: date | None = None
    before: date | None = None

    @property
    def active(self) -> bool:
        return bool(self.domains or self.recency or self.after or self.before)


def normalize_domain(entry: str) -> str:
    entry = entry.strip().lower()
    if "://" in entry:
        entry = urlsplit(entry).hostname or ""
    return entry.removeprefix("www.").strip(".")


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower().removeprefix("www.")


def _host_matches(host: str, domain: str) -> bool:
    return host == domain or host.endswith("." + domain)


def parse_date(value: str | None) -> datetime | None:
    """ISO dates and datetimes as providers give them; naive values are taken as UTC."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def apply_filters(
    results: list[SearchResult], filters: SearchFilters, *, now: datetime | None = None
) -> list[SearchResult]:
    if not filters.active:
        return results
    allow = [normalize_domain(d) for d in filters.domains if d.strip() and not d.strip().startswith("-")]
    deny = [normalize_domain(d[1:]) for d in (d.strip() for d in filters.domains) if d.startswith("-")]
    now = now or datetime.now(UTC)
    kept = []
    for r in results:
        host = host_of(r.url)
        if allow and not any(_host_matches(host, d) for d in allow):
            continue
        if any(_host_matches(host, d) for d in deny):
            continue
        if filters.recency or filters.after or filters.before:
            published = parse_date(r.date)
            if published is None:
                continue
            if filters.recency and published < now - RECENCY_WINDOWS[filters.recency]:
                continue
            if filters.after and published.date() < filters.after:
                continue
            if filters.before and published.date() > filters.before:
                continue
        kept.append(r)
    return kept
