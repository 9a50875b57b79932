"""What every answering endpoint wraps around the pipeline, written once:

- a slot in the backpressure gate, taken before anything streams (503 + Retry-After when full) and
  released when the answer ends, the client leaves, or the response is torn down;
- metrics for the answer (outcome, stage timings);
- graceful shutdown: on SIGTERM the answer gets ``server.shutdown_grace_s`` to finish, else it
  ends with an error event;
- before anything streams, a structured answer's schema checked (``check_output_format``);
- for streams: a crash after the 200 becomes an in-band error frame, never a dropped connection;
  closing the stream closes the pipeline (fetches and generation stop).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from fastapi import Request
from sse_starlette.sse import EventSourceResponse
from starlette.background import BackgroundTask

from answer_engine.api.drain import until_shutdown
from answer_engine.api.errors import APIError
from answer_engine.events import Event
from answer_engine.pipeline import Pipeline
from answer_engine.request import AskRequest, OutputFormat
from answer_engine.structured import SchemaError, check_schema

log = logging.getLogger(__name__)
PING_S = 15
Frame = dict[str, str]


def check_output_format(pipeline: Pipeline, fmt: OutputFormat | None, param: str) -> None:
    """A 400 naming why, before anything streams, for a schema that is malformed or that the
    configured backend cannot constrain its decoding to."""
    if fmt is None:
        return
    try:
        check_schema(fmt.schema_for_model)
    except SchemaError as exc:
        raise APIError(400, f"{param}: {exc}", param=param, code="invalid_schema") from exc
    if problem := pipeline.backend.schema_problem(fmt.schema_for_model):
        raise APIError(400, f"{param}: {problem}", param=param, code="unsupported_schema")


def _events(request: Request, pipeline: Pipeline, ask: AskRequest) -> AsyncIterator[Event]:
    state = request.app.state
    return state.metrics.observe(until_shutdown(pipeline.run(ask), state.settings.server.shutdown_grace_s))


async def collect(request: Request, pipeline: Pipeline, ask: AskRequest) -> list[Event]:
    """A whole answer's events, for non-streaming responses (same slot, metrics and shutdown guard)."""
    with request.app.state.backpressure.slot():
        async with contextlib.aclosing(_events(request, pipeline, ask)) as events:  # type: ignore[type-var]
            return [event async for event in events]


def stream(
    request: Request,
    pipeline: Pipeline,
    ask: AskRequest,
    *,
    frames: Callable[[AsyncIterator[Event]], AsyncIterator[Frame]],
    crash_frame: Callable[[Exception], Frame],
    last_frame: Frame | None = None,
) -> EventSourceResponse:
    """An SSE response of ``frames(events)``; ``crash_frame`` reports a crash in-band, and
    ``last_frame`` (OpenAI's ``[DONE]``) closes every stream, crashed or not."""
    slot = request.app.state.backpressure.acquire()  # 503 + Retry-After when full, before anything streams
    grace = request.app.state.settings.server.shutdown_grace_s

    async def body() -> AsyncIterator[Frame]:
        try:
            async with contextlib.aclosing(frames(_events(request, pipeline, ask))) as out:  # type: ignore[type-var]
                async for frame in out:
                    yield frame
        except Exception as exc:  # the stream has begun: report it in-band
            log.exception("answer stream failed")
            yield crash_frame(exc)
        finally:
            slot.release()
        if last_frame is not None:
            yield last_frame

    # The background task releases the slot too: a generator abandoned before its first step never
    # runs its ``finally``.
    return EventSourceResponse(
        body(), ping=PING_S, background=BackgroundTask(slot.release), shutdown_grace_period=grace + 2
    )
