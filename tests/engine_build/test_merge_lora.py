"""engine-build merge-lora: a real peft LoRA adapter on the tiny checkpoint, merged on the CPU."""

from __future__ import annotations

import json

import pytest
import torch

from engine_build.checkpoint import tree_hash
from engine_build.cli import main


@pytest.fixture
def adapter(tiny_checkpoint, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(tiny_checkpoint, local_files_only=True)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)  # peft starts B at zero (a no-op); give the adapter something to merge
    out = tmp_path / "adapter"
    peft_model.save_pretrained(out)
    return out, peft_model


def test_merge_writes_a_checkpoint_equal_to_base_plus_adapter(tiny_checkpoint, adapter, tmp_path, capsys):
    from transformers import AutoModelForCausalLM

    adapter_dir, peft_model = adapter
    out = tmp_path / "merged"
    assert main(["merge-lora", str(tiny_checkpoint), str(adapter_dir), str(out)]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["adapter_hash"] == tree_hash(adapter_dir) and manifest["base_hash"] == tree_hash(
        tiny_checkpoint
    )
    assert json.loads((out / "merge_manifest.json").read_text())["adapter_hash"] == manifest["adapter_hash"]
    assert (out / "tokenizer.json").is_file() and (out / "chat_template.jinja").is_file()

    merged = AutoModelForCausalLM.from_pretrained(out, local_files_only=True)
    base = AutoModelForCausalLM.from_pretrained(tiny_checkpoint, local_files_only=True)
    ids = torch.tensor([[5, 17, 42, 99, 7]])
    with torch.no_grad():
        want = peft_model(input_ids=ids).logits
        got = merged(input_ids=ids).logits
        before = base(input_ids=ids).logits
    assert torch.allclose(got, want, atol=1e-4)  # merged == base with the adapter applied
    assert not torch.allclose(got, before, atol=1e-3)  # and the adapter changed something
    assert not any("lora" in k for k in merged.state_dict())


def test_merge_refuses_to_overwrite_and_non_adapters(tiny_checkpoint, adapter, tmp_path, capsys):
    out = tmp_path / "merged"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["merge-lora", str(tiny_checkpoint), str(adapter[0]), str(out)]) == 1
    assert "never overwritten" in capsys.readouterr().err and (out / "keep.txt").read_text() == "mine"
    assert main(["merge-lora", str(tiny_checkpoint), str(tiny_checkpoint), str(tmp_path / "m2")]) == 1
    assert "not a peft adapter" in capsys.readouterr().err
