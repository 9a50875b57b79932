"""The embedding model's two runtimes: the ONNX export set-up makes (onnxruntime) and
sentence-transformers (torch), with the real packaged all-MiniLM-L6-v2."""

import json
import subprocess
import sys

import numpy as np
import pytest

from answer_engine.cli import main
from answer_engine.embeddings import ONNX_FILE, Embedder, EmbedderError, TorchMiniLM, _source_dir, onnx_ready

TEXTS = [
    "Where did the Normans and Byzantines sign the peace treaty?",
    "a kitten",
    "",
    "Ça va? naïve café — 東京",
    "The Normans gave their name to Normandy, a region in France. " * 40,  # over 256 tokens: cut
    *[f"passage {i}: " + "word " * (i * 3) for i in range(70)],  # more than one batch, many lengths
]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The export made the way set-up makes it: ``answer-engine models embedder``."""
    data = tmp_path_factory.mktemp("data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AE_DATA_DIR", str(data))
        assert main(["models", "embedder"]) == 0
    return data / "models" / ONNX_FILE


@pytest.fixture(scope="module")
def reference():
    return TorchMiniLM(_source_dir(), threads=2).encode(TEXTS)


def test_the_export_is_stamped_with_its_check(exported):
    assert onnx_ready(exported)
    stamp = json.loads(exported.with_suffix(".verified.json").read_text())
    assert stamp["size"] == exported.stat().st_size and len(stamp["sha256"]) == 64
    assert stamp["max_abs_diff"] <= 1e-4


def test_onnx_gives_sentence_transformers_vectors_in_the_callers_order(exported, reference):
    embedder = Embedder(threads=2, onnx_path=exported)
    got = embedder.encode(TEXTS)
    assert embedder.loaded == "onnx"
    assert got.shape == reference.shape == (len(TEXTS), 384)
    assert np.abs(got - reference).max() < 1e-4
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-4)
    assert embedder.encode([]).shape == (0, 384)


def test_a_second_run_keeps_the_verified_export(exported, capsys, monkeypatch):
    before = exported.stat().st_mtime_ns
    monkeypatch.setenv("AE_DATA_DIR", str(exported.parent.parent))
    assert main(["models", "embedder"]) == 0
    assert "exported" not in capsys.readouterr().out
    assert exported.stat().st_mtime_ns == before


def test_a_changed_file_is_not_trusted(exported, tmp_path):
    copy = tmp_path / ONNX_FILE
    copy.write_bytes(exported.read_bytes()[:-1] + b"\0")
    copy.with_suffix(".verified.json").write_text(exported.with_suffix(".verified.json").read_text())
    assert not onnx_ready(copy)  # size and mtime differ from the stamp
    with pytest.raises(EmbedderError, match="answer-engine models embedder"):
        Embedder(onnx_path=copy, runtime="onnx").warm()
    fallback = Embedder(onnx_path=copy)  # auto: the same vectors from sentence-transformers
    fallback.warm()
    assert fallback.loaded == "torch"


def test_torch_runtime_ignores_the_export(exported):
    embedder = Embedder(onnx_path=exported, runtime="torch")
    embedder.warm()
    assert embedder.loaded == "torch"


def test_a_fresh_process_embeds_without_importing_torch(exported):
    """What the export is for: a one-shot `ask` never pays torch's import (~8 s on 2 cores)."""
    code = (
        "import sys; from pathlib import Path; from answer_engine.embeddings import Embedder; "
        f"e = Embedder(onnx_path=Path({str(exported)!r}), runtime='onnx'); v = e.encode(['a kitten']); "
        "assert v.shape == (1, 384), v.shape; "
        "print(sorted(m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "[]"
