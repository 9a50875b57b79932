"""What one answer carries from stage to stage."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

from answer_engine.events import Timings
from answer_engine.passages import Passage, ReadPage, SourceDoc
from answer_engine.request import AskRequest, ChatMessage
from search_adapters.base import SearchResult


class StageError(Exception):
    """A stage could not go on; the answer ends with an error event naming the stage."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(message)
        self.stage = stage
        self.message = message


@dataclass
class RunState:
    """One answer's state: the request, the search query, what each stage found, and the timings.

    ``trace`` is for evaluation and benchmarks: the internals a caller asked to see (the search
    results, the chosen passages, the numbered sources, the prompt messages)."""

    request: AskRequest
    trace: dict[str, Any] = field(default_factory=dict)
    timings: Timings = field(default_factory=Timings)
    started: float = field(default_factory=time.perf_counter)
    query: str = ""  # the (standalone) search query of the question
    queries: list[str] = field(default_factory=list)  # every search made, in order
    search_type: Literal["fast", "pro"] | None = None  # once the plan stage has chosen
    results: list[SearchResult] = field(default_factory=list)
    pages: list[ReadPage] = field(default_factory=list)
    chosen: list[Passage] = field(default_factory=list)
    sources: list[SourceDoc] = field(default_factory=list)
    messages: list[ChatMessage] = field(default_factory=list)
    relevance: float | None = None  # the best passage's embedding similarity to the question
    coverage: float | None = None  # the rarity-weighted share of the question's terms one passage holds
    term_weights: dict[str, float] = field(default_factory=dict)  # the question's terms' rarity (idf)
    settled: bool = False  # the engine answered itself, without the model (nothing found, off topic)
    route: Literal["local", "strong"] | None = None  # which model of a router wrote the answer
    route_reason: str | None = None  # why the strong one was asked, or why it did not answer
    findings: str | None = None  # what the engine checked in the sources, for the answer prompt (compare)
    answer: str = ""  # the answer as the cite stage let it through
    raw_answer: str = ""  # the answer as the model wrote it

    def ms_since(self, start: float) -> float:
        return round((time.perf_counter() - start) * 1000, 1)

    def finish(self) -> None:
        self.timings.total_ms = self.ms_since(self.started)
