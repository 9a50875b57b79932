"""engine-build plan on a tiny checkpoint built in the test (CPU)."""

from __future__ import annotations

import json
import shutil

from engine_build.checkpoint import inspect_checkpoint
from engine_build.cli import main
from engine_build.plan import GIB, Target, estimate_memory

SMALL = ["--max-seq-len", "512", "--max-input-len", "384", "--max-num-tokens", "512", "--max-batch-size", "8"]


def test_plan_json_validates_estimates_and_prints_the_build(tiny_checkpoint, tmp_path, capsys):
    assert main(["plan", str(tiny_checkpoint), "--output", str(tmp_path / "engines"), "--json", *SMALL]) == 0
    plan = json.loads(capsys.readouterr().out)
    c, m = plan["checkpoint"], plan["memory"]
    assert plan["ok"] and plan["problems"] == []
    assert c["architecture"] == "LlamaForCausalLM" and c["num_layers"] == 2 and c["num_kv_heads"] == 2
    assert c["head_dim"] == 8 and c["has_chat_template"] and c["parameters"] > 0
    # K and V, 2 layers, 2 key/value heads of 8 dims, 2 bytes: 128 bytes a token
    assert m["kv_cache_per_token_bytes"] == 2 * 2 * 2 * 8 * 2
    assert m["kv_cache_gib"] == round(128 * 8 * 512 / GIB, 3)
    assert plan["artifact"].startswith(str(tmp_path / "engines" / "artifacts" / "trtllm-engine-"))
    assert plan["commands"]["cli"][0].startswith("python examples/models/core/llama/convert_checkpoint.py")
    assert any(
        line.startswith("trtllm-build --checkpoint_dir") and "--max_seq_len 512" in line
        for line in plan["commands"]["cli"]
    )
    assert not (tmp_path / "engines").exists()  # planning writes nothing


def test_quantization_shrinks_weights_and_fp8_kv(tiny_checkpoint):
    info = inspect_checkpoint(tiny_checkpoint)
    none = estimate_memory(info, Target(quantization="none"))
    fp8 = estimate_memory(info, Target(quantization="fp8"))
    awq = estimate_memory(info, Target(quantization="int4_awq"))
    assert awq["weights_gib"] <= fp8["weights_gib"] <= none["weights_gib"]
    assert fp8["kv_cache_per_token_bytes"] * 2 == none["kv_cache_per_token_bytes"]
    two = estimate_memory(info, Target(tp_size=2))
    assert two["per_gpu_gib"] < none["per_gpu_gib"]


def test_plan_refuses_what_cannot_be_built(tiny_checkpoint, tmp_path, capsys):
    assert (
        main(["plan", str(tiny_checkpoint), "--tp-size", "3"]) == 1
    )  # 4 heads / 3 GPUs; 4096 > 512 positions
    err = capsys.readouterr().err
    assert "tp_size 3 does not divide" in err and "max_position_embeddings 512" in err

    broken = tmp_path / "broken"
    shutil.copytree(tiny_checkpoint, broken)
    (broken / "chat_template.jinja").unlink()
    cfg = json.loads((broken / "config.json").read_text())
    cfg["architectures"] = ["BertModel"]
    (broken / "config.json").write_text(json.dumps(cfg))
    assert main(["plan", str(broken), *SMALL]) == 1
    err = capsys.readouterr().err
    assert "BertModel" in err and "no chat template" in err

    assert main(["plan", str(tmp_path / "nothing")]) == 1
    assert "no config.json" in capsys.readouterr().err
