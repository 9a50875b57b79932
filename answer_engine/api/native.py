"""The native API: POST /api/ask streams the pipeline's events as named Server-Sent Events."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from sse_starlette.sse import EventSourceResponse

from answer_engine.api import streaming
from answer_engine.api.errors import ERROR_RESPONSES, SSE_EVENT_SCHEMA, APIError
from answer_engine.events import ErrorEvent, Event, sse_frame
from answer_engine.pipeline import Pipeline
from answer_engine.request import AskRequest, RequestError

router = APIRouter(tags=["native"])


async def _frames(events: AsyncIterator[Event]) -> AsyncIterator[dict[str, str]]:
    async for event in events:
        yield sse_frame(event)


@router.post(
    "/api/ask",
    response_class=EventSourceResponse,
    responses={
        **ERROR_RESPONSES,
        200: {
            "content": {"text/event-stream": {"schema": SSE_EVENT_SCHEMA}},
            "description": "Pipeline events as named SSE frames: status*, sources, delta*, citations, "
            "related, done | error.",
        },
    },
)
async def ask(body: AskRequest, request: Request) -> EventSourceResponse:
    """Stream the answer as Server-Sent Events; every frame's name is its event type."""
    pipeline: Pipeline = request.app.state.pipeline
    try:
        body = pipeline.validate(body)
    except RequestError as exc:
        raise APIError(400, str(exc), param="query", code="invalid_value") from exc
    streaming.check_output_format(pipeline, body.options.output_format, "options.output_format")
    return streaming.stream(
        request,
        pipeline,
        body,
        frames=_frames,
        crash_frame=lambda exc: sse_frame(
            ErrorEvent(stage="internal", message=f"internal error: {type(exc).__name__}")
        ),
    )
