"""OpenAI/Perplexity-compatible chat completions: POST /v1/chat/completions and GET /v1/models.

The request follows OpenAI's chat completions fields, plus Perplexity's search fields. The
answer is the same pipeline as everywhere else: its events are mapped onto a chat.completion
(non-stream) or chat.completion.chunk objects (stream) carrying ``citations`` (URLs in [n]
order: citations[0] is [1]), ``search_results`` and, when asked, ``related_questions``.
Unknown fields are ignored, as OpenAI does; invalid values get a 400 that names the field.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from answer_engine.api import streaming
from answer_engine.api.errors import ERROR_RESPONSES, SSE_EVENT_SCHEMA, APIError, error_json
from answer_engine.api.openai_protocol import (
    ChatCompletion,
    ChatCompletionRequest,
    Choice,
    ModelCard,
    ModelList,
    ResponseMessage,
    SearchResultOut,
    Usage,
)
from answer_engine.config import Settings
from answer_engine.events import CitationsEvent, Event, EventType, Source
from answer_engine.models import MODELS
from answer_engine.pipeline import Pipeline
from answer_engine.request import AskRequest, RequestError

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])
ALIAS = "answer-engine"


def configured_model_id(settings: Settings) -> str:
    model = settings.generation.model
    return model if model in MODELS else Path(model).stem


def search_results(sources: list[Source]) -> list[SearchResultOut]:
    return [
        SearchResultOut(title=s.title, url=s.url, date=s.date, snippet=s.snippet, source=s.provider or "web")
        for s in sources
    ]


class Collector:
    """Folds pipeline events into what the response needs."""

    def __init__(self) -> None:
        self.sources: list[Source] = []
        self.answer: list[str] = []
        self.final: str | None = None
        self.checked: CitationsEvent | None = None
        self.related: list[str] = []
        self.done: Any = None
        self.error: Any = None

    def take(self, event: Event) -> None:
        if event.type == EventType.SOURCES:
            self.sources = sorted(event.sources, key=lambda s: s.n)
        elif event.type == EventType.DELTA:
            self.answer.append(event.text)
        elif event.type == EventType.CITATIONS:
            self.final, self.checked = event.answer, event
        elif event.type == EventType.RELATED:
            self.related = event.questions
        elif event.type == EventType.DONE:
            self.done = event
        elif event.type == EventType.ERROR:
            self.error = event

    def text(self) -> str:
        """The final (verified) answer text; the streamed text when no citations event came."""
        return self.final if self.final is not None else "".join(self.answer)

    def support(self) -> dict[str, Any]:
        """answer_support and the per-sentence verdicts, beside citations (on the last chunk too)."""
        checked = self.checked
        return {
            "answer_support": checked.answer_support if checked else None,
            "answer_sentences": [s.model_dump() for s in checked.sentences] if checked else [],
        }

    def usage(self, ask: AskRequest) -> Usage:
        t = self.done.timings
        return Usage(
            prompt_tokens=t.prompt_tokens,
            completion_tokens=t.completion_tokens,
            total_tokens=t.prompt_tokens + t.completion_tokens,
            num_search_queries=self.done.search_queries,
            search_type=self.done.search_type,
            search_queries=self.done.queries,
            search_context_size=ask.options.search_context_size,
        )


def check_model(settings: Settings, model: str) -> None:
    """A 404 in OpenAI's format unless ``model`` is one /v1/models lists."""
    model_ids = {configured_model_id(settings), ALIAS}
    if model not in model_ids:
        raise APIError(
            404,
            f"The model `{model}` does not exist; available: {', '.join(sorted(model_ids))}",
            param="model",
            code="model_not_found",
        )


def error_status(stage: str) -> int:
    return {"request": 400, "search": 503, "shutdown": 503}.get(stage, 500)


# ----------------------------------------------------------------------------- routes


@router.get("/models", response_model=ModelList)
async def list_models(request: Request) -> ModelList:
    settings: Settings = request.app.state.settings
    return ModelList(data=[ModelCard(id=configured_model_id(settings)), ModelCard(id=ALIAS)])


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    responses={
        **ERROR_RESPONSES,
        200: {
            "description": "A chat.completion, or with stream=true a text/event-stream of "
            "chat.completion.chunk objects ending with data: [DONE].",
            "content": {"text/event-stream": {"schema": SSE_EVENT_SCHEMA}},
        },
    },
)
async def chat_completions(body: ChatCompletionRequest, request: Request) -> Any:
    pipeline: Pipeline = request.app.state.pipeline
    settings: Settings = request.app.state.settings
    check_model(settings, body.model)
    try:
        ask = pipeline.validate(body.to_ask())
    except RequestError as exc:
        raise APIError(400, str(exc), param="messages", code="invalid_value") from exc
    except ValueError as exc:  # response_format without its schema
        raise APIError(400, f"response_format: {exc}", param="response_format", code="invalid_value") from exc
    streaming.check_output_format(pipeline, ask.options.output_format, "response_format")

    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())

    if not body.stream:
        got = Collector()
        for event in await streaming.collect(request, pipeline, ask):
            got.take(event)
        if got.error is not None:
            raise APIError(error_status(got.error.stage), f"{got.error.stage}: {got.error.message}")
        completion = ChatCompletion(
            id=completion_id,
            created=created,
            model=body.model,
            choices=[
                Choice(
                    message=ResponseMessage(content=got.text()),
                    finish_reason=got.done.finish_reason,
                )
            ],
            citations=[s.url for s in got.sources],
            search_results=search_results(got.sources),
            related_questions=got.related if body.return_related_questions else None,
            usage=got.usage(ask),
            **got.support(),
        )
        # related_questions only when asked; null dates stay (Perplexity sends them as null)
        return JSONResponse(
            completion.model_dump(
                exclude={"related_questions"} if completion.related_questions is None else None
            )
        )

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, str]:
        payload = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": body.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return {"data": json.dumps(payload, ensure_ascii=False)}

    async def frames(events: AsyncIterator[Event]) -> AsyncIterator[dict[str, str]]:
        got = Collector()
        refs: dict[str, Any] = {
            "citations": [],
            "search_results": [],
        }  # on the first chunk and again on the last
        async for event in events:
            got.take(event)
            if event.type == EventType.SOURCES:
                refs = {
                    "citations": [s.url for s in got.sources],
                    "search_results": [r.model_dump() for r in search_results(got.sources)],
                }
                yield chunk({"role": "assistant", "content": ""}, **refs)
            elif event.type == EventType.DELTA:
                yield chunk({"content": event.text})
            elif event.type == EventType.DONE:
                extra: dict[str, Any] = {**refs, **got.support(), "usage": got.usage(ask).model_dump()}
                if body.return_related_questions:
                    extra["related_questions"] = got.related
                yield chunk({}, event.finish_reason, **extra)
            elif event.type == EventType.ERROR:
                status = error_status(event.stage)
                yield {"data": json.dumps(error_json(status, f"{event.stage}: {event.message}"))}
                return

    return streaming.stream(
        request,
        pipeline,
        ask,
        frames=frames,
        last_frame={"data": "[DONE]"},
        crash_frame=lambda exc: {
            "data": json.dumps(error_json(500, f"internal error: {type(exc).__name__}"))
        },
    )
