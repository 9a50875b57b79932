"""Shared fixtures. Fakes stand at the edges only: a scripted generation backend; everything else
(index, page store, extraction, passage ranking, citations, the app) is the real code."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from answer_engine.backends.base import BackendError, ChatMessage, GenerationParams
from answer_engine.config import Settings, default_data_dir, load_settings
from answer_engine.models import is_installed, model_file
from search_adapters.local import LocalIndex

TEST_MODEL = "smollm2-135m-instruct-q4_1"


class FakeBackend:
    """Streams a scripted answer piece by piece; can fail mid-stream or hang; records what it saw."""

    name = "fake"

    def __init__(self, pieces: list[str] | None = None, *, fail_after: int | None = None, delay: float = 0.0,
                 hang: bool = False, related: list[str] | None = None) -> None:
        self.pieces = pieces if pieces is not None else ["Hello", " world."]
        self.related = related  # lines to answer the related-questions prompt with
        self.fail_after = fail_after
        self.delay = delay
        self.hang = hang
        self.calls: list[list[ChatMessage]] = []
        self.params: list[GenerationParams] = []
        self.closed = 0
        self.emitted = 0

    async def stream(self, messages: list[ChatMessage], params: GenerationParams) -> AsyncIterator[str]:
        self.calls.append(messages)
        self.params.append(params)
        asks_related = "follow-up questions" in messages[-1].content
        pieces = ["\n".join(self.related)] if asks_related and self.related is not None else self.pieces
        try:
            for i, piece in enumerate(pieces):
                if self.fail_after is not None and i >= self.fail_after:
                    raise BackendError("model crashed")
                if self.delay:
                    await asyncio.sleep(self.delay)
                self.emitted += 1
                yield piece
            if self.hang:
                await asyncio.sleep(3600)
        finally:
            self.closed += 1

    def count_prompt_tokens(self, messages: list[ChatMessage]) -> int:
        return sum(len(m.content.split()) for m in messages)

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def info(self) -> dict[str, Any]:
        return {"backend": self.name}


@pytest.fixture
def fake_backend_cls() -> type[FakeBackend]:
    return FakeBackend


@pytest.fixture(scope="session")
def shared_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir with the default corpus indexed once per session (the build takes seconds)."""
    d = tmp_path_factory.mktemp("data")
    LocalIndex(d).ensure()
    return d


@pytest.fixture
def settings(tmp_path: Path, shared_data_dir: Path) -> Settings:
    """Default settings on a private copy of the session's index, BM25-only passage ranking:
    embedding the whole corpus takes a minute, so the hybrid path has tests of its own."""
    d = tmp_path / "data"
    shutil.copytree(shared_data_dir, d)
    return load_settings(data_dir=d, retrieval={"dense_weight": 0.0})


@pytest.fixture(scope="session")
def test_model_path() -> Path:
    """The real SmolLM2-135M GGUF, pulled by the test command's set-up (make test)."""
    data_dir = Path(os.environ.get("AE_DATA_DIR") or default_data_dir())
    if not is_installed(data_dir, TEST_MODEL):
        pytest.fail(
            f"the test model is not installed in {data_dir}; run `make test` (or "
            f"`.venv/bin/answer-engine models pull {TEST_MODEL}`) first"
        )
    return model_file(data_dir, TEST_MODEL)


@pytest.fixture
def serve():
    """serve(app) -> base URL of a real server on 127.0.0.1; stopped after the test."""
    from answer_engine.evaluation.server import ServerThread

    servers: list[ServerThread] = []

    def start(app: Any) -> str:
        server = ServerThread(app)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()
