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


class StopTrimmer:
    """Stop strings for backends whose library leaves them in the text: holds back just enough of
    the stream to cut the answer before the first stop string, which is never emitted."""

    def __init__(self, stops: list[str]) -> None:
        self.stops = [s for s in stops if s]
        self.hold = max((len(s) for s in self.stops), default=1) - 1
        self.buffer = ""
        self.stopped = False

    def feed(self, piece: str) -> str:
        if self.stopped:
            return ""
        self.buffer += piece
        cut = min((i for i in (self.buffer.find(s) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            out, self.buffer = self.buffer[:cut], ""
            return out
        safe = len(self.buffer) - self.hold
        if safe <= 0:
            return ""
        out, self.buffer = self.buffer[:safe], self.buffer[safe:]
        return out

    def finish(self) -> str:
        out, self.buffer = ("" if self.stopped else self.buffer), ""
        return out
