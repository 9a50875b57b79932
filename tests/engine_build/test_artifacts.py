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
    assert not [p for p in (root / "artifacts").iterdir() if p.name.startswith(".tmp")]  # no half-written leftovers


def test_verify_runs_golden_prompts_and_records_them(tiny_checkpoint, root, capsys):
    artifact = package(tiny_checkpoint, root, capsys)
    assert main(["verify", artifact, "--reference", str(tiny_checkpoint), "--max-tokens", "12", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["passed"] and len(result["prompts"]) == 3
    assert all(p["deterministic"] and p["reference_match"] and p["no_eos_text"] for p in result["prompts"])
    assert artifacts.read_manifest(artifact)["verify"]["passed"] is True


def test_promote_needs_verify_then_rollback_goes_back(tiny_checkpoint, test_model_path, root, tmp_path, capsys):
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
