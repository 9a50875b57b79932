"""OpenAI's Responses API: POST /v1/responses (stream and non-stream), what ``client.responses.create``
calls, and Perplexity's Agent API follows.

The answer is the same pipeline as everywhere else. Its citations become ``url_citation``
annotations on the output text (the shape OpenAI's web-search tool uses), each spanning its ``[n]``
marker, beside our ``citations``, ``search_results``, ``answer_support`` and ``answer_sentences``.
The stream is OpenAI's event sequence: ``response.created``, ``response.in_progress``,
``response.output_item.added``, ``response.content_part.added``, ``response.output_text.delta``*,
``response.output_text.annotation.added``*, ``response.output_text.done``, ``response.content_part.done``,
``response.output_item.done``, ``response.completed`` (``response.incomplete`` when cut off at
``max_output_tokens``; ``response.failed`` on an error). As on the chat
stream, the deltas are what the model wrote and ``output_text.done`` carries the verified final text.

``previous_response_id`` continues a thread: unless ``store`` is false, a response's turns (its
input messages and its answer, not its instructions, as OpenAI does) are kept for
``RESPONSE_TTL_S`` in the engine's cache (Redis when REDIS_URL is set, so every replica finds them;
in-process otherwise) and prepended to the next request's input.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from answer_engine.api import streaming
from answer_engine.api.errors import ERROR_RESPONSES, SSE_EVENT_SCHEMA, APIError
from answer_engine.api.openai_compat import (
    Collector,
    check_model,
    error_status,
    search_results,
)
from answer_engine.api.openai_protocol import JSONSchemaSpec, ResponseFormat, SearchFields, conversation
from answer_engine.citations import MARKER_RE, parse_marker
from answer_engine.config import MAX_HISTORY_MESSAGES, MAX_TOKENS_CEILING
from answer_engine.events import Event, EventType, Source
from answer_engine.pipeline import Pipeline
from answer_engine.request import AskOptions, AskRequest, ChatMessage, OutputFormat, RequestError

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])

RESPONSE_TTL_S = 3600.0
NAMESPACE = "responses"
SEARCH_TOOLS = {"web_search", "web_search_preview", "web_search_2025_08_26", "web_search_preview_2025_03_11"}


# ----------------------------------------------------------------------------- request


class InputPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["input_text", "output_text", "text"]
    text: str


class InputMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["message"] = "message"
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[InputPart]

    @property
    def text(self) -> str:
        return self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)


class TextFormat(BaseModel):
    """The Responses API's ``text.format``: text, json_object, or json_schema (name/schema flat)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    type: Literal["text", "json_object", "json_schema"] = "text"
    name: str = Field("answer", max_length=64)
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None

    def response_format(self) -> ResponseFormat:
        spec = (
            JSONSchemaSpec(name=self.name, schema=self.schema_ or {}) if self.type == "json_schema" else None
        )
        return ResponseFormat(type=self.type, json_schema=spec)


class TextConfig(BaseModel):
    model_config = ConfigDict(extra="ignore")
    format: TextFormat = Field(default_factory=TextFormat)


