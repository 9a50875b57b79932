"""Graceful shutdown on a real uvicorn: when the server is told to stop (its SIGTERM handler), an
answer that can finish within server.shutdown_grace_s finishes; one that cannot ends with an error
event — on the native SSE endpoint and the OpenAI stream — and its backend stops."""

from __future__ import annotations

import asyncio
import json
import signal

import httpx
import pytest
from sse_starlette.sse import AppStatus

from answer_engine.api.app import create_app
from answer_engine.components import build_pipeline
from answer_engine.evaluation.server import ServerThread


@pytest.fixture
def stoppable(settings):
    servers = []

    def start(backend, grace_s=1.0):
        settings.server.shutdown_grace_s = grace_s
        server = ServerThread(
            create_app(settings, pipeline=build_pipeline(settings, backend=backend)), graceful_s=10
        )
        servers.append(server)
        return server, server.start()

    yield start
    for server in servers:
        server.stop()
    AppStatus.should_exit = False  # process-wide: later servers in this test run must not see it


async def read_until_first_delta(response):
    lines = response.aiter_lines()
    async for line in lines:
        if line.startswith("event: delta"):
            return lines
    raise AssertionError("no delta")


async def test_a_short_answer_in_flight_finishes(stoppable, fake_backend_cls):
    server, url = stoppable(fake_backend_cls(["Marie", " Curie", " won", " it", "."], delay=0.1), grace_s=5)
    async with httpx.AsyncClient(timeout=30) as client:
        async with client.stream("POST", f"{url}/api/ask", json={"query": "Who was Marie Curie?"}) as r:
            rest = await read_until_first_delta(r)
            server.server.handle_exit(signal.SIGTERM, None)
            events = [line[7:] async for line in rest if line.startswith("event: ")]
    assert events[-1] == "done" and "error" not in events


async def test_a_long_answer_ends_with_an_error_event_and_the_backend_stops(stoppable, fake_backend_cls):
    backend = fake_backend_cls([f" w{i}" for i in range(400)], delay=0.05)  # 20 s of answer
    server, url = stoppable(backend, grace_s=1.0)
    async with httpx.AsyncClient(timeout=30) as client:
        async with client.stream("POST", f"{url}/api/ask", json={"query": "Who was Marie Curie?"}) as r:
            rest = await read_until_first_delta(r)
            server.server.handle_exit(signal.SIGTERM, None)
            async with asyncio.timeout(10):
                lines = [line async for line in rest]
    events = [line[7:] for line in lines if line.startswith("event: ")]
    data = [json.loads(line[5:]) for line in lines if line.startswith("data:")]
    assert (
        events[-1] == "error" and data[-1]["stage"] == "shutdown" and "shutting down" in data[-1]["message"]
    )
    assert backend.closed == 1 and backend.emitted < 400


async def test_openai_stream_ends_with_an_error_chunk_then_done(stoppable, fake_backend_cls):
    backend = fake_backend_cls([f" w{i}" for i in range(400)], delay=0.05)
    server, url = stoppable(backend, grace_s=1.0)
    body = {
        "model": "answer-engine",
        "stream": True,
        "messages": [{"role": "user", "content": "Who was Marie Curie?"}],
    }
    async with httpx.AsyncClient(timeout=30) as client:
        async with client.stream("POST", f"{url}/v1/chat/completions", json=body) as r:
            lines = r.aiter_lines()
            async for line in lines:
                if '"content": " w' in line:
                    break
            server.server.handle_exit(signal.SIGTERM, None)
            async with asyncio.timeout(10):
                rest = [line for line in [x async for x in lines] if line.startswith("data:")]
    assert rest[-1] == "data: [DONE]"
    error = json.loads(rest[-2][5:])["error"]
    assert "shutting down" in error["message"]
