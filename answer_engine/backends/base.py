"""The generation-backend Protocol: stream text for chat messages, count tokens, describe itself."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, Field


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str = Field(max_length=20000)


class GenerationParams(BaseModel):
    max_tokens: int = Field(256, ge=1)
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    stop: list[str] = []


class BackendError(Exception):
    """The backend cannot start or failed while generating."""


@runtime_checkable
class Backend(Protocol):
    def stream(self, messages: list[ChatMessage], params: GenerationParams) -> AsyncIterator[str]:
        """Yield the answer as text pieces. Closing the iterator stops generation."""
        ...

    def count_prompt_tokens(self, messages: list[ChatMessage]) -> int:
        """Tokens of the chat-templated prompt for these messages."""
        ...

    def count_tokens(self, text: str) -> int: ...

    def info(self) -> dict[str, Any]: ...
