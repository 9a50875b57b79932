"""Reading a Hugging Face checkpoint without loading it: config, tokenizer, chat template, and the
parameter count from the safetensors headers (8-byte length + JSON, no tensors read)."""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from answer_engine.models import sha256_file  # one file hash for models and artifacts

DTYPE_BYTES = {
    "F64": 8,
    "F32": 4,
    "BF16": 2,
    "F16": 2,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
}
# Architectures TensorRT-LLM's PyTorch backend runs (the families we plan for; others are refused
# with a clear message rather than a build that fails an hour in).
SUPPORTED_ARCHITECTURES = {
    "LlamaForCausalLM",
    "MistralForCausalLM",
    "Qwen2ForCausalLM",
    "Qwen3ForCausalLM",
    "Gemma2ForCausalLM",
    "Gemma3ForCausalLM",
    "Phi3ForCausalLM",
    "MixtralForCausalLM",
    "Qwen3MoeForCausalLM",
    "DeepseekV3ForCausalLM",
    "NemotronForCausalLM",
}


TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "generation_config.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
)


class CheckpointError(Exception):
    """The checkpoint cannot be used; the message says what is wrong."""


@dataclass
class CheckpointInfo:
    path: str
    architecture: str
    dtype: str
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    max_position_embeddings: int
    tie_word_embeddings: bool
    parameters: int
    weight_bytes: int
    has_chat_template: bool
    tokenizer_vocab_size: int | None
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def copy_tokenizer(src: Path, dest: Path) -> None:
    """The tokenizer, chat template and generation config of a checkpoint, copied into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        if (src / name).is_file():
            shutil.copy2(src / name, dest / name)


def tree_hash(root: Path) -> str:
    """One hash of a directory's files (relative paths and contents), independent of mtimes."""
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode() + b"\0" + sha256_file(path).encode() + b"\n")
    return h.hexdigest()


def safetensors_params(path: Path) -> tuple[int, int]:
    """(parameter count, bytes) of one .safetensors file, from its header alone."""
    with path.open("rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        if n > 100_000_000:
            raise CheckpointError(f"{path.name}: implausible safetensors header size {n}")
        header = json.loads(fh.read(n))
    params = nbytes = 0
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        count = 1
        for dim in meta["shape"]:
            count *= dim
        params += count
        nbytes += count * DTYPE_BYTES.get(meta["dtype"], 2)
    return params, nbytes


def inspect_checkpoint(path: Path) -> CheckpointInfo:
    path = Path(path)
    config_file = path / "config.json"
    if not config_file.is_file():
        raise CheckpointError(f"{path}: no config.json — not a Hugging Face checkpoint directory")
    cfg = json.loads(config_file.read_text(encoding="utf-8"))
    text_cfg = cfg.get("text_config", cfg)  # multimodal configs nest the language model's
    problems: list[str] = []
    archs = cfg.get("architectures") or []
    arch = archs[0] if archs else ""
    if arch not in SUPPORTED_ARCHITECTURES:
        problems.append(
            f"architecture {arch or '(none)'} is not one TensorRT-LLM's PyTorch backend is planned for "
            f"({', '.join(sorted(SUPPORTED_ARCHITECTURES))})"
        )
    dtype = str(cfg.get("torch_dtype") or cfg.get("dtype") or text_cfg.get("torch_dtype") or "float16")
    if dtype not in ("bfloat16", "float16", "float32"):
        problems.append(f"dtype {dtype} is not bfloat16/float16/float32")
    heads = int(text_cfg.get("num_attention_heads", 0))
    hidden = int(text_cfg.get("hidden_size", 0))
    if not heads or not hidden:
        raise CheckpointError(f"{path}: config.json lacks hidden_size/num_attention_heads")
    head_dim = int(text_cfg.get("head_dim") or hidden // heads)
    weights = sorted(path.glob("*.safetensors"))
    if not weights:
        problems.append("no .safetensors weights (pytorch_model.bin is not read: convert it to safetensors)")
    params = nbytes = 0
    for w in weights:
        p, b = safetensors_params(w)
        params, nbytes = params + p, nbytes + b
    has_template, tok_vocab = False, None
    tok_cfg = path / "tokenizer_config.json"
    if tok_cfg.is_file():
        has_template = bool(json.loads(tok_cfg.read_text(encoding="utf-8")).get("chat_template"))
    has_template = (
        has_template or (path / "chat_template.jinja").is_file() or (path / "chat_template.json").is_file()
    )
    if not has_template:
        problems.append("no chat template (tokenizer_config.json chat_template or chat_template.jinja)")
    tok_json = path / "tokenizer.json"
    if tok_json.is_file():
        tok = json.loads(tok_json.read_text(encoding="utf-8"))
        vocab_ids = (tok.get("model") or {}).get("vocab") or {}
        ids = set(vocab_ids.values()) if isinstance(vocab_ids, dict) else set(range(len(vocab_ids)))
        tok_vocab = len(ids | {t["id"] for t in tok.get("added_tokens") or []})
    else:
        problems.append("no tokenizer.json (a fast tokenizer is needed by the runtime)")
    vocab = int(text_cfg.get("vocab_size", 0))
    if tok_vocab is not None and vocab and tok_vocab > vocab:
        problems.append(f"tokenizer has {tok_vocab} tokens but the model's vocab_size is {vocab}")
    return CheckpointInfo(
        path=str(path),
        architecture=arch,
        dtype=dtype,
        vocab_size=vocab,
        hidden_size=hidden,
        num_layers=int(text_cfg.get("num_hidden_layers", 0)),
        num_heads=heads,
        num_kv_heads=int(text_cfg.get("num_key_value_heads") or heads),
        head_dim=head_dim,
        max_position_embeddings=int(text_cfg.get("max_position_embeddings", 0)),
        tie_word_embeddings=bool(cfg.get("tie_word_embeddings", text_cfg.get("tie_word_embeddings", False))),
        parameters=params,
        weight_bytes=nbytes,
        has_chat_template=has_template,
        tokenizer_vocab_size=tok_vocab,
        problems=problems,
    )
