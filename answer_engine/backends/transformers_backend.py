"""A Hugging Face checkpoint through transformers, on a GPU when there is one, else the CPU.

The checkpoint's own chat template formats the prompt; generation runs on one worker thread
with a streamer that hands decoded text to asyncio, and a stopping criterion that checks the
cancel flag before every new token (closing the iterator stops generation within one token).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from answer_engine.backends.base import (
    Backend,
    BackendError,
    ChatMessage,
    GenerationParams,
    StopTrimmer,
    stream_from_thread,
)


def check_checkpoint(path: Path) -> None:
    if not (path / "config.json").is_file():
        raise BackendError(f"{path} is not a Hugging Face checkpoint (no config.json)")


class TransformersBackend(Backend):
    name = "transformers"

    def __init__(self, checkpoint: Path, *, device: str | None = None, dtype: str = "auto") -> None:
        self.checkpoint = Path(checkpoint)
        check_checkpoint(self.checkpoint)
        self.device = device
        self.dtype = dtype
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="transformers"
        )
        self._model: Any = None
        self._tok: Any = None
        self._lock = threading.Lock()
        self.tokens_generated = 0

    def load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
            try:
                tok = AutoTokenizer.from_pretrained(self.checkpoint, local_files_only=True)
                model = AutoModelForCausalLM.from_pretrained(
                    self.checkpoint, local_files_only=True, dtype=self.dtype
                )
            except (OSError, ValueError) as exc:
                raise BackendError(f"transformers could not load {self.checkpoint}: {exc}") from exc
            if not getattr(tok, "chat_template", None):
                raise BackendError(f"{self.checkpoint} has no chat template; use an instruct checkpoint")
            self._model = model.to(device).eval()
            self._tok = tok
            self.device = device

    async def start(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self.load)

    def _prompt_ids(self, messages: list[ChatMessage]) -> Any:
        self.load()
        text = self._tok.apply_chat_template(
            [m.model_dump() for m in messages], tokenize=False, add_generation_prompt=True
        )
        # the template already wrote the special tokens
        return self._tok(text, return_tensors="pt", add_special_tokens=False).input_ids

    def count_prompt_tokens(self, messages: list[ChatMessage]) -> int:
        return int(self._prompt_ids(messages).shape[1])

    def count_tokens(self, text: str) -> int:
        self.load()
        return len(self._tok(text, add_special_tokens=False).input_ids) if text else 0

    def info(self) -> dict[str, Any]:
        return {"backend": self.name, "checkpoint": str(self.checkpoint), "device": self.device}

    def _generate(
        self, messages: list[ChatMessage], params: GenerationParams, emit: Any, cancel: threading.Event
    ) -> None:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextStreamer

        backend = self

        class Cancelled(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                backend.tokens_generated += 1
                return torch.full(
                    (input_ids.shape[0],), cancel.is_set(), dtype=torch.bool, device=input_ids.device
                )

        trim = StopTrimmer(params.stop)  # transformers stops at a stop string but leaves it in the text

        class Emit(TextStreamer):
            def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
                out = trim.feed(text) + (trim.finish() if stream_end else "")
                if out and not cancel.is_set():
                    emit(out)

        ids = self._prompt_ids(messages).to(self.device)
        sampling: dict[str, Any] = (
            {"do_sample": True, "temperature": params.temperature, "top_p": params.top_p}
            if params.temperature > 0
            else {"do_sample": False}
        )
        with torch.inference_mode():
            self._model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=params.max_tokens,
                streamer=Emit(self._tok, skip_prompt=True, skip_special_tokens=True),
                stopping_criteria=StoppingCriteriaList([Cancelled()]),
                stop_strings=params.stop or None,
                tokenizer=self._tok if params.stop else None,
                pad_token_id=self._tok.pad_token_id
                if self._tok.pad_token_id is not None
                else self._tok.eos_token_id,
                **sampling,
            )

    def stream(self, messages: list[ChatMessage], params: GenerationParams) -> AsyncIterator[str]:
        # the generator itself, not a wrapper around it: closing it must reach the worker's cancel flag
        return stream_from_thread(
            self._executor,
            lambda emit, cancel: self._generate(messages, params, emit, cancel),
            "transformers",
        )

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
