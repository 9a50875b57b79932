"""Brave Search API: GET https://api.search.brave.com/res/v1/web/search, key in X-Subscription-Token.

Errors come as {"type": "ErrorResponse", "error": {"code": "RATE_LIMITED", "detail": ..., "status": 429}}."""

from __future__ import annotations

import httpx

from search_adapters.base import SearchError, SearchResult
from search_adapters.filters import SearchFilters
from search_adapters.http import KeyedProvider, iso_date, request_json

BASE_URL = "https://api.search.brave.com"
MAX_COUNT = 20  # the API's ceiling for count
FRESHNESS = {"hour": "pd", "day": "pd", "week": "pw", "month": "pm", "year": "py"}


def _error(body: dict) -> str:
    err = body["error"]
    return f"{err.get('code', '')}: {err.get('detail', '')}".strip(": ")


class Brave(KeyedProvider):
    name = "brave"

    def __init__(
        self, client: httpx.AsyncClient, api_key: str, *, base_url: str = BASE_URL, timeout_s: float = 8.0
    ) -> None:
        super().__init__(client, api_key, base_url=base_url, timeout_s=timeout_s)

    async def search(
        self, query: str, *, max_results: int, filters: SearchFilters | None = None
    ) -> list[SearchResult]:
        params = {
            "q": query,
            "count": str(min(max_results, MAX_COUNT)),
            "safesearch": "moderate",
            "text_decorations": "false",
            "result_filter": "web",
        }
        if filters is not None:
            if filters.recency:
                params["freshness"] = FRESHNESS[filters.recency]
            elif filters.after or filters.before:
                start = filters.after.isoformat() if filters.after else "1970-01-01"
                end = filters.before.isoformat() if filters.before else "2100-12-31"
                params["freshness"] = f"{start}to{end}"
        body = await request_json(
            self.client,
            self.name,
            "GET",
            f"{self.base_url}/res/v1/web/search",
            params=params,
            timeout_s=self.timeout_s,
            error_message=_error,
            headers={"Accept": "application/json", "X-Subscription-Token": self.api_key},
        )
        if not isinstance(body, dict):
            raise SearchError(f"{self.name}: unexpected response shape", provider=self.name)
        results = (body.get("web") or {}).get("results") or []
        return [
            SearchResult(
                url=item["url"],
                title=item.get("title") or item["url"],
                snippet=item.get("description") or "",
                date=iso_date(item.get("page_age")),
                provider=self.name,
            )
            for item in results
            if item.get("url")
        ][:max_results]
