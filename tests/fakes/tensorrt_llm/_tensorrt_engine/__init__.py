"""tensorrt_llm._tensorrt_engine: the TensorRT engine LLM class of the 1.2 line (contract fake)."""

from __future__ import annotations

from pathlib import Path

from tensorrt_llm.llmapi import LLM as _PyTorchLLM


class LLM(_PyTorchLLM):
    kind = "tensorrt"

    def _check_model(self, path: Path) -> None:
        pass  # engine directories and checkpoints (built on construction) both load here