class ResponsesRequest(SearchFields):
    """OpenAI's Responses fields, then Perplexity's search fields. Unknown fields are ignored."""

    model: str = Field(description='A model id from GET /v1/models, or "answer-engine".')
    input: str | list[InputMessage] = Field(description="The question, or messages ending with the user's.")
    instructions: str | None = Field(None, description="A system message for this response only.")
    stream: bool = False
    max_output_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_CEILING)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    previous_response_id: str | None = Field(None, max_length=100)
    store: bool = Field(True, description=f"Keep this response's turns for {RESPONSE_TTL_S:g} s.")
    metadata: dict[str, str] | None = Field(None, max_length=16)
    text: TextConfig | None = None
    response_format: ResponseFormat | None = Field(
        None, description="The chat-completions spelling of text.format."
    )
    tools: list[dict[str, Any]] | None = Field(
        None, description="Only web search (which every answer does anyway); other tools are refused."
    )

    @field_validator("input")
    @classmethod
    def _input(cls, value: str | list[InputMessage]) -> str | list[InputMessage]:
        if isinstance(value, str):
            if not value.strip():
                raise ValueError("must not be empty or blank")
            return value
        if not value or len(value) > MAX_HISTORY_MESSAGES:
            raise ValueError(f"give 1 to {MAX_HISTORY_MESSAGES} messages")
        if value[-1].role != "user" or not value[-1].text.strip():
            raise ValueError("the last message must be a non-empty user message")
        return value

    @field_validator("tools")
    @classmethod
    def _tools(cls, value: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        for tool in value or []:
            if tool.get("type") not in SEARCH_TOOLS:
                raise ValueError(f"tool type {tool.get('type')!r} is not supported: only web_search")
        return value

    def output_format(self) -> OutputFormat | None:
        fmt = self.text.format.response_format() if self.text is not None else self.response_format
        return fmt.output_format() if fmt is not None else None

    def messages(self) -> list[InputMessage]:
        return [InputMessage(role="user", content=self.input)] if isinstance(self.input, str) else self.input

    def to_ask(self, earlier: list[ChatMessage]) -> AskRequest:
        messages = self.messages()
        system, turns = conversation(messages)
        instructions = "\n".join([t.strip() for t in [self.instructions or "", *system] if t.strip()])
        history = earlier + turns
        return AskRequest(
            query=messages[-1].text,
            history=history[-MAX_HISTORY_MESSAGES:],
            options=AskOptions(
                **self.search_options(),
                max_tokens=self.max_output_tokens,
                temperature=self.temperature,
                top_p=self.top_p,
                instructions=instructions or None,
                output_format=self.output_format(),
            ),
        )


# ----------------------------------------------------------------------------- response


def annotations(text: str, sources: list[Source]) -> list[dict[str, Any]]:
    """A url_citation for each source a [n] marker names, spanning the marker."""
    by_n = {s.n: s for s in sources}
    out = []
    for m in MARKER_RE.finditer(text):
        for n in parse_marker(m.group(0)) or []:
            if n in by_n:
                s = by_n[n]
                out.append(
                    {
                        "type": "url_citation",
                        "start_index": m.start(),
                        "end_index": m.end(),
                        "url": s.url,
                        "title": s.title,
                    }
                )
    return out


class ResponseBuilder:
    """One response's id, its fixed fields, and the shape of it at each point of the stream."""

    def __init__(self, body: ResponsesRequest, ask: AskRequest) -> None:
        self.body, self.ask = body, ask
        self.id = f"resp_{uuid.uuid4().hex}"
        self.message_id = f"msg_{uuid.uuid4().hex}"
        self.created = int(time.time())

    def message(self, text: str, notes: list[dict[str, Any]], status: str) -> dict[str, Any]:
        part = {"type": "output_text", "text": text, "annotations": notes, "logprobs": []}
        return {
            "id": self.message_id,
            "type": "message",
            "status": status,
            "role": "assistant",
            "content": [part],
        }

    def response(
        self, status: str, got: Collector | None = None, *, error: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        fmt = (
            self.body.text.format.model_dump(by_alias=True, exclude_none=True)
            if self.body.text
            else {"type": "text"}
        )
        out: dict[str, Any] = {
            "id": self.id,
            "object": "response",
            "created_at": self.created,
            "status": status,
            "model": self.body.model,
            "output": [],
            "instructions": self.body.instructions,
            "previous_response_id": self.body.previous_response_id,
            "max_output_tokens": self.body.max_output_tokens,
            "temperature": self.body.temperature,
            "top_p": self.body.top_p,
            "parallel_tool_calls": False,
            "tool_choice": "auto",
            "tools": self.body.tools or [],
            "text": {"format": fmt},
            "metadata": self.body.metadata or {},
            "store": self.body.store,
            "error": error,
            "incomplete_details": None,
            "usage": None,
        }
        if got is not None and got.done is not None:
            text = got.text()
            out["output"] = [self.message(text, annotations(text, got.sources), "completed")]
            t = got.done.timings
            out["usage"] = {
                "input_tokens": t.prompt_tokens,
                "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                "output_tokens": t.completion_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": t.prompt_tokens + t.completion_tokens,
            }
            if got.done.finish_reason == "length":
                out["status"] = "incomplete"
                out["incomplete_details"] = {"reason": "max_output_tokens"}
            out["completed_at"] = int(time.time())
            out.update(
                citations=[s.url for s in got.sources],
                search_results=[r.model_dump() for r in search_results(got.sources)],
                **got.support(),
                search_queries=got.done.queries,
            )
            if self.body.return_related_questions:
                out["related_questions"] = got.related
        return out


async def earlier_turns(pipeline: Pipeline, previous: str | None) -> list[ChatMessage]:
    if previous is None:
        return []
    stored = await pipeline.cache.get(NAMESPACE, previous)
    if stored is None:
        raise APIError(
            404,
            f"previous response {previous!r} not found "
            f"(responses are kept {RESPONSE_TTL_S:g} s, unless store=false)",
            param="previous_response_id",
            code="previous_response_not_found",
        )
    return [ChatMessage.model_validate(m) for m in stored["turns"]]


async def keep(pipeline: Pipeline, built: ResponseBuilder, got: Collector) -> None:
    """The turns of this response, for a later previous_response_id (history, question, answer)."""
    if not built.body.store or got.done is None:
        return
    turns = [
        *built.ask.history,
        ChatMessage(role="user", content=built.ask.query),
        ChatMessage(role="assistant", content=got.text()),
    ]
    await pipeline.cache.set(
        NAMESPACE,
        built.id,
        {"turns": [t.model_dump() for t in turns[-MAX_HISTORY_MESSAGES:]]},
        RESPONSE_TTL_S,
    )


# ----------------------------------------------------------------------------- route


@router.post(
    "/responses",
    responses={
        **ERROR_RESPONSES,
        200: {
            "description": "A response object, or with stream=true a text/event-stream of Responses "
            "events (response.created ... response.completed).",
            "content": {"text/event-stream": {"schema": SSE_EVENT_SCHEMA}},
        },
    },
)
async def create_response(body: ResponsesRequest, request: Request) -> Any:
    pipeline: Pipeline = request.app.state.pipeline
    check_model(request.app.state.settings, body.model)
    earlier = await earlier_turns(pipeline, body.previous_response_id)
    try:
        ask = pipeline.validate(body.to_ask(earlier))
    except RequestError as exc:
        raise APIError(400, str(exc), param="input", code="invalid_value") from exc
    except ValueError as exc:  # a json_schema format without its schema
        raise APIError(400, f"text.format: {exc}", param="text.format", code="invalid_value") from exc
    streaming.check_output_format(pipeline, ask.options.output_format, "text.format")
    built = ResponseBuilder(body, ask)

    if not body.stream:
        got = Collector()
        for event in await streaming.collect(request, pipeline, ask):
            got.take(event)
        if got.error is not None:
            raise APIError(error_status(got.error.stage), f"{got.error.stage}: {got.error.message}")
        await keep(pipeline, built, got)
        return JSONResponse(built.response("completed", got))

    seq = itertools.count()

    def frame(kind: str, **fields: Any) -> dict[str, str]:
        return {
            "event": kind,
            "data": json.dumps({"type": kind, "sequence_number": next(seq), **fields}, ensure_ascii=False),
        }

    where = {"output_index": 0, "item_id": built.message_id}

    async def frames(events: AsyncIterator[Event]) -> AsyncIterator[dict[str, str]]:
        got = Collector()
        yield frame("response.created", response=built.response("in_progress"))
        yield frame("response.in_progress", response=built.response("in_progress"))
        opened = False
        async for event in events:
            got.take(event)
            if event.type in (EventType.SOURCES, EventType.DELTA) and not opened:
                opened = True
                yield frame(
                    "response.output_item.added", output_index=0, item=built.message("", [], "in_progress")
                )
                yield frame(
                    "response.content_part.added",
                    **where,
                    content_index=0,
                    part={"type": "output_text", "text": "", "annotations": [], "logprobs": []},
                )
            if event.type == EventType.DELTA:
                yield frame(
                    "response.output_text.delta", **where, content_index=0, delta=event.text, logprobs=[]
                )
            elif event.type == EventType.DONE:
                final = built.response("completed", got)
                text, notes = got.text(), final["output"][0]["content"][0]["annotations"]
                for i, note in enumerate(notes):
                    yield frame(
                        "response.output_text.annotation.added",
                        **where,
                        content_index=0,
                        annotation_index=i,
                        annotation=note,
                    )
                yield frame("response.output_text.done", **where, content_index=0, text=text, logprobs=[])
                yield frame(
                    "response.content_part.done",
                    **where,
                    content_index=0,
                    part=final["output"][0]["content"][0],
                )
                yield frame("response.output_item.done", output_index=0, item=final["output"][0])
                await keep(pipeline, built, got)
                # cut off at max_output_tokens: OpenAI ends such a stream with response.incomplete
                last = "response.incomplete" if final["status"] == "incomplete" else "response.completed"
                yield frame(last, response=final)
            elif event.type == EventType.ERROR:
                error = {"code": "server_error", "message": f"{event.stage}: {event.message}"}
                yield frame("response.failed", response=built.response("failed", error=error))
                return

    def crash(exc: Exception) -> dict[str, str]:
        error = {"code": "server_error", "message": f"internal error: {type(exc).__name__}"}
        return frame("response.failed", response=built.response("failed", error=error))

    return streaming.stream(request, pipeline, ask, frames=frames, crash_frame=crash)
