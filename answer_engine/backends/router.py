"""The router backend: a local model answers; a stronger backend (any other backend: usually the
``openai`` one pointed at a frontier API or a bigger server) takes the questions the local one
should not answer alone.

As a Backend it *is* the local model (streams, counts, warms and judges with it); it offers the
stronger one through ``stronger()``, and the pipeline's policy (``[router]``: retrieval confidence,
the verifier's verdict on the local answer) decides when to use it. A strong backend that cannot
start, or fails, is reported and the local model answers.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from answer_engine.backends.base import Backend, BackendError, ChatMessage, GenerationParams

log = logging.getLogger(__name__)


class RouterBackend(Backend):
    name = "router"

    def __init__(self, local: Backend, strong: Backend) -> None:
        self.local = local
        self.strong = strong
        self.strong_error: str | None = None  # why the strong backend is not available, if it is not
        self.judges = local.judges

    async def start(self) -> None:
        await self.local.start()
        try:
            await self.strong.start()
        except BackendError as exc:  # the local model still answers; each answer says so
            self.strong_error = str(exc)
            log.warning("router: the strong backend is unavailable, answering locally: %s", exc)

    def stronger(self) -> Backend | None:
        return None if self.strong_error else self.strong

    def stream(self, messages: list[ChatMessage], params: GenerationParams) -> AsyncIterator[str]:
        return self.local.stream(messages, params)

    def count_prompt_tokens(self, messages: list[ChatMessage]) -> int:
        return self.local.count_prompt_tokens(messages)

    def count_tokens(self, text: str) -> int:
        return self.local.count_tokens(text)

    async def warm_prefix(self, messages: list[ChatMessage]) -> None:
        await self.local.warm_prefix(messages)

    def schema_problem(self, schema: dict[str, Any]) -> str | None:
        return self.local.schema_problem(schema)

    def info(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "local": self.local.info(),
            "strong": self.strong.info(),
            "strong_error": self.strong_error,
        }

    def close(self) -> None:
        self.local.close()
        self.strong.close()

    async def aclose(self) -> None:
        await self.local.aclose()
        await self.strong.aclose()
