"""route: which model writes the answer, then generate -> cite -> verify on it.

Without a router (``Backend.stronger()`` is None) the answer model writes it, as always. With one
(``generation.backend = "router"``), the ``[router]`` policy decides:
- before generating: retrieval is not confident (the best passage's embedding similarity under
  ``escalate_below_relevance``): the strong backend writes it;
- after: the local answer is checked by the verifier, and when it is not ``supported``
  (``escalate_unsupported``) the strong backend writes it again. The local answer's deltas are then
  held back until the check, so a client never sees two answers run into each other.
A strong backend that fails costs the escalation, never the answer: the local answer is given, and
a status event and the done event's ``route_reason`` say so.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from answer_engine.backends.base import Backend
from answer_engine.config import Settings
from answer_engine.events import CitationsEvent, DeltaEvent, Event, EventType, StatusEvent
from answer_engine.stages import generate as generating
from answer_engine.stages import verify as verifying
from answer_engine.stages.state import RunState, StageError

log = logging.getLogger(__name__)


async def write(
    state: RunState, backend: Backend, settings: Settings, *, searched: bool
) -> AsyncIterator[Event]:
    """generate (through cite) and verify on ``backend``: status and delta events, the citations last."""
    yield StatusEvent(stage="generate", message="Writing the answer")
    async with contextlib.aclosing(generating.generate(state, backend, settings, searched=searched)) as gen:
        async for event in gen:
            yield event
    if (
        searched
        and state.sources
        and settings.verify.enabled
        and backend.judges
        and not state.request.options.structured
    ):
        yield StatusEvent(stage="verify", message="Checking the answer against the sources")
        yield await verifying.verify(state, backend, settings.verify)
    else:
        yield verifying.citations_event(state.answer, [], {s.n: s for s in state.sources}, None)


def before(state: RunState, settings: Settings) -> str | None:
    """Why the strong backend should write the answer from the start (None: let the local one try)."""
    floor = settings.router.escalate_below_relevance
    if floor and state.relevance is not None and state.relevance < floor:
        return f"retrieval confidence {state.relevance:.2f} is under {floor:g}"
    return None


async def answer(
    state: RunState, backend: Backend, settings: Settings, *, searched: bool
) -> AsyncIterator[Event]:
    """The answer's events (status, deltas, the citations last), written by the model the policy picks;
    ``state.route``/``state.route_reason`` say which and why."""
    strong = backend.stronger()
    if strong is None:
        async with contextlib.aclosing(write(state, backend, settings, searched=searched)) as events:
            async for event in events:
                yield event
        return
    if reason := before(state, settings):
        state.route, state.route_reason = "strong", reason
        yield StatusEvent(stage="route", message=f"Asking the stronger model: {reason}")
        try:
            async with contextlib.aclosing(write(state, strong, settings, searched=searched)) as events:
                async for event in events:
                    yield event
            return
        except StageError as exc:
            state.route, state.route_reason = "local", f"the stronger model failed ({exc.message})"
            yield StatusEvent(stage="route", message=f"{state.route_reason}; the local model answers")
    else:
        state.route = "local"
    hold = (
        settings.router.escalate_unsupported
        and not state.request.options.structured
        and state.route_reason is None
    )
    held: list[DeltaEvent] = []
    local: CitationsEvent | None = None
    async with contextlib.aclosing(write(state, backend, settings, searched=searched)) as events:
        async for event in events:
            if event.type == EventType.CITATIONS:
                local = event  # type: ignore[assignment]
            elif hold and event.type == EventType.DELTA:
                held.append(event)  # type: ignore[arg-type]
            else:
                yield event
    assert local is not None
    if not hold or local.answer_support in ("supported", None):
        for event in held:
            yield event
        yield local
        return
    saved = (state.answer, state.raw_answer, list(state.messages), state.timings.model_copy())
    trace = dict(state.trace)  # the caller holds this dict: restored in place
    state.route, state.route_reason = "strong", f"the local answer was {local.answer_support}"
    yield StatusEvent(stage="route", message=f"Asking the stronger model: {state.route_reason}")
    try:
        async with contextlib.aclosing(write(state, strong, settings, searched=searched)) as events:
            async for event in events:
                yield event
    except StageError as exc:
        log.warning("router: the strong backend failed, giving the local answer: %s", exc.message)
        state.answer, state.raw_answer, state.messages, state.timings = saved
        state.trace.clear()
        state.trace.update(trace)
        state.route, state.route_reason = "local", f"the stronger model failed ({exc.message})"
        yield StatusEvent(stage="route", message=f"{state.route_reason}; giving the local model's answer")
        for event in held:
            yield event
        yield local
