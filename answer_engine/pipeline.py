"""The answer pipeline: one async generator of typed events that every front-end consumes.

plan -> search -> fetch -> extract -> select -> generate -> cite
events: status* -> sources -> delta* -> citations -> related -> done | error
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

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
from answer_engine.embeddings import Embedder, passage_input
from answer_engine.passages import Passage, SourceDoc, group_sources, hybrid_rerank, rank_passages, select_passages
from answer_engine.prompt import STOP_STRINGS, build_messages, build_no_search_messages, build_related_messages
from answer_engine.text import truncate_words
from answer_engine.cache import Cache, MemoryCache, cache_key
from search_adapters.base import SearchError, SearchProvider, SearchResult
from search_adapters.filters import SearchFilters, apply_filters

log = logging.getLogger(__name__)

NO_SOURCES_ANSWER = "I could not find any sources for this question."
SOURCE_SNIPPET_CHARS = 300


NO_FILTERED_SOURCES_ANSWER = "I could not find any sources that match the search filters."
RELATED_MAX = 3
RELATED_MAX_TOKENS = 96
SEARCH_GRACE_S = 2.0  # on top of the providers' own deadline, for fusion and the cache
FILTER_OVERFETCH = 3  # with filters on, ask the provider for more results, then filter
DENSE_ON_THE_FLY = 32  # passages of pages outside the index embedded per question, best BM25 first
# search_context_size -> (share of the configured passages, share of the token budget)
CONTEXT_SIZES: dict[str, tuple[float, float]] = {"low": (0.4, 0.5), "medium": (1.0, 1.0), "high": (2.0, 2.0)}

ContextSize = Literal["low", "medium", "high"]
MAX_TOKENS_CEILING = 2048  # the most any request may ask for; the config may lower it


class AskOptions(BaseModel):
    """Per-request options; the OpenAI/Perplexity-compatible API maps its fields onto these."""

    disable_search: bool = Field(False, description="Answer from the model alone, without searching.")
    filters: SearchFilters = Field(default_factory=SearchFilters)
    search_context_size: ContextSize = Field("medium", description="How many passages go to the model.")
    related_questions: bool = Field(False, description="Also suggest up to 3 follow-up questions.")
    max_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_CEILING)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    stop: list[str] = Field(default_factory=list, max_length=4)
    instructions: str | None = Field(None, description="Extra instructions from the developer (an API system message).")


MAX_QUERY_CHARS = 2000
MAX_HISTORY_MESSAGES = 50


class AskRequest(BaseModel):
    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS, pattern=r"\S", description="The question.")
    history: list[ChatMessage] = Field(
        default_factory=list, max_length=MAX_HISTORY_MESSAGES, description="Earlier turns of the thread, oldest first."
    )
    options: AskOptions = Field(default_factory=AskOptions)


class RequestError(ValueError):
    """The request itself is unusable (empty question, too long, too much history)."""


def parse_related(text: str, *, exclude: str = "") -> list[str]:
    """Lines that are questions, without numbering or bullets, de-duplicated, at most three."""
    seen = {exclude.strip().lower()}
    out: list[str] = []
    for line in text.splitlines():
        q = re.sub(r"^\s*(?:[-*•]|\d+[.)]|Q\d*[:.])\s*", "", line).strip().strip('"').strip()
        if not q.endswith("?") or not 8 <= len(q) <= 200 or q.lower() in seen:
            continue
        seen.add(q.lower())
        out.append(q)
        if len(out) == RELATED_MAX:
            break
    return out


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)


class Pipeline:
    def __init__(
        self, settings: Settings, *, search: SearchProvider, fetcher: Fetcher, backend: Backend,
        embedder: Embedder | None = None, cache: Cache | None = None, closers: list[Any] | None = None,
    ) -> None:
        self.settings = settings
        self.embedder = embedder if settings.retrieval.dense_weight > 0 else None
        self.search = search
        self.fetcher = fetcher
        self.backend = backend
        self._backend_users: dict[int, int] = {}  # id(backend) -> answers using it (for hot swaps)
        self._swap_tasks: set[asyncio.Task[None]] = set()
        # Fetched-and-extracted pages by URL (extraction is the costliest stage before the model) and
        # search results by query: in-process, or shared in Redis.
        self.cache: Cache = cache if cache is not None else MemoryCache(max_items=settings.fetch.cache_pages)
        self.cache_hits = 0  # pages
        self.cache_misses = 0
        self._closers = closers or []  # clients to close with the pipeline (HTTP pools, Redis)

    def swap_backend(self, new: Backend) -> Backend:
        """Send new answers to ``new``; answers already generating finish on the old backend,
        which is closed once the last of them is done. Returns the old backend."""
        old = self.backend
        self.backend = new

        async def close_when_idle() -> None:
            deadline = time.monotonic() + self.settings.generation.timeout_s + 30
            while self._backend_users.get(id(old), 0) > 0 and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            for name in ("close", "aclose"):
                fn = getattr(old, name, None)
                if fn is not None:
                    result = fn()
                    if asyncio.iscoroutine(result):
                        await result
            log.info("previous backend closed after its last answer")

        task = asyncio.get_running_loop().create_task(close_when_idle())
        self._swap_tasks.add(task)
        task.add_done_callback(self._swap_tasks.discard)
        return old

    async def aclose(self) -> None:
        for closer in self._closers:
            try:
                await closer()
            except Exception:
                log.warning("closing %r failed", closer, exc_info=True)

    async def _cached_page(self, url: str) -> ExtractedPage | None:
        raw = await self.cache.get("page", cache_key(url))
        if raw is None:
            return None
        try:
            return ExtractedPage.model_validate(raw)
        except ValueError:
            return None

    async def _search(self, query: str, max_results: int, filters: SearchFilters) -> list[SearchResult]:
        """Search results, cached for a short while per (providers, query, count, filters)."""
        providers = sorted(p.name for p in getattr(self.search, "providers", [self.search]))
        key = cache_key(providers, query, max_results, filters.model_dump(mode="json"))
        raw = await self.cache.get("search", key)
        if raw is not None:
            try:
                return [SearchResult.model_validate(r) for r in raw]
            except ValueError:
                pass
        results = await self.search.search(query, max_results=max_results, filters=filters)
        await self.cache.set("search", key, [r.model_dump(mode="json") for r in results], self.settings.search.cache_ttl_s)
        return results

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
        if any(len(m.content) > limits.max_message_chars for m in request.history):
            raise RequestError(f"a history message is longer than {limits.max_message_chars} characters")
        ceiling = self.settings.generation.max_tokens_ceiling
        if request.options.max_tokens is not None and request.options.max_tokens > ceiling:
            raise RequestError(f"max_tokens must be at most {ceiling}")
        return request.model_copy(update={"query": query})

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

    async def run(
        self, request: AskRequest, *, trace: dict[str, Any] | None = None, generate: bool = True
    ) -> AsyncIterator[Event]:
        """The events of one answer.

        ``trace`` (for evaluation and benchmarks) receives the internals: the ranked passages that
        were selected, the numbered sources and the prompt messages. ``generate=False`` stops after
        passage selection (retrieval measurements).
        """
        trace = trace if trace is not None else {}
        try:
            request = self.validate(request)
        except RequestError as exc:
            yield ErrorEvent(stage="request", message=str(exc))
            return
        timings = Timings()
        t_start = time.perf_counter()

        options = request.options
        if options.disable_search:
            async with contextlib.aclosing(
                self._answer(request, [], timings, t_start, searched=False, trace=trace)
            ) as events:
                async for event in events:
                    yield event
            return

        # search
        query = self.search_query(request)
        yield StatusEvent(stage="search", message=f"Searching for: {query}")
        t = time.perf_counter()
        wanted = self.settings.search.max_results
        try:
            async with asyncio.timeout(self.settings.search.deadline_s + SEARCH_GRACE_S):
                results = await self._search(
                    query, wanted * FILTER_OVERFETCH if options.filters.active else wanted, options.filters
                )
        except TimeoutError:
            yield ErrorEvent(stage="search", message=f"search did not answer within {self.settings.search.deadline_s:g}s")
            return
        except SearchError as exc:
            log.warning("search failed: %s", exc)
            yield ErrorEvent(stage="search", message=f"search failed: {exc}")
            return
        except Exception as exc:
            log.exception("search failed")
            yield ErrorEvent(stage="search", message=f"search failed: {exc or type(exc).__name__}")
            return
        results = apply_filters(results, options.filters)[:wanted]
        timings.search_ms = _ms(t)

        if not results:
            message = NO_FILTERED_SOURCES_ANSWER if options.filters.active else NO_SOURCES_ANSWER
            yield SourcesEvent(sources=[])
            yield DeltaEvent(text=message)
            yield CitationsEvent(citations=[], answer=message)
            yield RelatedEvent(questions=[])
            timings.total_ms = _ms(t_start)
            yield DoneEvent(timings=timings, search_queries=1)
            return

        # fetch (pages read recently come from the cache, already extracted)
        yield StatusEvent(stage="fetch", message=f"Reading {len(results)} pages")
        t = time.perf_counter()
        sem = asyncio.Semaphore(self.settings.fetch.max_concurrency)
        cached = await asyncio.gather(*(self._cached_page(r.url) for r in results))
        hits = sum(c is not None for c in cached)
        self.cache_hits += hits
        self.cache_misses += len(cached) - hits

        async def fetch(i: int) -> tuple[FetchedPage | None, bool]:
            return (None, False) if cached[i] is not None else await self._fetch_one(results[i], sem)

        fetched = await asyncio.gather(*(fetch(i) for i in range(len(results))))
        timings.fetch_ms = _ms(t)

        # extract
        t = time.perf_counter()

        async def extract(i: int) -> ExtractedPage | None:
            if cached[i] is not None:
                return cached[i]
            page, from_snippet = fetched[i]
            assert page is not None
            got = await asyncio.to_thread(self._extract_one, page, results[i])
            if got is not None and not from_snippet:
                await self.cache.set("page", cache_key(results[i].url), got.model_dump(mode="json"),
                                     self.settings.fetch.cache_ttl_s)
            return got

        extracted = await asyncio.gather(*(extract(i) for i in range(len(results))))
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
        share_passages, share_budget = CONTEXT_SIZES[options.search_context_size]
        ranked = await asyncio.to_thread(rank_passages, query, pages, cfg.chunk_words, page_scores)
        if self.embedder is not None and ranked:
            dense = await asyncio.to_thread(self._dense_scores, query, pages, ranked)
            ranked = hybrid_rerank(ranked, dense, page_scores, weight=cfg.dense_weight)
        chosen = select_passages(
            ranked, max_passages=max(1, round(cfg.max_passages * share_passages)),
            token_budget=int(cfg.context_tokens * share_budget), min_relative_score=cfg.min_relative_score,
        )
        sources = group_sources(chosen, pages, snippet_pages)
        timings.select_ms = _ms(t)
        trace.update(results=results, chosen=chosen, sources=sources)
        yield SourcesEvent(sources=[self._source_card(s, results) for s in sources])
        if not generate:
            timings.total_ms = _ms(t_start)
            yield DoneEvent(timings=timings, search_queries=1)
            return
        # aclosing: when the client goes away, closing run() must close the generation too
        async with contextlib.aclosing(self._answer(request, sources, timings, t_start, searched=True, trace=trace)) as events:
            async for event in events:
                yield event

    def _dense_scores(self, query: str, pages: list[ExtractedPage], ranked: list[Passage]) -> list[float]:
        """Cosine similarity of each passage to the question. Passages of indexed pages were embedded
        when the index was built; others are embedded now, but only the best BM25 candidates."""
        assert self.embedder is not None
        q = self.embedder.encode([query])[0]
        stored = getattr(self.search, "stored_embedding", None)
        vectors: list[Any] = [stored(pages[p.page].url, p.text) if stored else None for p in ranked]
        missing = [i for i, v in enumerate(vectors) if v is None][:DENSE_ON_THE_FLY]
        if missing:
            fresh = self.embedder.encode([passage_input(pages[ranked[i].page].title, ranked[i].text) for i in missing])
            for i, v in zip(missing, fresh):
                vectors[i] = v
        return [float(v @ q) if v is not None else 0.0 for v in vectors]

    async def _answer(
        self, request: AskRequest, sources: list[SourceDoc], timings: Timings, t_start: float, *, searched: bool,
        trace: dict[str, Any],
    ) -> AsyncIterator[Event]:
        """Generate, check citations, suggest related questions, finish."""
        options = request.options
        if searched:
            messages = build_messages(request.query, sources, request.history, instructions=options.instructions)
        else:
            yield SourcesEvent(sources=[])
            messages = build_no_search_messages(request.query, request.history, instructions=options.instructions)
        trace["messages"] = messages
        gen = self.settings.generation
        params = GenerationParams(
            max_tokens=options.max_tokens or gen.max_tokens,
            temperature=gen.temperature if options.temperature is None else options.temperature,
            top_p=options.top_p or gen.top_p,
            stop=[*STOP_STRINGS, *options.stop],
        )
        cite = CitationStream([SourceText(s.n, s.text) for s in sources], threshold=self.settings.citations.support_threshold)
        raw: list[str] = []
        backend = self.backend  # this answer stays on this backend even if a new one is swapped in
        self._backend_users[id(backend)] = self._backend_users.get(id(backend), 0) + 1
        try:
            async with contextlib.aclosing(self._generate(request, backend, messages, params, cite, raw, timings,
                                                          t_start, searched, sources)) as events:
                async for event in events:
                    yield event
        finally:
            self._backend_users[id(backend)] -= 1
            if not self._backend_users[id(backend)]:
                del self._backend_users[id(backend)]

    async def _generate(
        self, request: AskRequest, backend: Backend, messages: list[ChatMessage], params: GenerationParams,
        cite: CitationStream, raw: list[str], timings: Timings, t_start: float, searched: bool,
        sources: list[SourceDoc],
    ) -> AsyncIterator[Event]:
        options = request.options
        gen = self.settings.generation
        yield StatusEvent(stage="generate", message="Writing the answer")
        try:
            timings.prompt_tokens = await asyncio.to_thread(backend.count_prompt_tokens, messages)
            t = time.perf_counter()
            t_first: float | None = None
            async with asyncio.timeout(gen.timeout_s):
                async with contextlib.aclosing(backend.stream(messages, params)) as stream:
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
        timings.completion_tokens = await asyncio.to_thread(backend.count_tokens, "".join(raw))
        if t_first is not None and timings.completion_tokens > 1 and t_end > t_first:
            timings.tokens_per_s = round((timings.completion_tokens - 1) / (t_end - t_first), 2)
        by_n = {s.n: s for s in sources}
        yield CitationsEvent(
            citations=[Citation(n=n, url=by_n[n].url, title=by_n[n].title) for n in cite.cited], answer=cite.text
        )
        related: list[str] = []
        if options.related_questions and cite.text.strip():
            t = time.perf_counter()
            related = await self._related(backend, request.query, cite.text)
            timings.related_ms = _ms(t)
        yield RelatedEvent(questions=related)
        timings.total_ms = _ms(t_start)
        finish = "length" if timings.completion_tokens >= params.max_tokens else "stop"
        log.info("answered in %.0f ms: %d sources, %d cited, %d prompt + %d completion tokens, first token %.0f ms",
                 timings.total_ms, len(sources), len(cite.cited), timings.prompt_tokens, timings.completion_tokens,
                 timings.ttft_ms)
        yield DoneEvent(timings=timings, finish_reason=finish, search_queries=1 if searched else 0)

    async def _related(self, backend: Backend, question: str, answer: str) -> list[str]:
        """A short second generation; a failure here costs the suggestions, never the answer."""
        messages = build_related_messages(question, answer)
        params = GenerationParams(max_tokens=RELATED_MAX_TOKENS, temperature=0.0, top_p=1.0)
        pieces: list[str] = []
        try:
            async with asyncio.timeout(self.settings.generation.timeout_s / 2):
                async with contextlib.aclosing(backend.stream(messages, params)) as stream:
                    async for piece in stream:
                        pieces.append(piece)
        except Exception as exc:
            log.warning("related questions failed: %s", exc)
        return parse_related("".join(pieces), exclude=question)

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
