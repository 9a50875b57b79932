"""`engine-build merge-lora`: fold a LoRA adapter into its base model with peft (CPU is enough),
and write a plain checkpoint whose manifest names the base and adapter by content hash."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from engine_build.checkpoint import CheckpointError, copy_tokenizer, inspect_checkpoint, tree_hash


def merge_lora(base: Path, adapter: Path, output: Path) -> dict[str, Any]:
    base, adapter, output = Path(base), Path(adapter), Path(output)
    if not (adapter / "adapter_config.json").is_file():
        raise CheckpointError(f"{adapter}: no adapter_config.json — not a peft adapter")
    if output.exists() and any(output.iterdir()):
        raise CheckpointError(f"{output} exists and is not empty; merged checkpoints are never overwritten")
    inspect_checkpoint(base)  # a clear error before loading anything
    adapter_cfg = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base, local_files_only=True, dtype=torch.float32)
    merged = PeftModel.from_pretrained(model, adapter, local_files_only=True).merge_and_unload()
    tmp = output.with_name(output.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    merged.save_pretrained(tmp, safe_serialization=True)
    copy_tokenizer(base, tmp)
    manifest = {
        "kind": "merged-checkpoint",
        "base": str(base),
        "base_hash": tree_hash(base),
        "adapter": str(adapter),
        "adapter_hash": tree_hash(adapter),
        "adapter_config": {k: adapter_cfg.get(k) for k in ("r", "lora_alpha", "target_modules", "peft_type")},
    }
    (tmp / "merge_manifest.json").write_text(
        json.dumps(manifest, indent=2, default=list) + "\n", encoding="utf-8"
    )
    if output.exists():
        output.rmdir()
    tmp.rename(output)
    manifest["output"] = str(output)
    manifest["output_hash"] = tree_hash(output)
    return manifest
