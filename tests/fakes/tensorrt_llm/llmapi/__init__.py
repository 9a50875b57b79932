"""tensorrt_llm.llmapi, as a contract fake: LLM, SamplingParams, KvCacheConfig, BuildConfig, QuantConfig."""

from __future__ import annotations

import asyncio
import enum
import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CREATED: list["LLM"] = []  # every LLM made, for tests to inspect


@dataclass
class SamplingParams:
    max_tokens: int = 32  # the real default: tiny, which is why callers must always set it
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: str | list[str] | None = None
    stop_token_ids: list[int] | None = None
    end_id: int | None = None
    pad_id: int | None = None
    add_special_tokens: bool = True
    n: int = 1
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ValueError("max_tokens must be positive")


@dataclass
class KvCacheConfig:
    enable_block_reuse: bool = True
    free_gpu_memory_fraction: float | None = None
    max_tokens: int | None = None


@dataclass
class BuildConfig:
    max_batch_size: int = 2048
    max_input_len: int = 1024
    max_seq_len: int | None = None
    max_num_tokens: int = 8192
    max_beam_width: int = 1


class QuantAlgo(enum.StrEnum):
    FP8 = "FP8"
    W4A16_AWQ = "W4A16_AWQ"
    NVFP4 = "NVFP4"


@dataclass
class QuantConfig:
    quant_algo: QuantAlgo | None = None
    kv_cache_quant_algo: QuantAlgo | None = None


LLM_ARGS = {
    "tensor_parallel_size",
    "pipeline_parallel_size",
    "dtype",
    "kv_cache_config",
    "max_batch_size",
    "max_num_tokens",
    "max_seq_len",
    "max_input_len",
    "build_config",
    "quant_config",
    "backend",
    "trust_remote_code",
    "tokenizer_mode",
    "skip_tokenizer_init",
    "revision",
    "enable_chunked_prefill",
}


class CompletionOutput:
    def __init__(self) -> None:
        self.index = 0
        self.text = ""
        self.token_ids: list[int] = []
        self.finish_reason: str | None = None
        self._last_len = 0

    @property
    def text_diff(self) -> str:
        """The text new since the previous time the request yielded."""
        return self.text[self._last_len :]


class RequestOutput:
    def __init__(
        self, llm: "LLM", prompt: str, ids: list[int], params: SamplingParams, streaming: bool
    ) -> None:
        self.prompt = prompt
        self.prompt_token_ids = ids
        self.outputs = [CompletionOutput()]
        self.finished = False
        self.aborted = False
        self._llm, self._params, self._streaming = llm, params, streaming

    def abort(self) -> None:
        self.aborted = True
        self._llm.aborted.append(self)

    def _next_id(self, step: int) -> int:
        tok = self._llm.tokenizer
        seed = zlib.crc32(bytes(str(self.prompt_token_ids), "ascii"))
        stop_at = 4 + seed % 6  # the "model" ends its answer after a few tokens
        if step == stop_at:
            return int(tok.eos_token_id)
        specials = set(tok.all_special_ids)
        ordinary = [i for i in range(len(tok)) if i not in specials]
        return ordinary[(seed + 7 * step) % len(ordinary)]

    async def _steps(self):  # noqa: ANN202
        out, p, tok = self.outputs[0], self._params, self._llm.tokenizer
        stops = set(p.stop_token_ids or []) | {p.end_id if p.end_id is not None else tok.eos_token_id}
        stop_strings = [p.stop] if isinstance(p.stop, str) else list(p.stop or [])
        self._llm.active += 1
        try:
            for step in range(p.max_tokens):
                await asyncio.sleep(0.002)  # a decode step
                if self.aborted:
                    out.finish_reason = "cancelled"
                    break
                token = self._next_id(step)
                if token in stops:
                    out.finish_reason = "stop"
                    break
                out.token_ids.append(token)
                text = tok.decode(out.token_ids, skip_special_tokens=True)
                cut = min((text.find(s) for s in stop_strings if s in text), default=-1)
                if cut >= 0:
                    out.text = text[:cut]
                    out.finish_reason = "stop"
                    break
                out.text = text
                yield self
                out._last_len = len(out.text)
            else:
                out.finish_reason = "length"
        finally:
            self._llm.active -= 1
        self.finished = True
        yield self

    def __aiter__(self):  # noqa: ANN204
        if not self._streaming:
            raise RuntimeError("iterate a RequestOutput only when generate_async(..., streaming=True)")
        return self._steps().__aiter__()

    async def aresult(self) -> "RequestOutput":
        async for _ in self._steps():
            pass
        return self


class LLM:
    """tensorrt_llm.LLM: the PyTorch backend over a Hugging Face checkpoint."""

    kind = "pytorch"

    def __init__(self, model: str | Path, tokenizer: str | Path | None = None, **kwargs: Any) -> None:
        unknown = set(kwargs) - LLM_ARGS
        if unknown:
            raise ValueError(f"unexpected LLM arguments: {sorted(unknown)}")
        path = Path(model)
        if not (path / "config.json").is_file():
            raise ValueError(f"{model} is not a model directory")
        self._check_model(path)
        from transformers import AutoTokenizer

        self.model = str(model)
        self.args = kwargs
        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer or model, local_files_only=True)
        self.requests: list[RequestOutput] = []
        self.aborted: list[RequestOutput] = []
        self.active = 0
        self.is_shutdown = False
        CREATED.append(self)

    def _check_model(self, path: Path) -> None:
        if any(path.glob("rank*.engine")):
            raise ValueError("an engine directory: load it with tensorrt_llm._tensorrt_engine.LLM")

    def generate_async(
        self,
        inputs: str | list[int],
        sampling_params: SamplingParams | None = None,
        *,
        streaming: bool = False,
        **kwargs: Any,
    ) -> RequestOutput:
        if self.is_shutdown:
            raise RuntimeError("LLM is shut down")
        params = sampling_params or SamplingParams()
        if not isinstance(params, SamplingParams):
            raise TypeError("sampling_params must be a tensorrt_llm.SamplingParams")
        if isinstance(inputs, str):
            ids = self.tokenizer(inputs, add_special_tokens=params.add_special_tokens).input_ids
        else:
            ids = list(inputs)
        request = RequestOutput(self, inputs if isinstance(inputs, str) else "", ids, params, streaming)
        self.requests.append(request)
        return request

    def save(self, engine_dir: str) -> None:
        out = Path(engine_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "rank0.engine").write_bytes(b"FAKE-TRT-ENGINE")
        (out / "config.json").write_text(
            json.dumps(
                {
                    "pretrained_config": {"model": self.model},
                    "build_config": {k: str(v) for k, v in self.args.items()},
                }
            )
        )

    def shutdown(self) -> None:
        self.is_shutdown = True
