"""The generation-backend Protocol: stream text for chat messages, count tokens, describe itself."""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from answer_engine.request import ChatMessage

__all__ = [
    "Backend",
    "BackendError",
    "ChatMessage",
    "GenerationParams",
    "StopTrimmer",
    "stream_from_thread",
    "too_short",
]


class GenerationParams(BaseModel):
    max_tokens: int = Field(256, ge=1)
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    stop: list[str] = []
    json_schema: dict[str, Any] | None = Field(
        None, description="Decode only JSON valid against this schema (see schema_problem)."
    )
    min_chars: int = Field(
        0,
        ge=0,
        description="The model may not end before its text holds this many letters or digits outside"
        " [n] markers (see too_short); 0: no floor. Backends without the means to enforce it ignore it.",
    )


_MARKERS_RE = re.compile(r"\[[\d\s,;–-]*\]")
_NOT_CONTENT_RE = re.compile(r"[\W_]+")


def too_short(text: str, min_chars: int) -> bool:
    """Whether ``text`` holds fewer than ``min_chars`` letters or digits outside [n] markers: "1" or
    "[1]" is no answer, "No." and "42" are."""
    return min_chars > 0 and len(_NOT_CONTENT_RE.sub("", _MARKERS_RE.sub("", text))) < min_chars


class BackendError(Exception):
    """The backend cannot start or failed while generating."""


@runtime_checkable
class Backend(Protocol):
    """What the pipeline needs of a model runner. Backends subclass it, so the optional lifecycle
    methods (``start``, ``close``, ``aclose``) have their defaults: nothing to load, nothing to free."""

    # Whether the model can answer the verify stage's yes/no checks (a language model can; the
    # extractive backend, which only quotes its sources, cannot and need not).
    judges: bool = True

    def stream(self, messages: list[ChatMessage], params: GenerationParams) -> AsyncIterator[str]:
        """Yield the answer as text pieces. Closing the iterator stops generation."""
        ...

    def count_prompt_tokens(self, messages: list[ChatMessage]) -> int:
        """Tokens of the chat-templated prompt for these messages."""
        ...

    def count_tokens(self, text: str) -> int: ...

    def info(self) -> dict[str, Any]: ...

    def stronger(self) -> Backend | None:
        """The stronger backend this one hands hard questions to (the router's); None: there is none,
        or it is unavailable."""
        return None

    def schema_problem(self, schema: dict[str, Any]) -> str | None:
        """Why this backend cannot constrain its output to ``schema`` (None: it can). Asked before
        anything streams, so a schema it cannot honour is the caller's 400, not a broken answer."""
        return f"the {type(self).__name__} cannot constrain its output to a JSON schema"

    async def start(self) -> None:
        """Load the model (blocking work in a thread); called once before the first answer."""
        return None

    async def warm_prefix(self, messages: list[ChatMessage]) -> None:
        """Evaluate the prompt of ``messages`` ahead of time and keep its state, so later prompts that
        start the same way (the system prompt of every answer) skip that part; a no-op where the
        backend keeps no state between prompts."""
        return None

    def close(self) -> None:
        """Free what the backend holds (model memory, threads)."""
        return None

    async def aclose(self) -> None:
        """Close from async code; backends holding async resources override this."""
        self.close()


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


def decode_rate(tokens: int, seconds: float, max_tokens: int) -> float:
    """Tokens per second after the first one. The first token's time is prefill's; each later token
    is one decode step, and an answer that ended before ``max_tokens`` took one step more, for the
    end-of-turn token it never shows (with ~20-token answers, dividing by ``tokens - 1`` alone reads
    ~5% slow: raw llama.cpp's stream counted that step as a chunk)."""
    steps = tokens if tokens < max_tokens else tokens - 1
    return steps / seconds if tokens > 1 and seconds > 0 else 0.0


_END = object()
Emit = Callable[[str], None]


async def stream_from_thread(
    executor: concurrent.futures.Executor, generate: Callable[[Emit, threading.Event], None], library: str
) -> AsyncIterator[str]:
    """Run a blocking ``generate(emit, cancel)`` on the backend's worker thread and hand what it emits
    to asyncio. Closing the iterator sets ``cancel``, which the worker checks at its next token; the
    worker is not waited for. A failure in the worker arrives here as BackendError."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue()
    cancel = threading.Event()

    def put(item: object) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the event loop is gone: nobody is listening
            cancel.set()

    def work() -> None:
        try:
            if not cancel.is_set():
                generate(put, cancel)
        except BaseException as exc:  # handed to the consumer
            put(exc if isinstance(exc, BackendError) else BackendError(f"{library} failed: {exc}"))
        finally:
            put(_END)

    future = loop.run_in_executor(executor, work)
    try:
        while True:
            item = await queue.get()
            if item is _END:
                break
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        cancel.set()
        if not future.done():
            future.add_done_callback(lambda f: f.exception())
