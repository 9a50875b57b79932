"""search: the configured provider (one, or several fused) under a deadline, its results cached for
a while and filtered by the request's filters."""

from __future__ import annotations

import asyncio
import logging
import time

from answer_engine.cache import Cache, cache_key
from answer_engine.config import SearchSettings
from answer_engine.stages.state import RunState, StageError
from search_adapters.base import SearchError, SearchProvider, SearchResult
from search_adapters.filters import SearchFilters, apply_filters

log = logging.getLogger(__name__)

SEARCH_GRACE_S = 2.0  # on top of the providers' own deadline, for fusion and the cache
FILTER_OVERFETCH = 3  # with filters on, ask the provider for more results, then filter


class CachedSearch(SearchProvider):
    """A provider whose results are cached for ``ttl_s`` per (providers, query, count, filters).

    ``names``: the providers behind ``inner`` (the key changes when the configuration does)."""

    def __init__(self, inner: SearchProvider, cache: Cache, *, ttl_s: float, names: list[str]) -> None:
        self.inner = inner
        self.cache = cache
        self.ttl_s = ttl_s
        self.names = sorted(names)
        self.name = inner.name

    def prepare(self) -> None:
        self.inner.prepare()

    async def generation(self) -> str:
        return await self.inner.generation()

    async def search(
        self, query: str, *, max_results: int, filters: SearchFilters | None = None
    ) -> list[SearchResult]:
        filters = filters or SearchFilters()
        generation = await self.inner.generation()  # a changed index is a new key: no stale hits
        key = cache_key(self.names, generation, query, max_results, filters.model_dump(mode="json"))
        raw = await self.cache.get("search", key)
        if raw is not None:
            try:
                return [SearchResult.model_validate(r) for r in raw]
            except ValueError:
                pass
        results = await self.inner.search(query, max_results=max_results, filters=filters)
        await self.cache.set("search", key, [r.model_dump(mode="json") for r in results], self.ttl_s)
        return results


async def search(
    provider: SearchProvider, state: RunState, settings: SearchSettings, query: str | None = None
) -> list[SearchResult]:
    """Up to ``max_results`` results for ``query`` (default ``state.query``) that pass the request's
    filters. Each search is counted and timed into the state; the first one's results are
    ``state.results``, later ones (pro searches) are only returned."""
    query = query or state.query
    filters = state.request.options.filters
    wanted = settings.max_results
    t = time.perf_counter()
    try:
        async with asyncio.timeout(settings.deadline_s + SEARCH_GRACE_S):
            results = await provider.search(
                query,
                max_results=wanted * FILTER_OVERFETCH if filters.active else wanted,
                filters=filters,
            )
    except TimeoutError:
        raise StageError("search", f"search did not answer within {settings.deadline_s:g}s") from None
    except SearchError as exc:
        log.warning("search failed: %s", exc)
        raise StageError("search", f"search failed: {exc}") from exc
    except Exception as exc:
        log.exception("search failed")
        raise StageError("search", f"search failed: {exc or type(exc).__name__}") from exc
    state.queries.append(query)
    results = apply_filters(results, filters)[:wanted]
    state.timings.search_ms = round(state.timings.search_ms + state.ms_since(t), 1)
    if len(state.queries) == 1:
        state.results = results
    state.trace.setdefault("results", []).extend(results)
    return results
