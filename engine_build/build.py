"""`engine-build build` (GPU) and `engine-build package` (any machine).

build compiles a TensorRT engine with TensorRT-LLM's LLM API and saves it, with the tokenizer and a
manifest (input hashes, library and CUDA versions, GPU name and compute capability, settings,
timings), as an immutable artifact named from the content hash of its inputs and settings. Without a
GPU or without the library it stops before writing anything.

package wraps a model that needs no compiling (a GGUF file for llama.cpp, a Hugging Face checkpoint
for transformers or TensorRT-LLM's PyTorch backend) as an artifact of the same shape, so promote
and rollback work the same way for every backend.
"""

from __future__ import annotations

import platform
import shutil
import time
from pathlib import Path
from typing import Any

from engine_build import artifacts
from engine_build.checkpoint import CheckpointError, copy_tokenizer, sha256_file, tree_hash
from engine_build.plan import QUANT_ALGO, Target, artifact_id, build_settings, make_plan


class BuildUnavailable(Exception):
    """This machine cannot build (no GPU, or no tensorrt_llm)."""


def gpu_environment() -> dict[str, Any]:
    """The GPU and library versions, or BuildUnavailable saying what is missing."""
    try:
        import torch
    except ImportError as exc:
        raise BuildUnavailable("torch is not installed") from exc
    if not torch.cuda.is_available():
        raise BuildUnavailable(
            "no CUDA GPU is visible (torch.cuda.is_available() is False); "
            "engines are built on the GPU architecture that will serve them"
        )
    try:
        import tensorrt_llm
    except ImportError as exc:
        raise BuildUnavailable(
            "tensorrt_llm is not installed (pip install tensorrt-llm from NVIDIA's index "
            "on a GPU machine; see the README)"
        ) from exc
    major, minor = torch.cuda.get_device_capability(0)
    return {
        "gpu": torch.cuda.get_device_name(0),
        "compute_capability": f"{major}.{minor}",
        "gpu_count": torch.cuda.device_count(),
        "cuda": torch.version.cuda,
        "tensorrt_llm": getattr(tensorrt_llm, "__version__", "?"),
        "torch": torch.__version__,
        "host": platform.node(),
    }


def build(checkpoint: Path, target: Target, root: Path) -> Path:
    env = gpu_environment()  # raises before anything is written
    plan = make_plan(checkpoint, target, root)
    if not plan["ok"]:
        raise CheckpointError("the plan has problems: " + "; ".join(plan["problems"]))
    inputs = plan["inputs"]
    aid = artifact_id(inputs, target, "trtllm-engine")

    def fill(tmp: Path) -> dict[str, Any]:
        from tensorrt_llm._tensorrt_engine import LLM
        from tensorrt_llm.llmapi import BuildConfig, QuantAlgo, QuantConfig

        t0 = time.perf_counter()
        build_config = BuildConfig(
            max_batch_size=target.max_batch_size,
            max_input_len=target.max_input_len,
            max_seq_len=target.max_seq_len,
            max_num_tokens=target.max_num_tokens,
        )
        kwargs: dict[str, Any] = {}
        if target.quantization != "none":
            algo = getattr(QuantAlgo, QUANT_ALGO[target.quantization])
            kwargs["quant_config"] = QuantConfig(
                quant_algo=algo,
                **({"kv_cache_quant_algo": QuantAlgo.FP8} if target.quantization == "fp8" else {}),
            )
        llm = LLM(
            model=str(checkpoint), tensor_parallel_size=target.tp_size, build_config=build_config, **kwargs
        )
        t_build = time.perf_counter() - t0
        llm.save(str(tmp / "model"))
        llm.shutdown()
        copy_tokenizer(Path(checkpoint), tmp / "tokenizer")
        return {
            "kind": "trtllm-engine",
            "model": "model",
            "tokenizer": "tokenizer",
            "inputs": inputs,
            "settings": build_settings(target),
            "environment": env,
            "memory_estimate": plan["memory"],
            "timings": {"build_s": round(t_build, 1), "total_s": round(time.perf_counter() - t0, 1)},
        }

    return artifacts.create_artifact(root, aid, fill)


def package(model: Path, root: Path, *, lora: Path | None = None) -> Path:
    """A GGUF file (kind gguf) or a Hugging Face checkpoint directory (kind hf) as an artifact.

    ``lora``: a GGUF LoRA adapter (``engine-build lora-to-gguf``) packaged beside a GGUF base and
    applied by llama.cpp at load, so a tuned model is promoted and rolled back like any other; it is
    checked against the base first (architecture, tensor names and shapes)."""
    model = Path(model)
    adapter: dict[str, Any] | None = None
    if lora is not None:
        from engine_build.gguf_lora import check_adapter

        lora = Path(lora)
        if not (model.is_file() and model.suffix == ".gguf"):
            raise CheckpointError(f"--lora needs a .gguf base model, not {model}")
        if not lora.is_file():
            raise CheckpointError(f"no such adapter file: {lora}")
        adapter = check_adapter(lora, model)
    if model.is_file() and model.suffix == ".gguf":
        digest = sha256_file(model)
        kind, inputs = "gguf", {"model": digest}
        if lora is not None:
            inputs["lora"] = sha256_file(lora)
    elif model.is_dir() and (model / "config.json").is_file():
        kind, inputs = "hf", {"checkpoint": tree_hash(model)}
    else:
        raise CheckpointError(f"{model}: give a .gguf file or a Hugging Face checkpoint directory")
    aid = artifact_id(inputs, Target(), kind)

    def fill(tmp: Path) -> dict[str, Any]:
        if kind == "gguf":
            (tmp / "model").mkdir()
            shutil.copy2(model, tmp / "model" / "model.gguf")
            manifest = {"kind": kind, "model": "model/model.gguf", "inputs": inputs, "source": str(model)}
            if lora is not None:
                shutil.copy2(lora, tmp / "model" / "adapter.gguf")
                manifest.update(lora="model/adapter.gguf", lora_source=str(lora), adapter=adapter)
            return manifest
        shutil.copytree(model, tmp / "model")
        return {"kind": kind, "model": "model", "inputs": inputs, "source": str(model)}

    return artifacts.create_artifact(root, aid, fill)
