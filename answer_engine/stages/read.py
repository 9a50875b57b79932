"""read: each search result as a page cut into passages.

- A page the local index stores comes from its passage store: passages (with ids) as they were
  cut when the index was built; no fetching, extracting or chunking per question.
- Any other page is fetched (SSRF-guarded, bounded, timed out), its main text extracted in a
  worker thread and cut by the one chunker; extracted pages are cached (in-process or Redis).
- A page that cannot be read falls back to the provider's snippet, and says so.
"""

from __future__ import annotations

import asyncio
import logging
import time

from answer_engine.cache import Cache, cache_key
from answer_engine.config import FetchSettings
from answer_engine.extract import ExtractedPage, ExtractionError, extract_page
from answer_engine.fetch import FetchedPage, Fetcher, FetchError
from answer_engine.passages import Passage, ReadPage, page_passages
from answer_engine.stages.state import RunState
from search_adapters.base import PassageStore, SearchResult

log = logging.getLogger(__name__)


class PageReader:
    """Reads the pages of search results; counts page-cache hits and misses (for /metrics)."""

    def __init__(
        self,
        settings: FetchSettings,
        *,
        chunk_words: int,
        cache: Cache,
        store: PassageStore | None = None,
        fetcher: Fetcher | None = None,
    ) -> None:
        self.settings = settings
        self.chunk_words = chunk_words
        self.cache = cache
        self.store = store
        self.fetcher = fetcher
        self.cache_hits = 0
        self.cache_misses = 0

    async def read(self, state: RunState, results: list[SearchResult] | None = None) -> list[ReadPage]:
        """The pages of ``results`` (default: the first search's), added to ``state.pages`` (a page
        already there, found again by a later search, is not read twice); returns the new pages."""
        seen = {p.url for p in state.pages}
        results = [r for r in (state.results if results is None else results) if r.url not in seen]
        start = len(state.pages)
        t = time.perf_counter()
        stored = [self.store.page_passages(r.url) if self.store is not None else None for r in results]
        web = [i for i, s in enumerate(stored) if s is None]
        cached = await asyncio.gather(*(self._cached_page(results[i].url) for i in web))
        hits = sum(c is not None for c in cached)
        self.cache_hits += hits
        self.cache_misses += len(cached) - hits
        sem = asyncio.Semaphore(self.settings.max_concurrency)
        to_fetch = [i for i, c in zip(web, cached) if c is None]
        fetched = dict(zip(to_fetch, await asyncio.gather(*(self._fetch(results[i], sem) for i in to_fetch))))
        state.timings.fetch_ms = round(state.timings.fetch_ms + state.ms_since(t), 1)

        t = time.perf_counter()
        extracted: dict[int, tuple[ExtractedPage | None, bool]] = {
            i: (c, False) for i, c in zip(web, cached) if c
        }
        got = await asyncio.gather(*(self._extract(results[i], *fetched[i]) for i in to_fetch))
        extracted.update(zip(to_fetch, got))
        pages: list[ReadPage] = []
        top = max((r.score for r in results if r.score is not None), default=0.0)
        for rank, (result, store_passages) in enumerate(zip(results, stored)):
            n = start + len(pages)
            if store_passages is not None:
                passages = [Passage(page=n, text=p.text, order=p.order, id=p.id) for p in store_passages]
                title, from_snippet = result.title, False
            else:
                page, from_snippet = extracted[rank]
                if page is None:
                    continue
                passages = page_passages(n, page.text, self.chunk_words)
                title = page.title
            # Providers without scores rank by position. Scores are scaled by this search's best, so
            # the pages of a pro answer's later searches weigh like the first search's.
            score = result.score / top if result.score is not None and top > 0 else 1.0 / (rank + 1)
            pages.append(
                ReadPage(
                    url=result.url,
                    title=title or result.url,
                    passages=passages,
                    score=score,
                    from_snippet=from_snippet,
                    date=result.date,
                    provider=result.provider,
                )
            )
        state.timings.extract_ms = round(state.timings.extract_ms + state.ms_since(t), 1)
        state.pages = [*state.pages, *pages]
        return pages

    async def _cached_page(self, url: str) -> ExtractedPage | None:
        raw = await self.cache.get("page", cache_key(url))
        if raw is None:
            return None
        try:
            return ExtractedPage.model_validate(raw)
        except ValueError:
            return None

    async def _fetch(self, result: SearchResult, sem: asyncio.Semaphore) -> tuple[FetchedPage, bool]:
        """The page, or its snippet as a plain-text page (True) when it cannot be fetched."""
        async with sem:
            try:
                if self.fetcher is None:
                    raise FetchError("not in the local index and web fetching is off")
                async with asyncio.timeout(self.settings.timeout_s):
                    return await self.fetcher.fetch(result.url), False
            except Exception as exc:  # any failure falls back to the provider's snippet
                log.warning("fetch failed for %s: %s; using the search snippet", result.url, exc)
                return FetchedPage(url=result.url, content_type="text/plain", text=result.snippet), True

    async def _extract(
        self, result: SearchResult, page: FetchedPage, from_snippet: bool
    ) -> tuple[ExtractedPage | None, bool]:
        got = await asyncio.to_thread(_extract_one, page, result)
        if got is not None and not from_snippet:
            await self.cache.set(
                "page", cache_key(result.url), got.model_dump(mode="json"), self.settings.cache_ttl_s
            )
        return got, from_snippet


def _extract_one(page: FetchedPage, result: SearchResult) -> ExtractedPage | None:
    try:
        extracted = extract_page(page)
    except ExtractionError as exc:
        log.warning("%s", exc)
        if not result.snippet:
            return None
        extracted = ExtractedPage(url=result.url, title=result.title, text=result.snippet, method="snippet")
    extracted.title = result.title or extracted.title  # the result's title, not "X - Site Name"
    return extracted
