"""TensorRT-LLM in-process: the production backend on NVIDIA GPUs.

- A Hugging Face (or quantized) checkpoint runs on the PyTorch backend, TensorRT-LLM 1.x's
  default: ``tensorrt_llm.LLM``. A prebuilt TensorRT engine directory (``rank0.engine`` and its
  config.json) runs on the TensorRT engine LLM class of the 1.2 line,
  ``tensorrt_llm._tensorrt_engine.LLM``.
- Streaming: ``generate_async(prompt, SamplingParams(...), streaming=True)``; each output's
  ``outputs[0].text_diff`` is the new text. ``max_tokens`` is always set (the library's default
  is tiny); the prompt is chat-templated by us with the checkpoint's tokenizer, so
  ``add_special_tokens=False``; stop token ids come from the tokenizer and generation config.
- Closing the iterator (client gone) calls ``abort()`` on the request.
- KV-cache block reuse is on, so the shared system prompt is computed once across requests.

The library needs an NVIDIA GPU and NVIDIA's package index; it is imported only when this backend
is built. Tests run this code against a fake module that follows the real API's contract
(tests/fakes/tensorrt_llm).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from answer_engine.backends.base import Backend, BackendError, ChatMessage, GenerationParams


def is_engine_dir(path: Path) -> bool:
    """A TensorRT engine directory (what trtllm-build / LLM.save write), not a checkpoint."""
    return any(path.glob("rank*.engine")) and (path / "config.json").is_file()


def stop_token_ids(model_dir: Path, tokenizer: Any) -> list[int]:
    ids: list[int] = []
    gen = model_dir / "generation_config.json"
    if gen.is_file():
        eos = json.loads(gen.read_text(encoding="utf-8")).get("eos_token_id")
        ids += eos if isinstance(eos, list) else [eos] if isinstance(eos, int) else []
    if tokenizer.eos_token_id is not None:
        ids.append(int(tokenizer.eos_token_id))
    return sorted(set(ids))


class TrtLlmBackend(Backend):
    name = "trtllm"

    def __init__(
        self,
        model_dir: Path,
        *,
        tokenizer_dir: Path | None = None,
        max_batch_size: int = 16,
        max_seq_len: int = 4096,
        max_num_tokens: int = 8192,
        tensor_parallel_size: int = 1,
        free_gpu_memory_fraction: float = 0.85,
    ) -> None:
        self.model_dir = Path(model_dir)
        if not self.model_dir.is_dir():
            raise BackendError(f"trtllm: model directory not found: {self.model_dir}")
        self.tokenizer_dir = Path(tokenizer_dir or self.model_dir)
        self.engine = is_engine_dir(self.model_dir)
        if not self.engine and not (self.model_dir / "config.json").is_file():
            raise BackendError(
                f"trtllm: {self.model_dir} is neither a checkpoint (config.json) nor an engine directory"
            )
        self.options = {
            "max_batch_size": max_batch_size,
            "max_seq_len": max_seq_len,
            "max_num_tokens": max_num_tokens,
            "tensor_parallel_size": tensor_parallel_size,
        }
        self.free_gpu_memory_fraction = free_gpu_memory_fraction
        self.llm: Any = None
        self._tok: Any = None
        self._stop_ids: list[int] = []
        self.tokens_generated = 0
        self.last_full_text: str | None = None

    def load(self) -> None:
        if self.llm is not None:
            return
        try:
            import tensorrt_llm
            from tensorrt_llm.llmapi import KvCacheConfig
        except ImportError as exc:
            raise BackendError(
                "the trtllm backend needs NVIDIA's tensorrt_llm package and a GPU "
                "(pip install tensorrt-llm from NVIDIA's index; see the README)"
            ) from exc
        from transformers import AutoTokenizer

        self._tok = AutoTokenizer.from_pretrained(self.tokenizer_dir, local_files_only=True)
        if not getattr(self._tok, "chat_template", None):
            raise BackendError(f"{self.tokenizer_dir}: the tokenizer has no chat template")
        self._stop_ids = stop_token_ids(self.tokenizer_dir, self._tok)
        kv = KvCacheConfig(enable_block_reuse=True, free_gpu_memory_fraction=self.free_gpu_memory_fraction)
        if self.engine:
            from tensorrt_llm._tensorrt_engine import LLM as EngineLLM

            # limits are baked into the engine at build time
            self.llm = EngineLLM(
                model=str(self.model_dir), tokenizer=str(self.tokenizer_dir), kv_cache_config=kv
            )
        else:
            self.llm = tensorrt_llm.LLM(
                model=str(self.model_dir),
                tokenizer=str(self.tokenizer_dir),
                kv_cache_config=kv,
                **self.options,
            )

    async def start(self) -> None:
        import asyncio

        await asyncio.to_thread(self.load)

    def _prompt(self, messages: list[ChatMessage]) -> str:
        self.load()
        return str(
            self._tok.apply_chat_template(
                [m.model_dump() for m in messages], tokenize=False, add_generation_prompt=True
            )
        )

    def count_prompt_tokens(self, messages: list[ChatMessage]) -> int:
        prompt = self._prompt(messages)  # loads the tokenizer first
        return len(self._tok(prompt, add_special_tokens=False).input_ids)

    def count_tokens(self, text: str) -> int:
        self.load()
        return len(self._tok(text, add_special_tokens=False).input_ids) if text else 0

    def info(self) -> dict[str, Any]:
        return {"backend": self.name, "model_dir": str(self.model_dir), "engine": self.engine, **self.options}

    def sampling_params(self, params: GenerationParams) -> Any:
        from tensorrt_llm import SamplingParams

        return SamplingParams(
            max_tokens=params.max_tokens,  # always: the library's default is tiny
            temperature=params.temperature,
            top_p=params.top_p if params.temperature > 0 else 1.0,
            stop=list(params.stop) or None,
            stop_token_ids=self._stop_ids or None,
            add_special_tokens=False,  # the chat template already wrote them
        )

    async def stream(self, messages: list[ChatMessage], params: GenerationParams) -> AsyncIterator[str]:
        prompt = self._prompt(messages)
        try:
            request = self.llm.generate_async(
                prompt, sampling_params=self.sampling_params(params), streaming=True
            )
        except Exception as exc:
            raise BackendError(f"trtllm refused the request: {exc}") from exc
        finished = False
        last: Any = None
        try:
            async for output in request:
                last = output
                piece = output.outputs[0].text_diff
                self.tokens_generated += 1
                if piece:
                    yield piece
            finished = True
            # the library's own full text, which verify compares with the streamed pieces
            self.last_full_text = last.outputs[0].text if last is not None else ""
        except BackendError:
            raise
        except Exception as exc:
            raise BackendError(f"trtllm failed while generating: {type(exc).__name__}: {exc}") from exc
        finally:
            if not finished:
                request.abort()  # the client went away: free the slot and its KV blocks now

    def close(self) -> None:
        if self.llm is not None:
            self.llm.shutdown()
            self.llm = None
