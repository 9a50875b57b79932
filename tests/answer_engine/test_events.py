"""Typed events: one model per type, a discriminated union, and every SSE frame named."""

import json

import pytest
from pydantic import ValidationError

from answer_engine.events import (
    CitationsEvent,
    DeltaEvent,
    DoneEvent,
    ErrorEvent,
    EventType,
    SourcesEvent,
    Timings,
    parse_event,
    sse_frame,
)


@pytest.mark.parametrize(
    "event",
    [
        DeltaEvent(text="Hello [1]"),
        SourcesEvent(sources=[{"n": 1, "url": "https://x.example", "title": "X"}]),
        CitationsEvent(citations=[{"n": 1, "url": "https://x.example", "title": "X"}], answer="Hi [1]."),
        DoneEvent(timings=Timings(total_ms=12.5), finish_reason="length", search_queries=1),
        ErrorEvent(stage="search", message="no provider answered"),
    ],
)
def test_every_event_round_trips_through_its_sse_frame(event):
    frame = sse_frame(event)
    assert frame["event"] == str(event.type)
    assert parse_event(frame["data"]) == event


def test_the_type_field_picks_the_model_and_bad_frames_are_refused():
    assert parse_event(json.dumps({"type": "delta", "text": "x"})) == DeltaEvent(text="x")
    with pytest.raises(ValidationError):
        parse_event(json.dumps({"type": "nope"}))
    with pytest.raises(ValidationError):
        parse_event(json.dumps({"type": "delta"}))  # a delta without text
    assert {t.value for t in EventType} == {
        "status",
        "sources",
        "delta",
        "citations",
        "related",
        "done",
        "error",
    }
