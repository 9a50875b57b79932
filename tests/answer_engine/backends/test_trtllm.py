"""The trtllm backend against the contract fake of tensorrt_llm (tests/fakes; no GPU here): how it
drives the library — LLM arguments, SamplingParams, streaming text_diff, abort, engine directories."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from answer_engine.backends.base import BackendError, ChatMessage, GenerationParams
from answer_engine.backends.trtllm import TrtLlmBackend

MESSAGES = [
    ChatMessage(role="system", content="Answer briefly."),
    ChatMessage(role="user", content="What is a tide?"),
]


async def collect(backend, params=None):
    return [p async for p in backend.stream(MESSAGES, params or GenerationParams(max_tokens=64))]


async def test_streams_text_diff_pieces_that_add_up_to_the_full_text(fake_tensorrt_llm, tiny_checkpoint):
    backend = TrtLlmBackend(tiny_checkpoint, max_batch_size=4, max_seq_len=1024)
    await backend.start()
    pieces = await collect(backend)
    assert len(pieces) > 1 and "".join(pieces) == backend.last_full_text
    llm = backend.llm
    assert llm.kind == "pytorch" and llm.args["kv_cache_config"].enable_block_reuse is True
    assert llm.args["max_batch_size"] == 4 and llm.args["max_seq_len"] == 1024


async def test_sampling_params_max_tokens_stop_ids_and_no_second_bos(fake_tensorrt_llm, tiny_checkpoint):
    backend = TrtLlmBackend(tiny_checkpoint)
    await backend.start()
    await collect(backend, GenerationParams(max_tokens=77, temperature=0.0, stop=["\nQuestion:"]))
    request = backend.llm.requests[-1]
    params = request._params
    assert params.max_tokens == 77  # never the library's tiny default
    assert params.add_special_tokens is False and params.stop == ["\nQuestion:"]
    tok = backend.llm.tokenizer
    assert params.stop_token_ids == [tok.eos_token_id]  # from generation_config.json and the tokenizer
    assert request.prompt.startswith("<|im_start|>system\nAnswer briefly.<|im_end|>")
    assert request.prompt_token_ids[0] != tok.bos_token_id  # the template's tokens, nothing added
    assert request.outputs[0].finish_reason == "stop"  # ended at the end id, before max_tokens


async def test_closing_the_stream_aborts_the_request(fake_tensorrt_llm, tiny_checkpoint):
    backend = TrtLlmBackend(tiny_checkpoint)
    await backend.start()
    stream = backend.stream(MESSAGES, GenerationParams(max_tokens=500))
    async with contextlib.aclosing(stream):
        await stream.__anext__()
    request = backend.llm.requests[-1]
    assert request.aborted and request in backend.llm.aborted
    await asyncio.sleep(0.05)
    assert backend.llm.active == 0


async def test_engine_directory_loads_with_the_tensorrt_engine_class(
    fake_tensorrt_llm, tiny_checkpoint, tmp_path
):
    from tensorrt_llm._tensorrt_engine import LLM as EngineLLM

    builder = EngineLLM(model=str(tiny_checkpoint))
    builder.save(str(tmp_path / "engine"))
    backend = TrtLlmBackend(tmp_path / "engine", tokenizer_dir=tiny_checkpoint)
    await backend.start()
    assert backend.engine and backend.llm.kind == "tensorrt"
    assert "max_batch_size" not in backend.llm.args  # baked into the engine at build time
    assert await collect(backend)
    backend.close()
    assert builder.is_shutdown is False and backend.llm is None


async def test_runs_under_the_real_pipeline(fake_tensorrt_llm, tiny_checkpoint, settings):
    from answer_engine.components import build_pipeline
    from answer_engine.request import AskRequest

    pipeline = build_pipeline(settings, backend=TrtLlmBackend(tiny_checkpoint))
    events = [e async for e in pipeline.run(AskRequest(query="Who was Marie Curie?"))]
    assert events[-1].type == "done" and events[-1].timings.completion_tokens > 0


def test_missing_model_dir_is_a_clear_error(tmp_path):
    with pytest.raises(BackendError, match="model directory not found"):
        TrtLlmBackend(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BackendError, match="neither a checkpoint"):
        TrtLlmBackend(tmp_path / "empty")


def test_without_the_library_start_up_says_what_is_missing(tiny_checkpoint, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tensorrt_llm", None)  # import fails, as on a machine without it
    with pytest.raises(BackendError, match="needs NVIDIA's tensorrt_llm"):
        TrtLlmBackend(tiny_checkpoint).load()
