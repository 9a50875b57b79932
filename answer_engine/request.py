"""What a question is: the request every face (SSE, OpenAI-compatible, CLI, eval) turns its input
into, its options, and its limits. Faces and stages import it; it depends on nothing but config.

The limits are stated once, in config.py: the schema here states the ceilings (so the OpenAPI
document shows them), the configuration may lower them, and :func:`check` enforces what applies.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from answer_engine.config import (
    MAX_HISTORY_MESSAGES,
    MAX_MESSAGE_CHARS,
    MAX_QUERY_CHARS,
    MAX_STOP_SEQUENCES,
    MAX_TOKENS_CEILING,
    Settings,
)
from search_adapters.filters import SearchFilters

ContextSize = Literal["low", "medium", "high"]
SearchType = Literal["fast", "pro", "auto"]


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str = Field(max_length=MAX_MESSAGE_CHARS)


class OutputFormat(BaseModel):
    """A structured answer: JSON that validates against ``json_schema`` (``json_object``: any JSON
    object). The faces map OpenAI's ``response_format`` / ``text.format`` onto it."""

    type: Literal["json_schema", "json_object"]
    name: str = Field("answer", max_length=64)
    json_schema: dict[str, Any] = Field(default_factory=lambda: {"type": "object"})

    @property
    def schema_for_model(self) -> dict[str, Any]:
        return self.json_schema if self.type == "json_schema" else {"type": "object"}


class AskOptions(BaseModel):
    """Per-request options; the OpenAI/Perplexity-compatible API maps its fields onto these."""

    disable_search: bool = Field(False, description="Answer from the model alone, without searching.")
    filters: SearchFilters = Field(default_factory=SearchFilters)
    search_context_size: ContextSize = Field("medium", description="How many passages go to the model.")
    search_type: SearchType | None = Field(
        None,
        description="fast: one search; pro: several, the model asking for the missing fact between them "
        "(multi-hop questions); auto: pro when the question looks multi-hop. None: the server's default.",
    )
    related_questions: bool = Field(False, description="Also suggest up to 3 follow-up questions.")
    max_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_CEILING)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    stop: list[str] = Field(default_factory=list, max_length=MAX_STOP_SEQUENCES)
    instructions: str | None = Field(
        None, description="Extra instructions from the developer (an API system message)."
    )
    output_format: OutputFormat | None = Field(
        None, description="Answer as JSON matching a schema (constrained decoding) instead of prose."
    )

    @property
    def structured(self) -> bool:
        """The answer is JSON of the caller's schema: no prose stage (citation repair, verification,
        related questions, the engine's own abstentions) applies to it."""
        return self.output_format is not None


class AskRequest(BaseModel):
    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS, pattern=r"\S", description="The question.")
    history: list[ChatMessage] = Field(
        default_factory=list,
        max_length=MAX_HISTORY_MESSAGES,
        description="Earlier turns of the thread, oldest first.",
    )
    options: AskOptions = Field(default_factory=AskOptions)


class RequestError(ValueError):
    """The request itself is unusable (empty question, too long, too much history)."""


def check(request: AskRequest, settings: Settings) -> AskRequest:
    """The request within the configured limits, its question stripped; RequestError otherwise.

    Faces call it before anything streams (a 400); the pipeline calls it again for callers that
    built a request without validation (``model_construct``)."""
    limits = settings.server
    query = request.query.strip()
    if not query:
        raise RequestError("query must not be empty")
    if len(query) > limits.max_query_chars:
        raise RequestError(f"query is longer than {limits.max_query_chars} characters")
    if len(request.history) > limits.max_history_messages:
        raise RequestError(f"history has more than {limits.max_history_messages} messages")
    if any(len(m.content) > limits.max_message_chars for m in request.history):
        raise RequestError(f"a history message is longer than {limits.max_message_chars} characters")
    ceiling = settings.generation.max_tokens_ceiling
    if request.options.max_tokens is not None and request.options.max_tokens > ceiling:
        raise RequestError(f"max_tokens must be at most {ceiling}")
    return request.model_copy(update={"query": query})
