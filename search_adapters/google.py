"""Google Programmable Search (Custom Search JSON API): GET https://www.googleapis.com/customsearch/v1
with key, cx and q; at most 10 results a request; no "items" key when nothing was found.

Errors come as {"error": {"code": 429, "message": ..., "status": "RESOURCE_EXHAUSTED"}}."""

from __future__ import annotations

import httpx

from search_adapters.base import SearchError, SearchResult
from search_adapters.filters import SearchFilters, normalize_domain
from search_adapters.http import KeyedProvider, iso_date, request_json

BASE_URL = "https://www.googleapis.com"
MAX_NUM = 10
DATE_RESTRICT = {"hour": "d1", "day": "d1", "week": "w1", "month": "m1", "year": "y1"}
DATE_KEYS = ("article:published_time", "og:updated_time", "datepublished", "date", "dc.date")


def _error(body: dict) -> str:
    err = body["error"]
    return f"{err.get('status', '')}: {err.get('message', '')}".strip(": ")


def _published(item: dict) -> str | None:
    for tags in (item.get("pagemap") or {}).get("metatags") or []:
        for key in DATE_KEYS:
            if tags.get(key):
                return tags[key]
    return None


class GoogleCSE(KeyedProvider):
    name = "google"

    def __init__(
        self,
        client: httpx.AsyncClient,
        api_key: str,
        cx: str,
        *,
        base_url: str = BASE_URL,
        timeout_s: float = 8.0,
    ) -> None:
        super().__init__(client, api_key, base_url=base_url, timeout_s=timeout_s)
        self.cx = cx

    async def search(
        self, query: str, *, max_results: int, filters: SearchFilters | None = None
    ) -> list[SearchResult]:
        params = {
            "key": self.api_key,
            "cx": self.cx,
            "q": query,
            "num": str(min(max_results, MAX_NUM)),
            "safe": "active",
        }
        if filters is not None:
            if filters.recency:
                params["dateRestrict"] = DATE_RESTRICT[filters.recency]
            allow = [normalize_domain(d) for d in filters.domains if not d.strip().startswith("-")]
            if len(allow) == 1:  # siteSearch takes one site; several are filtered after retrieval
                params["siteSearch"] = allow[0]
                params["siteSearchFilter"] = "i"
        body = await request_json(
            self.client,
            self.name,
            "GET",
            f"{self.base_url}/customsearch/v1",
            params=params,
            timeout_s=self.timeout_s,
            error_message=_error,
        )
        if not isinstance(body, dict):
            raise SearchError(f"{self.name}: unexpected response shape", provider=self.name)
        return [
            SearchResult(
                url=item["link"],
                title=item.get("title") or item["link"],
                snippet=item.get("snippet") or "",
                date=iso_date(_published(item)),
                provider=self.name,
            )
            for item in body.get("items") or []
            if item.get("link")
        ][:max_results]
