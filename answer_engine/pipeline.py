"""The answer pipeline: one async generator of typed events that every front-end consumes.

plan -> search -> read (fetch + extract) -> select [-> plan -> search -> read -> select]* -> route ->
generate -> cite -> verify, one module each under ``answer_engine/stages/``; ``run`` is the sequence
of their calls over one :class:`RunState`. The bracket is a ``pro`` answer's later searches.
events: status* -> sources -> delta* -> citations -> related -> done | error
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Literal

from answer_engine.backends.base import Backend
from answer_engine.backends.holder import BackendHolder
from answer_engine.cache import Cache
from answer_engine.config import Settings
from answer_engine.documents import DocumentStore
from answer_engine.events import (
    CitationsEvent,
    DeltaEvent,
    DoneEvent,
    ErrorEvent,
    Event,
    RelatedEvent,
    Source,
    SourcesEvent,
    StatusEvent,
)
from answer_engine.passages import SourceDoc
from answer_engine.prompt import answer_prefix
from answer_engine.request import AskRequest, RequestError, check
from answer_engine.stages import compare, plan
from answer_engine.stages import generate as generating
from answer_engine.stages import route as routing
from answer_engine.stages import search as searching
from answer_engine.stages import verify as verifying
from answer_engine.stages.read import PageReader
from answer_engine.stages.select import Selector
from answer_engine.stages.state import RunState, StageError
from answer_engine.text import truncate_words
from search_adapters.base import SearchError, SearchProvider

log = logging.getLogger(__name__)

NO_SOURCES_ANSWER = "I could not find any sources for this question."
NO_FILTERED_SOURCES_ANSWER = "I could not find any sources that match the search filters."
SOURCE_SNIPPET_CHARS = 300


class Pipeline:
    """The stages, wired once (components.build_pipeline), and the run of one answer."""

    def __init__(
        self,
        settings: Settings,
        *,
        search: SearchProvider,
        reader: PageReader,
        selector: Selector,
        backend: Backend | BackendHolder,
        closers: list[Callable[[], Awaitable[Any]]] | None = None,
        documents: DocumentStore | None = None,
    ) -> None:
        self.settings = settings
        self.documents = documents  # where /v1/documents adds files (the index the search reads)
        self.search = search
        self.reader = reader
        self.selector = selector
        self.backends = (
            backend
            if isinstance(backend, BackendHolder)
            else BackendHolder(backend, drain_timeout_s=settings.generation.timeout_s)
        )
        self._closers = closers or []  # clients to close with the pipeline (HTTP pools, Redis)

    @property
    def backend(self) -> Backend:
        """The backend new answers go to."""
        return self.backends.current

    @property
    def cache(self) -> Cache:
        """The engine's cache (pages, searches, stored responses): Redis when REDIS_URL is set."""
        return self.reader.cache

    def validate(self, request: AskRequest) -> AskRequest:
        """The request within the configured limits; RequestError otherwise (before anything streams)."""
        return check(request, self.settings)

    async def start(self) -> None:
        """Load what the first question would otherwise wait for, all at once: the index, the
        embedding model and the answer model (each mostly reads files; together they overlap)."""
        jobs = [asyncio.to_thread(self._prepare_index), self._start_backend()]
        if self.selector.embedder is not None:
            jobs.append(asyncio.to_thread(self.selector.embedder.warm))
        await asyncio.gather(*jobs)

    def _prepare_index(self) -> None:
        """Load the index, and count how rare its terms are (the answerability gate and the verify
        stage's question coverage weigh the question's terms by it; the local index counts once per
        build, ~0.4 s for the shipped one, here in parallel with loading the model)."""
        self.search.prepare()
        if self.selector.store is not None:
            try:
                self.selector.store.idf([])  # the local index counts its terms on the first call
            except SearchError as exc:  # the first question asks again
                log.warning("counting the index's term rarity failed at start-up: %s", exc)

    async def _start_backend(self) -> None:
        """Load the model, then evaluate the start every answer prompt shares (the system prompt and
        the opening of the sources) once, so no question pays for it."""
        await self.backend.start()
        await self.backend.warm_prefix(answer_prefix())

    async def aclose(self) -> None:
        """Close the clients the pipeline was built with (not the backend: it may outlive the pipeline)."""
        for closer in self._closers:
            try:
                await closer()
            except Exception:
                log.warning("closing %r failed", closer, exc_info=True)

    async def run(
        self, request: AskRequest, *, trace: dict[str, Any] | None = None, generate: bool = True
    ) -> AsyncIterator[Event]:
        """The events of one answer.

        ``trace`` (for evaluation and benchmarks) receives the internals: the search results, the
        chosen passages, the numbered sources and the prompt messages. ``generate=False`` stops
        after passage selection (retrieval measurements).
        """
        try:
            request = self.validate(request)
        except RequestError as exc:
            yield ErrorEvent(stage="request", message=str(exc))
            return
        state = RunState(request=request, trace=trace if trace is not None else {})
        try:
            if request.options.disable_search:
                yield SourcesEvent(sources=[])
            else:
                async with contextlib.aclosing(self._find(state)) as found:
                    async for event in found:
                        yield event
                if state.settled:
                    return
                if not generate:
                    state.finish()
                    yield self._done(state)
                    return
            # aclosing: when the client goes away, closing run() closes the generation too
            async with contextlib.aclosing(self._answer(state)) as events:
                async for event in events:
                    yield event
        except StageError as exc:
            yield ErrorEvent(stage=exc.stage, message=exc.message)

    async def _find(self, state: RunState) -> AsyncIterator[Event]:
        """plan -> search -> read (-> the pro steps) -> select, their status events and the sources.
        When the engine answers itself (nothing found, nothing on topic) it yields that whole answer
        (``state.settled``)."""
        request, cfg = state.request, self.settings.plan
        # A structured answer must be JSON of the caller's schema: the engine's own prose abstentions
        # would not be, so the model answers it even from no or off-topic sources (its prompt says to
        # leave what the sources do not state empty).
        structured = request.options.structured
        use = plan.PlanUse()
        async with self.backends.lease() as backend:
            planner = backend if backend.judges else None
            state.query, rewritten = await plan.rewrite(request, planner, cfg, use)
            if rewritten:
                yield StatusEvent(stage="plan", message=f"Searching for the question as: {state.query}")
            state.search_type = plan.resolve(
                request.options.search_type or cfg.search_type, state.query, can_plan=planner is not None
            )
            yield StatusEvent(stage="search", message=f"Searching for: {state.query}")
            if not await searching.search(self.search, state, self.settings.search) and not structured:
                use.add_to(state.timings)
                filtered = request.options.filters.active
                message = NO_FILTERED_SOURCES_ANSWER if filtered else NO_SOURCES_ANSWER
                async for event in self._without_model(state, message, sources=False):
                    yield event
                return
            yield StatusEvent(stage="fetch", message=f"Reading {len(state.results)} pages")
            await self.reader.read(state)
            await self.selector.select(state)
            if state.search_type == "pro" and planner is not None:
                async with contextlib.aclosing(self._more_searches(state, planner, use)) as steps:
                    async for event in steps:
                        yield event
        use.add_to(state.timings)
        yield SourcesEvent(sources=[source_card(s) for s in state.sources])
        if not structured and self.selector.off_topic(state):
            async for event in self._without_model(state, verifying.not_covered(state.sources)):
                yield event

    async def _more_searches(
        self, state: RunState, backend: Backend, use: plan.PlanUse
    ) -> AsyncIterator[Event]:
        """pro: a comparison's two things each get a search of their own; any other question goes to
        the model, which reads what the searches found and names the missing fact's search, until it
        says the passages are enough, or the budget of searches, tokens or time is spent."""
        cfg = self.settings.plan
        deadline = time.monotonic() + cfg.deadline_s
        if options := plan.compared(state.query):
            for option in options[: cfg.max_searches - 1]:
                async for event in self._search_more(state, option, deadline):
                    yield event
            state.trace.setdefault("plan_stop", "compared")
            if cfg.compare and (c := compare.kind_of(state.query)) is not None:
                yield StatusEvent(
                    stage="plan", message=f"Checking {c.things[0]} and {c.things[1]} one at a time"
                )
                left = max(deadline - time.monotonic(), 0.1)
                await compare.check(
                    c,
                    state.sources,
                    backend,
                    use,
                    timeout_s=min(cfg.step_timeout_s, left),
                    urls=self.settings.generation.source_urls,
                )
                state.findings = compare.findings(c)
                state.trace["compare"] = compare.trace(c)
            return
        while True:
            left = deadline - time.monotonic()
            if out_of := plan.spent(cfg, searches=len(state.queries), left_s=left, use=use):
                state.trace["plan_stop"] = f"budget: {out_of}"
                return
            found = [(state.pages[p.page].title, p.text) for p in state.chosen[: plan.STEP_PASSAGES]]
            yield StatusEvent(stage="plan", message="Checking whether the pages found answer the question")
            query, why = await plan.next_search(
                state.query, state.queries, found, backend, cfg, use, timeout_s=left
            )
            if use.more:
                state.trace["plan_more"] = use.more
            if query is None:
                state.trace["plan_stop"] = why
                if why == "enough":
                    yield StatusEvent(stage="plan", message="The pages found are enough")
                return
            async for event in self._search_more(state, query, deadline):
                yield event
            if state.trace.get("plan_stop"):
                return

    async def _search_more(self, state: RunState, query: str, deadline: float) -> AsyncIterator[Event]:
        """One more search of a pro answer: its pages read and merged, the passages chosen again.
        A failure costs the step, not the answer (``plan_stop`` says so)."""
        yield StatusEvent(stage="search", message=f"Searching for: {query}")
        try:
            async with asyncio.timeout(max(deadline - time.monotonic(), 0.1)):
                results = await searching.search(self.search, state, self.settings.search, query)
                new = await self.reader.read(state, results)
        except (StageError, TimeoutError) as exc:
            log.warning("pro search for %r failed: %s", query, exc)
            state.trace["plan_stop"] = "search failed"
            return
        titles = ", ".join(p.title for p in new[:4]) or "nothing new"
        yield StatusEvent(stage="fetch", message=f"Read {len(new)} more pages: {titles}")
        await self.selector.select(state)

    async def _answer(self, state: RunState) -> AsyncIterator[Event]:
        """Route, generate (through cite), verify, suggest related questions, finish."""
        searched = not state.request.options.disable_search
        async with self.backends.lease() as backend:
            citations: CitationsEvent | None = None
            # route -> generate -> cite -> verify: on the answer model, or a router's stronger one
            async with contextlib.aclosing(
                routing.answer(state, backend, self.settings, searched=searched)
            ) as events:
                async for event in events:
                    if isinstance(event, CitationsEvent):
                        citations = event
                    yield event
            assert citations is not None
            related = (
                []
                if state.request.options.structured
                else await generating.related_questions(state, backend, citations.answer, self.settings)
            )
        yield RelatedEvent(questions=related)
        state.finish()
        t = state.timings
        params = state.trace["params"]
        finish = "length" if t.completion_tokens >= params.max_tokens else "stop"
        log.info(
            "answered in %.0f ms: %d sources, %d prompt + %d completion tokens, first token %.0f ms",
            t.total_ms,
            len(state.sources),
            t.prompt_tokens,
            t.completion_tokens,
            t.ttft_ms,
        )
        yield self._done(state, finish)

    @staticmethod
    def _done(state: RunState, finish: Literal["stop", "length"] = "stop") -> DoneEvent:
        return DoneEvent(
            timings=state.timings,
            finish_reason=finish,
            search_queries=len(state.queries),
            queries=state.queries,
            search_type=state.search_type,
            route=state.route,
            route_reason=state.route_reason,
        )

    @staticmethod
    async def _without_model(state: RunState, message: str, *, sources: bool = True) -> AsyncIterator[Event]:
        """An answer the engine gives itself: nothing found, or nothing found about the question (a
        small model would answer anyway, from its memory, citing a page that does not say it)."""
        state.settled = True
        if not sources:
            yield SourcesEvent(sources=[])
        yield DeltaEvent(text=message)
        yield CitationsEvent(citations=[], answer=message, answer_support="not_supported")
        yield RelatedEvent(questions=[])
        state.finish()
        yield Pipeline._done(state)


def source_card(source: SourceDoc) -> Source:
    return Source(
        n=source.n,
        url=source.url,
        title=source.title,
        snippet=truncate_words(source.passages[0].text, SOURCE_SNIPPET_CHARS),
        date=source.date,
        provider=source.provider,
        from_snippet=source.from_snippet,
    )
