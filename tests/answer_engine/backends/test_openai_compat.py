"""The openai backend streaming from a real OpenAI-compatible server on 127.0.0.1: llama-cpp-python's
own server (python -m llama_cpp.server) serving SmolLM2-135M (the ``llama_server`` fixture, in
conftest.py). Error mapping through MockTransport."""

from __future__ import annotations

import contextlib
import socket

import httpx
import pytest

from answer_engine.backends.base import BackendError, ChatMessage, GenerationParams
from answer_engine.backends.openai_compat import OpenAIBackend

MESSAGES = [ChatMessage(role="user", content="Name a primary color.")]


@pytest.mark.model
async def test_streams_from_a_real_openai_compatible_server(llama_server):
    backend = OpenAIBackend(llama_server, "smollm2")
    await backend.start()
    pieces = [p async for p in backend.stream(MESSAGES, GenerationParams(max_tokens=16))]
    assert len(pieces) > 1 and "".join(pieces).strip()
    assert 0 < backend.count_tokens("".join(pieces)) <= 16  # the server's own usage count
    # closing early is fine and the next request still works
    stream = backend.stream(MESSAGES, GenerationParams(max_tokens=200))
    async with contextlib.aclosing(stream):
        await stream.__anext__()
    assert [p async for p in backend.stream(MESSAGES, GenerationParams(max_tokens=4))]
    await backend.aclose()


@pytest.mark.model
async def test_start_up_checks_the_model_is_served(llama_server):
    with pytest.raises(BackendError, match="does not serve model 'gpt-9'"):
        await OpenAIBackend(llama_server, "gpt-9").start()


async def test_unreachable_server_is_a_clear_error_at_start_up():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here
    with pytest.raises(BackendError, match="not reachable"):
        await OpenAIBackend(f"http://127.0.0.1:{port}/v1", "m", connect_timeout_s=1).start()


async def test_server_errors_become_backend_errors():
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/chat/completions"):
            return httpx.Response(
                500, json={"error": {"message": "CUDA out of memory", "type": "server_error"}}
            )
        return httpx.Response(200, json={"data": [{"id": "m"}]})

    backend = OpenAIBackend("http://model.internal/v1", "m", transport=httpx.MockTransport(handler))
    with pytest.raises(BackendError, match="HTTP 500.*CUDA out of memory"):
        [p async for p in backend.stream(MESSAGES, GenerationParams())]

    def mid_stream(request: httpx.Request) -> httpx.Response:
        body = b'data: {"choices":[{"delta":{"content":"Hel"}}]}\n\ndata: {"error":{"message":"engine died"}}\n\n'  # noqa: E501
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    backend = OpenAIBackend("http://model.internal/v1", "m", transport=httpx.MockTransport(mid_stream))
    got = []
    with pytest.raises(BackendError, match="engine died"):
        async for p in backend.stream(MESSAGES, GenerationParams()):
            got.append(p)
    assert got == ["Hel"]


def test_base_url_must_be_http():
    with pytest.raises(BackendError, match="http"):
        OpenAIBackend("127.0.0.1:8000", "m")
