"""SearXNG, self-hosted: GET {base}/search?q=...&format=json (the instance must enable the json
format in settings.yml, or it answers 403)."""

from __future__ import annotations

import httpx

from search_adapters.base import SearchError, SearchProvider, SearchResult
from search_adapters.filters import SearchFilters
from search_adapters.http import iso_date, request_json

# SearXNG's time_range takes day, week, month, year (no hour: we ask for a day and filter).
TIME_RANGES = {"hour": "day", "day": "day", "week": "week", "month": "month", "year": "year"}


class SearXNG(SearchProvider):
    name = "searxng"

    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: str,
        *,
        timeout_s: float = 8.0,
        categories: str = "general",
        language: str = "auto",
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"searxng base URL must start with http:// or https://, not {base_url!r}")
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.categories = categories
        self.language = language

    async def search(
        self, query: str, *, max_results: int, filters: SearchFilters | None = None
    ) -> list[SearchResult]:
        params = {
            "q": query,
            "format": "json",
            "categories": self.categories,
            "language": self.language,
            "pageno": "1",
            "safesearch": "1",
        }
        if filters is not None and filters.recency:
            params["time_range"] = TIME_RANGES[filters.recency]
        body = await request_json(
            self.client,
            self.name,
            "GET",
            f"{self.base_url}/search",
            params=params,
            timeout_s=self.timeout_s,
            headers={"Accept": "application/json"},
        )
        if not isinstance(body, dict) or not isinstance(body.get("results"), list):
            raise SearchError(f"{self.name}: unexpected response shape", provider=self.name)
        out = []
        for item in body["results"]:
            url = item.get("url")
            if not url:
                continue
            out.append(
                SearchResult(
                    url=url,
                    title=item.get("title") or url,
                    snippet=item.get("content") or "",
                    date=iso_date(item.get("publishedDate")),
                    provider=self.name,
                )
            )
            if len(out) == max_results:
                break
        if not out and body.get("unresponsive_engines"):
            failed = ", ".join(f"{e[0]} ({e[1]})" for e in body["unresponsive_engines"] if len(e) == 2)
            raise SearchError(f"{self.name}: no results; engines failed: {failed}", provider=self.name)
        return out
