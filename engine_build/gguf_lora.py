"""`engine-build lora-to-gguf`: a PEFT LoRA adapter as a GGUF adapter that llama.cpp applies at load
(``generation.lora``), so a tuned model runs on the CPU default path over the very GGUF it was
tuned from, with no conversion of the base.

Each adapted module's ``lora_A`` (rank × in) and ``lora_B`` (out × rank) become ``blk.N.<tensor>.
weight.lora_a`` / ``.lora_b`` beside the base's tensor names, with ``adapter.lora.alpha``; llama.cpp
scales by alpha / rank as PEFT does. llama.cpp's conversion of Llama models permutes the rows of
the Q and K projections (its rotary layout); the adapter's B matrices of Q and K get the same
permutation, or the update would land on the wrong rows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine_build.checkpoint import CheckpointError

TENSORS = {
    "q_proj": "attn_q",
    "k_proj": "attn_k",
    "v_proj": "attn_v",
    "o_proj": "attn_output",
    "gate_proj": "ffn_gate",
    "up_proj": "ffn_up",
    "down_proj": "ffn_down",
}
PERMUTED_ARCHS = {"llama"}  # convert_hf_to_gguf permutes q/k rows for these


def permute_rows(weights: Any, n_head: int) -> Any:
    """llama.cpp's Q/K row order (the conversion's ``permute``), applied to rows of ``weights``."""
    return (
        weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def _field(reader: Any, key: str) -> Any:
    import gguf

    field = reader.fields.get(key)
    if field is None:
        return None
    part = field.parts[field.data[0]]
    return bytes(part).decode() if field.types[0] == gguf.GGUFValueType.STRING else part.tolist()[0]


def check_adapter(adapter_gguf: Path, base_gguf: Path) -> dict[str, Any]:
    """That ``adapter_gguf`` is a LoRA adapter llama.cpp can apply over ``base_gguf``: a GGUF of type
    adapter, the base's architecture, and every A/B pair on a tensor the base has, of its shape
    (llama.cpp would otherwise refuse it at load, or crash). Returns what it found."""
    import gguf

    adapter_gguf, base_gguf = Path(adapter_gguf), Path(base_gguf)
    try:
        reader, base = gguf.GGUFReader(str(adapter_gguf)), gguf.GGUFReader(str(base_gguf))
    except (ValueError, OSError) as exc:
        raise CheckpointError(f"cannot read {adapter_gguf} and {base_gguf} as GGUF files: {exc}") from exc
    if _field(reader, "general.type") != "adapter" or _field(reader, "adapter.type") != "lora":
        raise CheckpointError(
            f"{adapter_gguf} is not a GGUF LoRA adapter (engine-build lora-to-gguf makes one)"
        )
    arch, base_arch = _field(reader, "general.architecture"), _field(base, "general.architecture")
    if arch != base_arch:
        raise CheckpointError(f"{adapter_gguf} adapts a {arch} model; {base_gguf} is {base_arch}")
    shapes = {t.name: [int(d) for d in t.shape] for t in base.tensors}
    pairs: dict[str, dict[str, list[int]]] = {}
    for t in reader.tensors:
        name, _, half = t.name.rpartition(".")
        if half not in ("lora_a", "lora_b"):
            raise CheckpointError(f"{adapter_gguf}: unexpected tensor {t.name}")
        pairs.setdefault(name, {})[half] = [int(d) for d in t.shape]
    for name, ab in pairs.items():
        # GGUF lists dimensions innermost first: a weight is [in, out], A is [in, r], B is [r, out]
        want = shapes.get(name)
        if want is None:
            raise CheckpointError(f"{base_gguf} has no tensor {name}: not the adapter's base")
        a, b = ab.get("lora_a"), ab.get("lora_b")
        if a is None or b is None or a[0] != want[0] or b[-1] != want[-1] or a[1] != b[0]:
            raise CheckpointError(f"{adapter_gguf}: {name}'s A {a} and B {b} do not fit its shape {want}")
    if not pairs:
        raise CheckpointError(f"{adapter_gguf} holds no LoRA tensors")
    return {"arch": arch, "tensors": len(pairs), "alpha": _field(reader, "adapter.lora.alpha")}


def lora_to_gguf(adapter: Path, base_gguf: Path, output: Path) -> dict[str, Any]:
    import gguf
    import numpy as np
    from safetensors.numpy import load_file

    adapter, base_gguf, output = Path(adapter), Path(base_gguf), Path(output)
    config_file = adapter / "adapter_config.json"
    if not config_file.is_file():
        raise CheckpointError(f"{adapter}: no adapter_config.json — not a peft adapter")
    config = json.loads(config_file.read_text(encoding="utf-8"))
    weights = load_file(str(adapter / "adapter_model.safetensors"))
    reader = gguf.GGUFReader(str(base_gguf))
    arch = _field(reader, "general.architecture")
    n_head = _field(reader, f"{arch}.attention.head_count")
    n_head_kv = _field(reader, f"{arch}.attention.head_count_kv") or n_head
    base_names = {t.name for t in reader.tensors}
    pairs: dict[str, dict[str, Any]] = {}
    for key, value in weights.items():
        # base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight
        parts = key.split(".")
        if "layers" not in parts or parts[-2] not in ("lora_A", "lora_B"):
            raise CheckpointError(f"{adapter}: unexpected adapter tensor {key}")
        layer, module = int(parts[parts.index("layers") + 1]), parts[-3]
        if module not in TENSORS:
            raise CheckpointError(f"{adapter}: LoRA on {module} has no llama.cpp tensor to apply to")
        name = f"blk.{layer}.{TENSORS[module]}.weight"
        if name not in base_names:
            raise CheckpointError(f"{base_gguf} has no tensor {name} for {key}: not the adapter's base")
        m = value.astype(np.float32)
        if parts[-2] == "lora_B" and arch in PERMUTED_ARCHS and module in ("q_proj", "k_proj"):
            m = permute_rows(m, n_head if module == "q_proj" else n_head_kv)
        pairs.setdefault(name, {})["lora_a" if parts[-2] == "lora_A" else "lora_b"] = m
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    writer = gguf.GGUFWriter(str(tmp), arch)
    writer.add_string(gguf.Keys.General.TYPE, gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(config.get("lora_alpha", config.get("r", 8))))
    for name, ab in sorted(pairs.items()):
        if set(ab) != {"lora_a", "lora_b"}:
            raise CheckpointError(f"{adapter}: {name} lacks its lora_A or lora_B")
        writer.add_tensor(f"{name}.lora_a", ab["lora_a"])
        writer.add_tensor(f"{name}.lora_b", ab["lora_b"])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tmp.rename(output)
    return {
        "adapter": str(adapter),
        "base": str(base_gguf),
        "output": str(output),
        "tensors": len(pairs),
        "arch": arch,
    }
