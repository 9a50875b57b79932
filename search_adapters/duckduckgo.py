"""DuckDuckGo (and the other engines ddgs meta-searches) through the ddgs package: no key needed.

ddgs is synchronous and does its own HTTP, so it runs in a worker thread with its own timeout; its
text() returns [{"title", "href", "body"}]; it raises RatelimitException / TimeoutException /
DDGSException."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from search_adapters.base import SearchError, SearchProvider, SearchResult
from search_adapters.filters import SearchFilters

TIME_LIMITS = {"hour": "d", "day": "d", "week": "w", "month": "m", "year": "y"}


def _default_client(timeout_s: float) -> Any:
    from ddgs import DDGS

    return DDGS(timeout=int(max(1, timeout_s)))


class DuckDuckGo(SearchProvider):
    name = "ddgs"

    def __init__(
        self,
        *,
        timeout_s: float = 8.0,
        region: str = "us-en",
        backend: str = "auto",
        client_factory: Callable[[float], Any] = _default_client,
    ) -> None:
        self.timeout_s = timeout_s
        self.region = region
        self.backend = backend
        self.client_factory = client_factory

    def _search_sync(self, query: str, max_results: int, timelimit: str | None) -> list[dict]:
        from ddgs.exceptions import DDGSException, RatelimitException, TimeoutException

        try:
            return list(
                self.client_factory(self.timeout_s).text(
                    query,
                    region=self.region,
                    safesearch="moderate",
                    timelimit=timelimit,
                    max_results=max_results,
                    backend=self.backend,
                )
                or []
            )
        except RatelimitException as exc:
            raise SearchError(f"{self.name}: rate limited: {exc}", provider=self.name, status=429) from exc
        except TimeoutException as exc:
            raise SearchError(f"{self.name}: timed out: {exc}", provider=self.name) from exc
        except DDGSException as exc:
            # ddgs raises DDGSException("No results found.") for an empty result: that is an answer
            if "no results" in str(exc).lower():
                return []
            raise SearchError(f"{self.name}: {exc}", provider=self.name) from exc

    async def search(
        self, query: str, *, max_results: int, filters: SearchFilters | None = None
    ) -> list[SearchResult]:
        timelimit = TIME_LIMITS[filters.recency] if filters is not None and filters.recency else None
        try:
            async with asyncio.timeout(self.timeout_s + 1):
                rows = await asyncio.to_thread(self._search_sync, query, max_results, timelimit)
        except TimeoutError as exc:
            raise SearchError(
                f"{self.name}: timed out after {self.timeout_s:g}s", provider=self.name
            ) from exc
        return [
            SearchResult(
                url=row["href"],
                title=row.get("title") or row["href"],
                snippet=row.get("body") or "",
                provider=self.name,
            )
            for row in rows
            if row.get("href")
        ][:max_results]
