"""The transformers backend on a tiny Llama built from a config in the test (CPU)."""

from __future__ import annotations

import contextlib

import pytest

from answer_engine.backends.base import BackendError, ChatMessage, GenerationParams
from answer_engine.backends.transformers_backend import TransformersBackend

MESSAGES = [ChatMessage(role="user", content="What is a tide?")]


async def test_streams_greedy_text_deterministically(tiny_checkpoint):
    backend = TransformersBackend(tiny_checkpoint)
    await backend.start()
    first = [p async for p in backend.stream(MESSAGES, GenerationParams(max_tokens=12))]
    second = [p async for p in backend.stream(MESSAGES, GenerationParams(max_tokens=12))]
    assert first and "".join(first) == "".join(second)
    assert backend.tokens_generated <= 2 * 12  # max_tokens honoured on both runs
    assert backend.count_tokens("".join(first)) > 0
    assert backend.count_prompt_tokens(MESSAGES) > 5 and backend.info()["device"] == "cpu"
    backend.close()


async def test_closing_the_stream_stops_generation(tiny_checkpoint):
    backend = TransformersBackend(tiny_checkpoint)
    await backend.start()
    stream = backend.stream(MESSAGES, GenerationParams(max_tokens=400))
    async with contextlib.aclosing(stream):
        await stream.__anext__()
    before = backend.tokens_generated
    import asyncio

    await asyncio.sleep(0.5)
    assert backend.tokens_generated - before <= 2  # stopped at the next token, not after 400
    backend.close()


def test_not_a_checkpoint(tmp_path):
    with pytest.raises(BackendError, match="no config.json"):
        TransformersBackend(tmp_path)


def test_stop_trimmer_never_emits_the_stop_string():
    from answer_engine.backends.base import StopTrimmer

    trim = StopTrimmer(["\nQuestion:", "<|end|>"])
    out = "".join(trim.feed(p) for p in ["The answer", " is 4.\nQue", "stion: next", " more"]) + trim.finish()
    assert out == "The answer is 4." and trim.stopped
    trim = StopTrimmer(["STOP"])
    assert "".join(trim.feed(p) for p in ["no st", "op here"]) + trim.finish() == "no stop here"


async def test_stop_strings_end_the_answer_without_showing_them(tiny_checkpoint):
    backend = TransformersBackend(tiny_checkpoint)
    full = "".join([p async for p in backend.stream(MESSAGES, GenerationParams(max_tokens=16))])
    word = full[len(full) // 2 : len(full) // 2 + 2]
    cut = "".join([p async for p in backend.stream(MESSAGES, GenerationParams(max_tokens=16, stop=[word]))])
    assert word not in cut and full.startswith(cut)
    backend.close()
