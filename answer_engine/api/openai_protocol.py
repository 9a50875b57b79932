"""The wire shapes of the OpenAI/Perplexity-compatible API (as vLLM's protocol.py): the request,
OpenAI's fields first, then Perplexity's search fields (unknown fields ignored, bad values a 400
naming the field), and the chat.completion response with Perplexity's and our extra fields."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from answer_engine.config import MAX_HISTORY_MESSAGES, MAX_STOP_SEQUENCES, MAX_TOKENS_CEILING
from answer_engine.events import AnswerSupport, SentenceSupport
from answer_engine.request import AskOptions, AskRequest, ChatMessage, ContextSize, OutputFormat, SearchType
from search_adapters.filters import Recency, SearchFilters

PERPLEXITY_DATE = "%m/%d/%Y"


def perplexity_day(value: str | None) -> date | None:
    """A Perplexity date filter (%m/%d/%Y) as a date; ValueError naming the format otherwise."""
    if not value:
        return None
    try:
        return datetime.strptime(value, PERPLEXITY_DATE).date()
    except ValueError:
        raise ValueError("expected a date as %m/%d/%Y, e.g. 3/1/2025") from None


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
    search_type: SearchType | None = Field(
        None,
        description="Perplexity's: fast (one search), pro (several, for multi-step questions), auto "
        "(pro when the question looks multi-hop). Default: the server's (plan.search_type).",
    )


class JSONSchemaSpec(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    name: str = Field("answer", max_length=64)
    description: str | None = None
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")
    strict: bool | None = None


class ResponseFormat(BaseModel):
    """OpenAI's response_format: text (the default), json_object, or json_schema."""

    model_config = ConfigDict(extra="ignore")
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JSONSchemaSpec | None = None

    def output_format(self) -> OutputFormat | None:
        if self.type == "text":
            return None
        if self.type == "json_object":
            return OutputFormat(type="json_object")
        if self.json_schema is None or not self.json_schema.schema_:
            raise ValueError("json_schema.schema is required with type json_schema")
        return OutputFormat(
            type="json_schema", name=self.json_schema.name, json_schema=self.json_schema.schema_
        )


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


def conversation(messages: list[Any]) -> tuple[list[str], list[ChatMessage]]:
    """The system/developer texts (non-blank) and the earlier user/assistant turns of an OpenAI
    message list whose last message is the question (any message type with ``role`` and ``text``)."""
    system = [m.text for m in messages if m.role in ("system", "developer") and m.text.strip()]
    history = [
        ChatMessage(role=m.role, content=m.text) for m in messages[:-1] if m.role in ("user", "assistant")
    ]
    return system, history


class SearchFields(BaseModel):
    """Perplexity's search fields, shared by /v1/chat/completions and /v1/responses."""

    model_config = ConfigDict(extra="ignore")

    search_domain_filter: list[str] | None = Field(
        None, max_length=20, description='Allow "site.com", deny "-site.com".'
    )
    search_recency_filter: Recency | None = None
    search_after_date_filter: str | None = Field(None, description="Published on or after, %m/%d/%Y.")
    search_before_date_filter: str | None = Field(None, description="Published on or before, %m/%d/%Y.")
    return_related_questions: bool = False
    disable_search: bool = False
    web_search_options: WebSearchOptions | None = None

    @field_validator("search_after_date_filter", "search_before_date_filter")
    @classmethod
    def _date(cls, value: str | None) -> str | None:
        perplexity_day(value)
        return value

    @field_validator("search_domain_filter")
    @classmethod
    def _domains(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and any(not d.strip() or len(d) > 253 for d in value):
            raise ValueError("domains must be non-empty host names")
        return value

    def search_options(self) -> dict[str, Any]:
        """The AskOptions these fields set."""
        web = self.web_search_options or WebSearchOptions()
        return {
            "disable_search": self.disable_search,
            "filters": SearchFilters(
                domains=self.search_domain_filter or [],
                recency=self.search_recency_filter,
                after=perplexity_day(self.search_after_date_filter),
                before=perplexity_day(self.search_before_date_filter),
            ),
            "search_context_size": web.search_context_size,
            "search_type": web.search_type,
            "related_questions": self.return_related_questions,
        }


class ChatCompletionRequest(SearchFields):
    """OpenAI's fields first, then Perplexity's search fields. Unknown fields are ignored."""

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
    response_format: ResponseFormat | None = Field(
        None, description="json_schema / json_object: the answer is JSON valid against the schema."
    )

    @field_validator("stop")
    @classmethod
    def _stop(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > MAX_STOP_SEQUENCES:
            raise ValueError(f"at most {MAX_STOP_SEQUENCES} stop sequences")
        return value

    @field_validator("messages")
    @classmethod
    def _last_is_user(cls, value: list[RequestMessage]) -> list[RequestMessage]:
        if value and (value[-1].role != "user" or not value[-1].text.strip()):
            raise ValueError("the last message must be a non-empty user message")
        return value

    def to_ask(self) -> AskRequest:
        system, history = conversation(self.messages)
        instructions = "\n".join(system)
        stop = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return AskRequest(
            query=self.messages[-1].text,
            history=history,
            options=AskOptions(
                **self.search_options(),
                max_tokens=self.max_completion_tokens or self.max_tokens,
                temperature=self.temperature,
                top_p=self.top_p,
                stop=stop,
                instructions=instructions or None,
                output_format=self.response_format.output_format() if self.response_format else None,
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
    search_type: Literal["fast", "pro"] | None = Field(
        None, description="How the answer searched (auto resolves to fast or pro); None: no search."
    )
    search_queries: list[str] = Field(default_factory=list, description="The searches made, in order.")


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
    answer_support: AnswerSupport | None = Field(
        None, description="Whether the sources state the answer: supported, partly_supported, not_supported."
    )
    answer_sentences: list[SentenceSupport] = Field(
        default_factory=list, description="Each sentence's verdict and the evidence that states it."
    )
    usage: Usage


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "answer-engine"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
