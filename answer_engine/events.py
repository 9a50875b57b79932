"""Typed pipeline events: status* -> sources -> delta* -> citations -> related -> done | error.

Every front-end consumes the same stream. The SSE endpoint sends each event as a frame whose
``event:`` name is the event type and whose ``data:`` is the event's JSON.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, Field, TypeAdapter


class EventType(StrEnum):
    STATUS = "status"
    SOURCES = "sources"
    DELTA = "delta"
    CITATIONS = "citations"
    RELATED = "related"
    DONE = "done"
    ERROR = "error"


class Source(BaseModel):
    n: int = Field(description="The number the answer cites this source by: [n].")
    url: str
    title: str
    snippet: str = ""
    date: str | None = None
    provider: str = ""
    from_snippet: bool = Field(
        False, description="True when the page could not be read and only the search snippet was used."
    )


class Citation(BaseModel):
    n: int
    url: str
    title: str
    evidence: str | None = Field(
        None,
        description="The passage text of this source that the verifier accepted for the sentences citing it.",
    )


AnswerSupport = Literal["supported", "partly_supported", "not_supported"]


class SentenceSupport(BaseModel):
    """One sentence of the answer and whether the sources it cites state it."""

    text: str = Field(description="The sentence as the model wrote it, citation markers removed.")
    citations: list[int] = Field(default_factory=list, description="The sources it cited.")
    supported: bool | None = Field(
        description="True: a cited source states it; False: none does (the sentence was dropped); "
        "None: the verifier could not tell (kept, without counting as supported)."
    )
    evidence: str | None = Field(None, description="The passage text that states it, when supported.")


class StatusEvent(BaseModel):
    type: Literal[EventType.STATUS] = EventType.STATUS
    stage: str
    message: str


class SourcesEvent(BaseModel):
    type: Literal[EventType.SOURCES] = EventType.SOURCES
    sources: list[Source]


class DeltaEvent(BaseModel):
    type: Literal[EventType.DELTA] = EventType.DELTA
    text: str


class CitationsEvent(BaseModel):
    type: Literal[EventType.CITATIONS] = EventType.CITATIONS
    citations: list[Citation]
    answer: str = Field(
        description="The final answer text: the concatenation of the deltas, less the sentences that "
        "verification found no source states (or, when none is left, a plain statement that the sources "
        "found do not answer the question). Faces show this text once it arrives."
    )
    answer_support: AnswerSupport | None = Field(
        None,
        description="supported: every checked sentence is stated by a source it cites; partly_supported: "
        "some are not, or could not be checked; not_supported: none is (the answer says so). "
        "None: not verified.",
    )
    sentences: list[SentenceSupport] = Field(default_factory=list, description="Per-sentence verdicts.")


class RelatedEvent(BaseModel):
    type: Literal[EventType.RELATED] = EventType.RELATED
    questions: list[str] = []


class Timings(BaseModel):
    search_ms: float = 0.0
    fetch_ms: float = 0.0
    extract_ms: float = 0.0
    select_ms: float = 0.0
    prompt_tokens: int = 0
    ttft_ms: float = Field(0.0, description="From the start of generation to the first token.")
    generation_ms: float = 0.0
    completion_tokens: int = 0
    tokens_per_s: float = Field(
        0.0, description="Decode speed: tokens after the first, per second after the first."
    )
    related_ms: float = 0.0
    verify_ms: float = Field(0.0, description="Checking the answer's sentences against their sources.")
    verify_checks: int = Field(0, description="Yes/no questions the verifier asked the model.")
    plan_ms: float = Field(0.0, description="The plan stage's model calls: the rewrite, the next searches.")
    plan_calls: int = 0
    plan_prompt_tokens: int = 0
    plan_completion_tokens: int = 0
    total_ms: float = 0.0


class DoneEvent(BaseModel):
    type: Literal[EventType.DONE] = EventType.DONE
    timings: Timings
    finish_reason: Literal["stop", "length"] = "stop"
    search_queries: int = Field(0, description="Search queries sent for this answer.")
    queries: list[str] = Field(default_factory=list, description="The searches made, in order.")
    search_type: Literal["fast", "pro"] | None = Field(
        None, description="How this answer searched (auto resolves to one of them); None: no search."
    )
    route: Literal["local", "strong"] | None = Field(
        None, description="generation.backend = router: which model wrote the answer; None: no router."
    )
    route_reason: str | None = Field(
        None, description="Why the stronger model was asked, or why it did not answer (then: local)."
    )


class ErrorEvent(BaseModel):
    type: Literal[EventType.ERROR] = EventType.ERROR
    stage: str
    message: str


Event = Annotated[
    StatusEvent | SourcesEvent | DeltaEvent | CitationsEvent | RelatedEvent | DoneEvent | ErrorEvent,
    Field(discriminator="type"),
]
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def parse_event(data: str | bytes) -> Event:
    return EVENT_ADAPTER.validate_json(data)


def sse_frame(event: BaseModel) -> dict[str, str]:
    """One named SSE frame for sse-starlette: every frame carries its event name."""
    return {"event": str(event.type), "data": event.model_dump_json()}  # type: ignore[attr-defined]
