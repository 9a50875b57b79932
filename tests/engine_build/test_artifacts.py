"""Artifacts on CPU: package, verify, list, promote, rollback; build stops at once without a GPU."""

from __future__ import annotations

import json
import os

import pytest

from engine_build import artifacts
from engine_build.cli import main


@pytest.fixture
def root(tmp_path):
    return tmp_path / "engines"


def package(model, root, capsys):
    assert main(["package", str(model), "--output", str(root)]) == 0
    return capsys.readouterr().out.strip()


def test_build_without_a_gpu_stops_and_writes_nothing(tiny_checkpoint, root, capsys):
    assert main(["build", str(tiny_checkpoint), "--output", str(root)]) == 1
    err = capsys.readouterr().err
    assert "cannot build here" in err and "no CUDA GPU" in err and "Nothing was written" in err
    assert not root.exists()


def test_package_is_content_addressed_and_immutable(tiny_checkpoint, root, capsys):
    first = package(tiny_checkpoint, root, capsys)
    again = package(tiny_checkpoint, root, capsys)
    assert first == again and os.path.basename(first).startswith("hf-")
    manifest = artifacts.read_manifest(first)
    assert manifest["kind"] == "hf" and manifest["inputs"]["checkpoint"]
    assert not [
        p for p in (root / "artifacts").iterdir() if p.name.startswith(".tmp")
    ]  # no half-written leftovers


def test_verify_runs_golden_prompts_and_records_them(tiny_checkpoint, root, capsys):
    artifact = package(tiny_checkpoint, root, capsys)
    assert (
        main(["verify", artifact, "--reference", str(tiny_checkpoint), "--max-tokens", "12", "--json"]) == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["passed"] and len(result["prompts"]) == 3
    assert all(p["deterministic"] and p["reference_match"] and p["no_eos_text"] for p in result["prompts"])
    assert artifacts.read_manifest(artifact)["verify"]["passed"] is True


def test_promote_needs_verify_then_rollback_goes_back(
    tiny_checkpoint, test_model_path, root, tmp_path, capsys
):
    hf = package(tiny_checkpoint, root, capsys)
    gguf = package(test_model_path, root, capsys)
    assert main(["promote", hf, "--output", str(root)]) == 1
    assert "has not passed" in capsys.readouterr().err and artifacts.current(root) is None

    assert main(["promote", hf, "--output", str(root), "--force"]) == 0
    assert main(["promote", gguf, "--output", str(root), "--force"]) == 0
    assert artifacts.current(root).name == os.path.basename(gguf)
    capsys.readouterr()
    assert main(["list", "--output", str(root), "--json"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows[os.path.basename(gguf)]["current"] and not rows[os.path.basename(hf)]["current"]

    assert main(["rollback", "--output", str(root)]) == 0
    assert artifacts.current(root).name == os.path.basename(hf)
    assert main(["rollback", "--output", str(root)]) == 1  # nothing before the first promotion
    assert [h["action"] for h in artifacts.history(root)] == ["promote", "promote", "rollback"]

    other = tmp_path / "elsewhere"
    assert main(["promote", hf, "--output", str(other), "--force"]) == 1  # not an artifact of that root


def test_build_with_the_library_writes_a_complete_artifact(
    fake_tensorrt_llm, tiny_checkpoint, root, monkeypatch, capsys
):
    """The build path driven through the tensorrt_llm contract fake, with torch told a GPU is there
    (this machine has none): the artifact, its name, tokenizer and manifest; fp8 passes its QuantConfig."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "NVIDIA H100 80GB HBM3")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i=0: (9, 0))
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    small = [
        "--max-seq-len",
        "512",
        "--max-input-len",
        "384",
        "--max-num-tokens",
        "512",
        "--quantization",
        "fp8",
    ]
    assert main(["build", str(tiny_checkpoint), "--output", str(root), *small]) == 0
    artifact = capsys.readouterr().out.strip()
    assert os.path.basename(artifact).startswith("trtllm-engine-")
    m = artifacts.read_manifest(artifact)
    assert m["kind"] == "trtllm-engine" and m["settings"]["quantization"] == "fp8"
    assert (
        m["environment"]["compute_capability"] == "9.0" and m["environment"]["tensorrt_llm"] == "1.2.0-fake"
    )
    assert m["inputs"]["checkpoint"] and "build_s" in m["timings"]
    assert (root / "artifacts" / os.path.basename(artifact) / "model" / "rank0.engine").is_file()
    assert (root / "artifacts" / os.path.basename(artifact) / "tokenizer" / "tokenizer.json").is_file()
    built = fake_tensorrt_llm.llmapi.CREATED[-1]
    assert built.kind == "tensorrt" and built.args["quant_config"].quant_algo == "FP8"
    assert built.args["build_config"].max_seq_len == 512 and built.is_shutdown
    # the same inputs and settings name the same artifact: building again changes nothing
    assert main(["build", str(tiny_checkpoint), "--output", str(root), *small]) == 0
    assert capsys.readouterr().out.strip() == artifact
    # and verify drives it through the trtllm backend: text_diff pieces against the library's full text
    assert main(["verify", artifact, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["passed"] and all(p["stream_concatenates"] is True for p in result["prompts"])
