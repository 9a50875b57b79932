"""Tavily: POST https://api.tavily.com/search with a JSON body, key as a Bearer token.

Errors come as {"detail": {"error": "..."}} (401 bad key, 429 rate limit, 432/433 plan limits)."""

from __future__ import annotations

import httpx

from search_adapters.base import SearchError, SearchResult
from search_adapters.filters import SearchFilters, normalize_domain
from search_adapters.http import KeyedProvider, iso_date, request_json

BASE_URL = "https://api.tavily.com"
MAX_RESULTS = 20
TIME_RANGES = {"hour": "day", "day": "day", "week": "week", "month": "month", "year": "year"}


def _error(body: dict) -> str:
    detail = body["detail"]
    return detail.get("error") if isinstance(detail, dict) else str(detail)


class Tavily(KeyedProvider):
    name = "tavily"

    def __init__(
        self, client: httpx.AsyncClient, api_key: str, *, base_url: str = BASE_URL, timeout_s: float = 8.0
    ) -> None:
        super().__init__(client, api_key, base_url=base_url, timeout_s=timeout_s)

    async def search(
        self, query: str, *, max_results: int, filters: SearchFilters | None = None
    ) -> list[SearchResult]:
        payload: dict = {
            "query": query,
            "max_results": min(max_results, MAX_RESULTS),
            "search_depth": "basic",
            "topic": "general",
            "include_answer": False,
            "include_raw_content": False,
        }
        if filters is not None:
            if filters.recency:
                payload["time_range"] = TIME_RANGES[filters.recency]
            if filters.after:
                payload["start_date"] = filters.after.isoformat()
            if filters.before:
                payload["end_date"] = filters.before.isoformat()
            allow = [normalize_domain(d) for d in filters.domains if not d.strip().startswith("-")]
            deny = [normalize_domain(d.strip()[1:]) for d in filters.domains if d.strip().startswith("-")]
            if allow:
                payload["include_domains"] = allow
            if deny:
                payload["exclude_domains"] = deny
        body = await request_json(
            self.client,
            self.name,
            "POST",
            f"{self.base_url}/search",
            json=payload,
            timeout_s=self.timeout_s,
            error_message=_error,
            headers={"Authorization": f"Bearer {self.api_key}"},
        )
        if not isinstance(body, dict) or not isinstance(body.get("results"), list):
            raise SearchError(f"{self.name}: unexpected response shape", provider=self.name)
        return [
            SearchResult(
                url=item["url"],
                title=item.get("title") or item["url"],
                snippet=item.get("content") or "",
                date=iso_date(item.get("published_date")),
                provider=self.name,
                score=None,
            )
            for item in body["results"]
            if item.get("url")
        ][:max_results]
