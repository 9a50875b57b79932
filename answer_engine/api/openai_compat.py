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
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from answer_engine.api import streaming
from answer_engine.api.errors import ERROR_RESPONSES, SSE_EVENT_SCHEMA, APIError, error_json
from answer_engine.config import MAX_HISTORY_MESSAGES, MAX_STOP_SEQUENCES, MAX_TOKENS_CEILING, Settings
from answer_engine.events import Event, EventType, Source
from answer_engine.models import MODELS
from answer_engine.pipeline import Pipeline
from answer_engine.request import AskOptions, AskRequest, ChatMessage, ContextSize, RequestError
from search_adapters.filters import Recency, SearchFilters

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])
ALIAS = "answer-engine"
PERPLEXITY_DATE = "%m/%d/%Y"


# ----------------------------------------------------------------------------- request


class TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["text"]
    text: str


class RequestMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] | None = None

    @property
    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class WebSearchOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    search_context_size: ContextSize = "medium"


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """OpenAI's fields first, then Perplexity's search fields. Unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(description='A model id from GET /v1/models, or "answer-engine".')
    messages: list[RequestMessage] = Field(min_length=1, max_length=MAX_HISTORY_MESSAGES)
    stream: bool = False
    max_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_CEILING)
    max_completion_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_CEILING)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    n: int | None = Field(None, ge=1, le=1, description="Only one choice is supported.")
    stream_options: StreamOptions | None = None

    # -- Perplexity search fields
    search_domain_filter: list[str] | None = Field(
        None, max_length=20, description='Allow "site.com", deny "-site.com".'
    )
    search_recency_filter: Recency | None = None
    search_after_date_filter: str | None = Field(None, description="Published on or after, %m/%d/%Y.")
    search_before_date_filter: str | None = Field(None, description="Published on or before, %m/%d/%Y.")
    return_related_questions: bool = False
    disable_search: bool = False
    web_search_options: WebSearchOptions | None = None

    @field_validator("stop")
    @classmethod
    def _stop(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > MAX_STOP_SEQUENCES:
            raise ValueError(f"at most {MAX_STOP_SEQUENCES} stop sequences")
        return value

    @field_validator("search_after_date_filter", "search_before_date_filter")
    @classmethod
    def _date(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                datetime.strptime(value, PERPLEXITY_DATE)
            except ValueError:
                raise ValueError("expected a date as %m/%d/%Y, e.g. 3/1/2025") from None
        return value

    @field_validator("search_domain_filter")
    @classmethod
    def _domains(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and any(not d.strip() or len(d) > 253 for d in value):
            raise ValueError("domains must be non-empty host names")
        return value

    @field_validator("messages")
    @classmethod
    def _last_is_user(cls, value: list[RequestMessage]) -> list[RequestMessage]:
        if value and (value[-1].role != "user" or not value[-1].text.strip()):
            raise ValueError("the last message must be a non-empty user message")
        return value

    def to_ask(self) -> AskRequest:
        def day(value: str | None) -> date | None:
            return datetime.strptime(value, PERPLEXITY_DATE).date() if value else None

        instructions = "\n".join(
            m.text for m in self.messages if m.role in ("system", "developer") and m.text.strip()
        )
        history = [
            ChatMessage(role=m.role, content=m.text)
            for m in self.messages[:-1]
            if m.role in ("user", "assistant")
        ]  # type: ignore[arg-type]
        stop = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return AskRequest(
            query=self.messages[-1].text,
            history=history,
            options=AskOptions(
                disable_search=self.disable_search,
                filters=SearchFilters(
                    domains=self.search_domain_filter or [],
                    recency=self.search_recency_filter,
                    after=day(self.search_after_date_filter),
                    before=day(self.search_before_date_filter),
                ),
                search_context_size=(self.web_search_options or WebSearchOptions()).search_context_size,
                related_questions=self.return_related_questions,
                max_tokens=self.max_completion_tokens or self.max_tokens,
                temperature=self.temperature,
                top_p=self.top_p,
                stop=stop,
                instructions=instructions or None,
            ),
        )


# ----------------------------------------------------------------------------- response


class SearchResultOut(BaseModel):
    title: str
    url: str
    date: str | None = None
    last_updated: str | None = None
    snippet: str = ""
    source: str = "web"


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    num_search_queries: int = 0
    search_context_size: ContextSize = "medium"


class ResponseMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: ResponseMessage
    finish_reason: Literal["stop", "length"] = "stop"


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    citations: list[str] = Field(description="Source URLs in [n] order: citations[0] is what [1] cites.")
    search_results: list[SearchResultOut]
    related_questions: list[str] | None = None
    usage: Usage


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "answer-engine"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


def configured_model_id(settings: Settings) -> str:
    model = settings.generation.model
    return model if model in MODELS else Path(model).stem


def _search_results(sources: list[Source]) -> list[SearchResultOut]:
    return [
        SearchResultOut(title=s.title, url=s.url, date=s.date, snippet=s.snippet, source=s.provider or "web")
        for s in sources
    ]


class _Collector:
    """Folds pipeline events into what the response needs."""

    def __init__(self) -> None:
        self.sources: list[Source] = []
        self.answer: list[str] = []
        self.final: str | None = None
        self.related: list[str] = []
        self.done: Any = None
        self.error: Any = None

    def take(self, event: Event) -> None:
        if event.type == EventType.SOURCES:
            self.sources = sorted(event.sources, key=lambda s: s.n)
        elif event.type == EventType.DELTA:
            self.answer.append(event.text)
        elif event.type == EventType.CITATIONS:
            self.final = event.answer
        elif event.type == EventType.RELATED:
            self.related = event.questions
        elif event.type == EventType.DONE:
            self.done = event
        elif event.type == EventType.ERROR:
            self.error = event

    def usage(self, ask: AskRequest) -> Usage:
        t = self.done.timings
        return Usage(
            prompt_tokens=t.prompt_tokens,
            completion_tokens=t.completion_tokens,
            total_tokens=t.prompt_tokens + t.completion_tokens,
            num_search_queries=self.done.search_queries,
            search_context_size=ask.options.search_context_size,
        )


def _error_status(stage: str) -> int:
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
    model_ids = {configured_model_id(settings), ALIAS}
    if body.model not in model_ids:
        raise APIError(
            404,
            f"The model `{body.model}` does not exist; available: {', '.join(sorted(model_ids))}",
            param="model",
            code="model_not_found",
        )
    try:
        ask = pipeline.validate(body.to_ask())
    except RequestError as exc:
        raise APIError(400, str(exc), param="messages", code="invalid_value") from exc

    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())

    if not body.stream:
        got = _Collector()
        for event in await streaming.collect(request, pipeline, ask):
            got.take(event)
        if got.error is not None:
            raise APIError(_error_status(got.error.stage), f"{got.error.stage}: {got.error.message}")
        completion = ChatCompletion(
            id=completion_id,
            created=created,
            model=body.model,
            choices=[
                Choice(
                    message=ResponseMessage(
                        content=got.final if got.final is not None else "".join(got.answer)
                    ),
                    finish_reason=got.done.finish_reason,
                )
            ],
            citations=[s.url for s in got.sources],
            search_results=_search_results(got.sources),
            related_questions=got.related if body.return_related_questions else None,
            usage=got.usage(ask),
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
        got = _Collector()
        refs: dict[str, Any] = {
            "citations": [],
            "search_results": [],
        }  # on the first chunk and again on the last
        async for event in events:
            got.take(event)
            if event.type == EventType.SOURCES:
                refs = {
                    "citations": [s.url for s in got.sources],
                    "search_results": [r.model_dump() for r in _search_results(got.sources)],
                }
                yield chunk({"role": "assistant", "content": ""}, **refs)
            elif event.type == EventType.DELTA:
                yield chunk({"content": event.text})
            elif event.type == EventType.DONE:
                extra: dict[str, Any] = {**refs, "usage": got.usage(ask).model_dump()}
                if body.return_related_questions:
                    extra["related_questions"] = got.related
                yield chunk({}, event.finish_reason, **extra)
            elif event.type == EventType.ERROR:
                status = _error_status(event.stage)
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
