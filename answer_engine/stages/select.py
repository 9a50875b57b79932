"""select: rank the passages of the pages read (BM25 over the candidates, weighted by the page's
search score, mixed with embedding similarity), keep the best that fit the token budget, and
number them as sources.

Embeddings of stored passages come from the index by passage id; passages of pages read just now
are embedded here, but only the best BM25 candidates.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from typing import Any

from answer_engine.config import RetrievalSettings
from answer_engine.embeddings import Embedder, passage_input
from answer_engine.passages import (
    Passage,
    ReadPage,
    SourceDoc,
    coverage,
    focus_passages,
    group_sources,
    hybrid_rerank,
    rank_passages,
    select_passages,
)
from answer_engine.stages.state import RunState
from answer_engine.text import approx_tokens, terms
from search_adapters.base import PassageStore, SearchError

log = logging.getLogger(__name__)

# With retrieval.focus, passages are chosen within this many times the token budget, then cut down
# to their best sentences within the budget itself.
FOCUS_WIDENS = 2
DENSE_ON_THE_FLY = 32  # passages of pages outside the index embedded per question, best BM25 first
# search_context_size -> (share of the configured passages, share of the token budget)
CONTEXT_SIZES: dict[str, tuple[float, float]] = {"low": (0.4, 0.5), "medium": (1.0, 1.0), "high": (2.0, 2.0)}


class Selector:
    def __init__(
        self,
        settings: RetrievalSettings,
        *,
        embedder: Embedder | None = None,
        store: PassageStore | None = None,
    ) -> None:
        self.settings = settings
        self.embedder = embedder if settings.dense_weight > 0 else None
        self.store = store

    async def select(self, state: RunState) -> list[SourceDoc]:
        """Rank the passages of ``state.pages`` against each search of the answer (one for ``fast``),
        keep the best that fit, and number them as sources. With several searches each one's best
        passages take turns, so the page a later search found for the missing fact is not crowded
        out by the first search's pages."""
        t = time.perf_counter()
        cfg = self.settings
        pages = state.pages
        queries = state.queries or [state.query]
        share_passages, share_budget = CONTEXT_SIZES[state.request.options.search_context_size]
        max_passages = max(1, round(cfg.max_passages * share_passages))
        budget = int(cfg.context_tokens * share_budget)
        per_query: list[list[Passage]] = []
        for i, query in enumerate(queries):
            mine = _fresh(pages) if i else pages
            ranked = await asyncio.to_thread(rank_passages, query, mine) if pages else []
            if self.embedder is not None and ranked:
                dense = await asyncio.to_thread(self._dense_scores, query, pages, ranked)
                if i == 0:  # how relevant the sources are to the question itself (the off-topic gate)
                    state.relevance = round(max(dense), 4)
                ranked = hybrid_rerank(ranked, dense, [p.score for p in pages], weight=cfg.dense_weight)
            chosen = select_passages(
                ranked,
                max_passages=max_passages,
                # focus cuts the chosen passages down to the budget: choose them as if it were larger
                token_budget=budget * FOCUS_WIDENS if cfg.focus else budget,
                min_relative_score=cfg.min_relative_score,
            )
            per_query.append(focus_passages(query, chosen, budget) if cfg.focus else chosen)
        state.chosen = per_query[0] if len(per_query) == 1 else take_turns(per_query, max_passages, budget)
        state.sources = group_sources(state.chosen, pages)
        if state.chosen:
            state.coverage, state.term_weights = await asyncio.to_thread(
                self._coverage, queries[0], state.chosen
            )
        state.timings.select_ms = round(state.timings.select_ms + state.ms_since(t), 1)
        state.trace.update(
            chosen=state.chosen,
            sources=state.sources,
            relevance=state.relevance,
            coverage=state.coverage,
            term_weights=state.term_weights,
            answerability=answerability(state),
        )
        return state.sources

    def off_topic(self, state: RunState) -> bool:
        """No passage answers the question, by one of two signals measured before the model is asked:
        the best embedding similarity is under ``retrieval.min_relevance``, or the answerability
        (:func:`answerability`) is under ``retrieval.min_answerability``. 0 turns a signal off."""
        floor, bar = self.settings.min_relevance, self.settings.min_answerability
        if floor and state.relevance is not None and state.relevance < floor:
            return True
        score = answerability(state)
        return bool(bar) and score is not None and score < bar

    def _coverage(self, query: str, chosen: list[Passage]) -> tuple[float | None, dict[str, float]]:
        """(the best passage's coverage of the question, the rarity of the question's terms)"""
        wanted = terms(query)
        idf = None
        if self.store is not None and wanted:
            try:
                idf = self.store.idf(wanted)
            except SearchError as exc:  # the check costs its weights, never the answer
                log.warning("term rarity unavailable (%s); weighing the question's terms equally", exc)
        return coverage(wanted, chosen, idf), idf or {}

    def _dense_scores(self, query: str, pages: list[ReadPage], ranked: list[Passage]) -> list[float]:
        """Cosine similarity of each passage to the question."""
        assert self.embedder is not None
        q = self.embedder.encode([query])[0]
        vectors: list[Any] = [None] * len(ranked)
        stored = [i for i, p in enumerate(ranked) if p.id is not None]
        if stored and self.store is not None:
            for i, v in zip(stored, self.store.vectors([ranked[i].id for i in stored])):  # type: ignore[misc]
                vectors[i] = v
        missing = [i for i, v in enumerate(vectors) if v is None][:DENSE_ON_THE_FLY]
        if missing:
            fresh = self.embedder.encode(
                [passage_input(pages[ranked[i].page].title, ranked[i].text) for i in missing]
            )
            for i, v in zip(missing, fresh):
                vectors[i] = v
        return [float(v @ q) if v is not None else 0.0 for v in vectors]


def answerability(state: RunState) -> float | None:
    """Whether the passages can answer the question, from 0 to 1: the mean of the best passage's
    embedding similarity to the question and its coverage of the question's rarity-weighted terms
    (coverage alone without embeddings). Either signal alone lets much through: an off-topic page
    can be close in meaning ("logging" for deforestation), and a page can hold a question's common
    words but not the ones that name what is asked about."""
    if state.coverage is None:
        return state.relevance
    if state.relevance is None:
        return state.coverage
    return round((state.relevance + state.coverage) / 2, 4)


def _fresh(pages: list[ReadPage]) -> list[ReadPage]:
    """The pages with copies of their passages: each search's ranking scores its own copies."""
    return [replace(page, passages=[replace(p) for p in page.passages]) for page in pages]


def take_turns(lists: list[list[Passage]], max_passages: int, token_budget: int) -> list[Passage]:
    """The best passage of each list, then the second best of each, ...: no passage twice, at most
    ``max_passages``, within ``token_budget`` (a passage that does not fit is passed over)."""
    chosen: list[Passage] = []
    seen: set[tuple[int, int]] = set()
    used = 0
    for rank in range(max((len(x) for x in lists), default=0)):
        for ranked in lists:
            if rank >= len(ranked) or len(chosen) >= max_passages:
                continue
            p = ranked[rank]
            cost = approx_tokens(p.text)
            if (p.page, p.order) in seen or (chosen and used + cost > token_budget):
                continue
            seen.add((p.page, p.order))
            chosen.append(p)
            used += cost
    return chosen
