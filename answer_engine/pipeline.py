"""The answer pipeline: one async generator of typed events that every front-end consumes.

plan -> search -> fetch -> extract -> select -> generate -> cite
events: status* -> sources -> delta* -> citations -> related -> done | error
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from pydantic import BaseModel, Field

from answer_engine.backends.base import Backend, BackendError, ChatMessage, GenerationParams
from answer_engine.citations import CitationStream, SourceText
from answer_engine.config import Settings
from answer_engine.events import (
    Citation,
    CitationsEvent,
    DeltaEvent,
    DoneEvent,
    ErrorEvent,
    Event,
    RelatedEvent,
    Source,
    SourcesEvent,
    StatusEvent,
    Timings,
)
from answer_engine.extract import ExtractedPage, ExtractionError, extract_page
from answer_engine.fetch import FetchedPage, Fetcher
from answer_engine.passages import SourceDoc, group_sources, rank_passages, select_passages
from answer_engine.prompt import STOP_STRINGS, build_messages
from answer_engine.text import truncate_words
from search_adapters.base import SearchProvider, SearchResult

log = logging.getLogger(__name__)

NO_SOURCES_ANSWER = "I could not find any sources for this question."
SOURCE_SNIPPET_CHARS = 300


class AskRequest(BaseModel):
    query: str = Field(description="The question.")
    history: list[ChatMessage] = Field(default_factory=list, description="Earlier turns of the thread, oldest first.")


class RequestError(ValueError):
    """The request itself is unusable (empty question, too long, too much history)."""


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)


class Pipeline:
    def __init__(self, settings: Settings, *, search: SearchProvider, fetcher: Fetcher, backend: Backend) -> None:
        self.settings = settings
        self.search = search
        self.fetcher = fetcher
        self.backend = backend

    # -- plan

    def validate(self, request: AskRequest) -> AskRequest:
        """Check a request before anything streams; raises RequestError with a clear message."""
        limits = self.settings.server
        query = request.query.strip()
        if not query:
            raise RequestError("query must not be empty")
        if len(query) > limits.max_query_chars:
            raise RequestError(f"query is longer than {limits.max_query_chars} characters")
        if len(request.history) > limits.max_history_messages:
            raise RequestError(f"history has more than {limits.max_history_messages} messages")
        return AskRequest(query=query, history=request.history)

    @staticmethod
    def search_query(request: AskRequest) -> str:
        """A follow-up like "and when did he die?" searches with the previous question for context."""
        previous = [m.content for m in request.history if m.role == "user"]
        if previous and len(request.query.split()) < 8:
            return f"{previous[-1]} {request.query}"
        return request.query

    # -- stages

    async def _fetch_one(self, result: SearchResult, sem: asyncio.Semaphore) -> tuple[FetchedPage, bool]:
        async with sem:
            try:
                async with asyncio.timeout(self.settings.fetch.timeout_s):
                    return await self.fetcher.fetch(result.url), False
            except Exception as exc:  # any failure falls back to the provider's snippet
                log.warning("fetch failed for %s: %s; using the search snippet", result.url, exc)
                return FetchedPage(url=result.url, content_type="text/plain", text=result.snippet), True

    @staticmethod
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

    # -- the run

    async def run(self, request: AskRequest) -> AsyncIterator[Event]:
        try:
            request = self.validate(request)
        except RequestError as exc:
            yield ErrorEvent(stage="request", message=str(exc))
            return
        timings = Timings()
        t_start = time.perf_counter()

        # search
        query = self.search_query(request)
        yield StatusEvent(stage="search", message=f"Searching for: {query}")
        t = time.perf_counter()
        try:
            async with asyncio.timeout(self.settings.fetch.timeout_s * 2):
                results = await self.search.search(query, max_results=self.settings.search.max_results)
        except Exception as exc:
            log.exception("search failed")
            yield ErrorEvent(stage="search", message=f"search failed: {exc or type(exc).__name__}")
            return
        timings.search_ms = _ms(t)

        if not results:
            yield SourcesEvent(sources=[])
            yield DeltaEvent(text=NO_SOURCES_ANSWER)
            yield CitationsEvent(citations=[], answer=NO_SOURCES_ANSWER)
            yield RelatedEvent(questions=[])
            timings.total_ms = _ms(t_start)
            yield DoneEvent(timings=timings)
            return

        # fetch
        yield StatusEvent(stage="fetch", message=f"Reading {len(results)} pages")
        t = time.perf_counter()
        sem = asyncio.Semaphore(self.settings.fetch.max_concurrency)
        fetched = await asyncio.gather(*(self._fetch_one(r, sem) for r in results))
        timings.fetch_ms = _ms(t)

        # extract
        t = time.perf_counter()
        extracted = await asyncio.gather(
            *(asyncio.to_thread(self._extract_one, page, r) for (page, _), r in zip(fetched, results))
        )
        pages: list[ExtractedPage] = []
        page_scores: list[float] = []
        snippet_pages: set[int] = set()
        for rank, ((_, from_snippet), page, result) in enumerate(zip(fetched, extracted, results)):
            if page is not None:
                if from_snippet:
                    snippet_pages.add(len(pages))
                pages.append(page)
                # Providers without scores rank by position.
                page_scores.append(result.score if result.score is not None else 1.0 / (rank + 1))
        timings.extract_ms = _ms(t)

        # select
        t = time.perf_counter()
        cfg = self.settings.retrieval
        ranked = await asyncio.to_thread(rank_passages, query, pages, cfg.chunk_words, page_scores)
        chosen = select_passages(
            ranked, max_passages=cfg.max_passages, token_budget=cfg.context_tokens,
            min_relative_score=cfg.min_relative_score,
        )
        sources = group_sources(chosen, pages, snippet_pages)
        timings.select_ms = _ms(t)
        yield SourcesEvent(sources=[self._source_card(s, results) for s in sources])

        # generate + cite
        messages = build_messages(request.query, sources, request.history)
        gen = self.settings.generation
        params = GenerationParams(max_tokens=gen.max_tokens, temperature=gen.temperature, top_p=gen.top_p, stop=STOP_STRINGS)
        cite = CitationStream([SourceText(s.n, s.text) for s in sources], threshold=self.settings.citations.support_threshold)
        raw: list[str] = []
        yield StatusEvent(stage="generate", message="Writing the answer")
        try:
            timings.prompt_tokens = await asyncio.to_thread(self.backend.count_prompt_tokens, messages)
            t = time.perf_counter()
            t_first: float | None = None
            async with asyncio.timeout(gen.timeout_s):
                async with contextlib.aclosing(self.backend.stream(messages, params)) as stream:
                    async for piece in stream:
                        if t_first is None:
                            t_first = time.perf_counter()
                            timings.ttft_ms = _ms(t)
                        raw.append(piece)
                        shown = cite.feed(piece)
                        if shown:
                            yield DeltaEvent(text=shown)
            t_end = time.perf_counter()
        except TimeoutError:
            yield ErrorEvent(stage="generate", message=f"the model did not finish within {gen.timeout_s:g}s")
            return
        except BackendError as exc:
            yield ErrorEvent(stage="generate", message=str(exc))
            return
        except Exception as exc:
            log.exception("generation failed")
            yield ErrorEvent(stage="generate", message=f"generation failed: {type(exc).__name__}: {exc}")
            return
        tail = cite.finish()
        if tail:
            yield DeltaEvent(text=tail)

        timings.generation_ms = round((t_end - t) * 1000, 1)
        timings.completion_tokens = await asyncio.to_thread(self.backend.count_tokens, "".join(raw))
        if t_first is not None and timings.completion_tokens > 1 and t_end > t_first:
            timings.tokens_per_s = round((timings.completion_tokens - 1) / (t_end - t_first), 2)
        by_n = {s.n: s for s in sources}
        yield CitationsEvent(
            citations=[Citation(n=n, url=by_n[n].url, title=by_n[n].title) for n in cite.cited], answer=cite.text
        )
        yield RelatedEvent(questions=[])
        timings.total_ms = _ms(t_start)
        yield DoneEvent(timings=timings)

    @staticmethod
    def _source_card(source: SourceDoc, results: list[SearchResult]) -> Source:
        result = next((r for r in results if r.url == source.url), None)
        return Source(
            n=source.n,
            url=source.url,
            title=source.title,
            snippet=truncate_words(source.passages[0].text, SOURCE_SNIPPET_CHARS),
            date=result.date if result else None,
            provider=result.provider if result else "",
            from_snippet=source.from_snippet,
        )
