"""`engine-build plan`: validate the checkpoint, estimate GPU memory, and state the exact build."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from engine_build.checkpoint import CheckpointInfo, inspect_checkpoint, tree_hash

Quantization = Literal["none", "fp8", "int4_awq"]
GIB = 1024**3
# bytes per weight of the quantized linear layers; int4 AWQ adds an fp16 scale per group of 128
WEIGHT_BYTES = {"none": 2.0, "fp8": 1.0, "int4_awq": 0.5 + 2 / 128}
KV_BYTES = {"none": 2, "fp8": 1, "int4_awq": 2}  # fp8 builds also quantize the KV cache to fp8
RUNTIME_OVERHEAD_BYTES = 1.5 * GIB  # CUDA context, cuBLAS/NCCL workspaces, allocator slack (per GPU)
QUANT_ALGO = {"fp8": "FP8", "int4_awq": "W4A16_AWQ"}
# TensorRT-LLM's per-family convert scripts (examples/models/core/<family>/convert_checkpoint.py)
CONVERT_FAMILY = {
    "LlamaForCausalLM": "llama",
    "MistralForCausalLM": "llama",
    "MixtralForCausalLM": "llama",
    "Qwen2ForCausalLM": "qwen",
    "Qwen3ForCausalLM": "qwen",
    "Qwen3MoeForCausalLM": "qwen",
    "Gemma2ForCausalLM": "gemma",
    "Gemma3ForCausalLM": "gemma",
    "Phi3ForCausalLM": "phi",
    "NemotronForCausalLM": "nemotron",
    "DeepseekV3ForCausalLM": "deepseek_v3",
}


@dataclass
class Target:
    quantization: Quantization = "none"
    max_batch_size: int = 16
    max_input_len: int = 3072
    max_seq_len: int = 4096
    max_num_tokens: int = 8192
    tp_size: int = 1

    def check(self, info: CheckpointInfo) -> list[str]:
        problems = []
        if self.max_input_len >= self.max_seq_len:
            problems.append("max_input_len must be smaller than max_seq_len (room for the answer)")
        if info.max_position_embeddings and self.max_seq_len > info.max_position_embeddings:
            problems.append(
                f"max_seq_len {self.max_seq_len} exceeds the model's max_position_embeddings "
                f"{info.max_position_embeddings}"
            )
        if info.num_heads % self.tp_size or info.num_kv_heads % self.tp_size:
            problems.append(
                f"tp_size {self.tp_size} does not divide the attention heads "
                f"({info.num_heads} query, {info.num_kv_heads} key/value)"
            )
        if self.max_num_tokens < self.max_input_len:
            problems.append("max_num_tokens should be at least max_input_len (one full prompt per step)")
        return problems


def estimate_memory(info: CheckpointInfo, target: Target) -> dict[str, float]:
    """GiB per GPU: weights at the chosen precision, a full KV cache for max_batch_size sequences of
    max_seq_len, activations for max_num_tokens, and runtime overhead."""
    embed = info.vocab_size * info.hidden_size * (1 if info.tie_word_embeddings else 2)
    linear = max(0, info.parameters - embed)
    weights = linear * WEIGHT_BYTES[target.quantization] + embed * 2.0
    kv_per_token = 2 * info.num_layers * info.num_kv_heads * info.head_dim * KV_BYTES[target.quantization]
    kv = kv_per_token * target.max_batch_size * target.max_seq_len
    activations = (
        target.max_num_tokens * info.hidden_size * 2 * 8 + target.max_batch_size * info.vocab_size * 4
    )
    per_gpu = (weights + kv) / target.tp_size + activations + RUNTIME_OVERHEAD_BYTES
    return {
        "weights_gib": round(weights / GIB, 3),
        "kv_cache_per_token_bytes": kv_per_token,
        "kv_cache_gib": round(kv / GIB, 3),
        "activations_gib": round(activations / GIB, 3),
        "runtime_overhead_gib": round(RUNTIME_OVERHEAD_BYTES / GIB, 2),
        "per_gpu_gib": round(per_gpu / GIB, 3),
        "total_gib": round((per_gpu * target.tp_size) / GIB, 3),
    }


def build_settings(target: Target) -> dict[str, Any]:
    return asdict(target)


def artifact_id(inputs: dict[str, str], target: Target, kind: str) -> str:
    """Content address: the same inputs and settings always name the same artifact."""
    import hashlib

    key = json.dumps({"inputs": inputs, "settings": build_settings(target), "kind": kind}, sort_keys=True)
    return f"{kind}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def commands(checkpoint: Path, target: Target, output: Path, architecture: str = "") -> dict[str, Any]:
    """What build runs: the Python API call, and the equivalent command lines for operators."""
    q = target.quantization
    api = [
        "from tensorrt_llm._tensorrt_engine import LLM",
        "from tensorrt_llm.llmapi import BuildConfig, KvCacheConfig, QuantConfig, QuantAlgo",
        f"build_config = BuildConfig(max_batch_size={target.max_batch_size}, "
        f"max_input_len={target.max_input_len}, "
        f"max_seq_len={target.max_seq_len}, max_num_tokens={target.max_num_tokens})",
    ]
    quant = (
        f", quant_config=QuantConfig(quant_algo=QuantAlgo.{QUANT_ALGO[q]}"
        + (", kv_cache_quant_algo=QuantAlgo.FP8)" if q == "fp8" else ")")
        if q != "none"
        else ""
    )
    api += [
        f"llm = LLM(model={str(checkpoint)!r}, tensor_parallel_size={target.tp_size}, "
        f"build_config=build_config{quant})",
        f"llm.save({str(output / 'model')!r})",
    ]
    cli = []
    ckpt_dir = checkpoint
    if q != "none":
        ckpt_dir = output / "quantized-checkpoint"
        cli.append(
            f"python examples/quantization/quantize.py --model_dir {checkpoint} --dtype bfloat16 "
            f"--qformat {'fp8 --kv_cache_dtype fp8' if q == 'fp8' else 'int4_awq'} --calib_size 512 "
            f"--tp_size {target.tp_size} --output_dir {ckpt_dir}"
        )
    else:
        family = CONVERT_FAMILY.get(architecture, "llama")
        cli.append(
            f"python examples/models/core/{family}/convert_checkpoint.py --model_dir {checkpoint} "
            f"--output_dir {output / 'trtllm-checkpoint'} --dtype bfloat16 --tp_size {target.tp_size}"
        )
        ckpt_dir = output / "trtllm-checkpoint"
    cli.append(
        f"trtllm-build --checkpoint_dir {ckpt_dir} --output_dir {output / 'model'} --gemm_plugin auto "
        f"--max_batch_size {target.max_batch_size} --max_input_len {target.max_input_len} "
        f"--max_seq_len {target.max_seq_len} --max_num_tokens {target.max_num_tokens}"
    )
    return {"python": api, "cli": cli}


def make_plan(
    checkpoint: Path, target: Target, output_root: Path, *, hash_inputs: bool = True
) -> dict[str, Any]:
    info = inspect_checkpoint(checkpoint)
    problems = info.problems + target.check(info)
    inputs = {"checkpoint": tree_hash(checkpoint)} if hash_inputs else {}
    aid = artifact_id(inputs, target, "trtllm-engine")
    out = Path(output_root) / "artifacts" / aid
    return {
        "ok": not problems,
        "problems": problems,
        "checkpoint": info.to_dict(),
        "target": build_settings(target),
        "memory": estimate_memory(info, target),
        "artifact": str(out),
        "inputs": inputs,
        "commands": commands(Path(checkpoint), target, out, info.architecture),
    }
