"""`engine-build finetune` on the tiny Llama the tests build (CPU): the loss on the answer tokens
goes down, training resumes from its checkpoint, and the adapter, folded in by merge-lora, loads in
the transformers backend and changes what it writes."""

import json
from pathlib import Path

import pytest

from answer_engine.backends import backend_for_artifact
from answer_engine.backends.base import ChatMessage, GenerationParams
from answer_engine.backends.transformers_backend import TransformersBackend
from engine_build import artifacts
from engine_build.checkpoint import CheckpointError
from engine_build.cli import main
from engine_build.finetune import IGNORE, encode, load_examples
from engine_build.merge import merge_lora

SYSTEM = "Answer the question using only the sources. Cite each sentence like [1]."
EXAMPLES = [
    (
        "The Moon pulls the oceans and makes the tides rise and fall.",
        "What makes the tides?",
        "The Moon [1].",
    ),
    ("Paris is the capital of France.", "What is the capital of France?", "Paris [1]."),
    ("Glaciers are rivers of ice.", "What are glaciers?", "Rivers of ice [1]."),
    ("Red, blue and yellow are primary colors.", "Name a primary color.", "Red [1]."),
]
ALL_LINEAR = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"
PROMPT = [
    ChatMessage(role="system", content=SYSTEM),
    ChatMessage(role="user", content="What makes the tides?"),
]


@pytest.fixture(scope="module")
def trainable(tmp_path_factory):
    """The tiny Llama with larger initial weights: at 0.02 its frozen output layer keeps every
    prediction near uniform whatever LoRA does (a property of a 32-wide random model, not of LoRA)."""
    from tests.conftest import build_tiny_checkpoint

    return build_tiny_checkpoint(tmp_path_factory.mktemp("trainable") / "tiny", initializer_range=0.3)


@pytest.fixture
def data(tmp_path):
    f = tmp_path / "train.jsonl"
    rows = [
        {
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": f"Source [1]: {source}\n\nQuestion: {question}"},
                {"role": "assistant", "content": answer},
            ]
        }
        for source, question, answer in EXAMPLES
    ]
    f.write_text("\n".join(json.dumps(r) for r in rows))
    return f


def test_loss_is_on_the_answer_tokens_only(tiny_checkpoint, data):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_checkpoint)
    messages = load_examples(data)[0]
    e = encode(tok, messages, 512)
    answer = [t for t, label in zip(e["input_ids"], e["labels"]) if label != IGNORE]
    assert tok.decode(answer).startswith("The Moon [1].")
    assert e["labels"][: len(e["labels"]) - len(answer)] == [IGNORE] * (len(e["labels"]) - len(answer))
    assert encode(tok, messages, 5) is None  # too long: left out, not truncated into nonsense


def test_train_resume_merge_and_the_output_changes(trainable, data, tmp_path, capsys):
    out = tmp_path / "tuned"
    args = ["finetune", str(trainable), str(data), str(out), "--lr", "0.02", "--targets", ALL_LINEAR]
    assert main([*args, "--max-steps", "20", "--grad-accum", "1", "--save-steps", "10"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["steps"] == 20 and first["last_loss"] < first["first_loss"] / 2
    assert (
        first["answer_tokens_per_epoch"] < first["tokens_per_epoch"] and first["machine"]["device"] == "cpu"
    )
    assert (out / "adapter" / "adapter_config.json").exists() and (out / "loss.png").exists()
    assert len((out / "log.jsonl").read_text().splitlines()) >= 20

    assert main([*args, "--max-steps", "30", "--grad-accum", "1", "--save-steps", "10", "--resume"]) == 0
    resumed = json.loads(capsys.readouterr().out)
    assert resumed["resumed"] is True and resumed["steps"] == 30

    merged = merge_lora(trainable, out / "adapter", tmp_path / "merged")
    assert merged["adapter_hash"]

    async def greedy(path):
        backend = TransformersBackend(path)
        await backend.start()
        try:
            return "".join([p async for p in backend.stream(PROMPT, GenerationParams(max_tokens=8))])
        finally:
            backend.close()

    import asyncio

    base_text, tuned_text = asyncio.run(greedy(trainable)), asyncio.run(greedy(tmp_path / "merged"))
    assert tuned_text != base_text  # the adapter changed what the model writes


def test_bad_data_is_a_clear_error(tiny_checkpoint, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"messages": [{"role": "user", "content": "no target"}]}))
    with pytest.raises(CheckpointError, match="assistant's target"):
        load_examples(bad)
    assert main(["finetune", str(tiny_checkpoint), str(bad), str(tmp_path / "o")]) != 0


@pytest.mark.model
def test_a_shipped_gguf_model_tuned_then_served_by_llama_cpp_with_its_adapter(
    test_model_path, data, tmp_path, capsys
):
    """SmolLM2-135M straight from its GGUF: transformers dequantizes it and the base lands beside the
    adapter; the adapter, as a GGUF adapter, makes llama.cpp (over the very same Q4 file) write what
    the merged float32 checkpoint writes in transformers, and not what the base writes."""
    out = tmp_path / "smol"
    argv = ["finetune", str(test_model_path), str(data), str(out), "--max-steps", "6", "--grad-accum", "1"]
    assert main([*argv, "--max-len", "512", "--lr", "0.005", "--targets", ALL_LINEAR]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["gguf_file"] == test_model_path.name and summary["steps"] == 6
    assert (out / "base" / "config.json").exists() and (out / "adapter" / "adapter_config.json").exists()
    merge_lora(out / "base", out / "adapter", tmp_path / "merged")
    assert (
        main(["lora-to-gguf", str(out / "adapter"), str(test_model_path), str(tmp_path / "lora.gguf")]) == 0
    )
    assert json.loads(capsys.readouterr().out)["tensors"] == 30 * 7

    import asyncio

    from answer_engine.backends.llamacpp import LlamaCppBackend

    async def greedy(backend):
        await backend.start()
        try:
            return "".join([p async for p in backend.stream(PROMPT, GenerationParams(max_tokens=6))])
        finally:
            backend.close()

    base = asyncio.run(greedy(LlamaCppBackend(test_model_path, n_ctx=1024, prefix_states=0)))
    tuned = asyncio.run(
        greedy(
            LlamaCppBackend(test_model_path, n_ctx=1024, prefix_states=0, lora_path=tmp_path / "lora.gguf")
        )
    )
    merged = asyncio.run(greedy(TransformersBackend(tmp_path / "merged")))
    assert tuned != base
    assert tuned.split()[:2] == merged.split()[:2], (tuned, merged)  # Q4 vs float32: the start agrees

    # packaged as an artifact (base + adapter), verified, promoted: the reload path serves the tuned model
    root = tmp_path / "engines"
    assert (
        main(["package", str(test_model_path), "--lora", str(tmp_path / "lora.gguf"), "--output", str(root)])
        == 0
    )
    artifact = Path(capsys.readouterr().out.strip())
    manifest = artifacts.read_manifest(artifact)
    assert manifest["lora"] == "model/adapter.gguf" and manifest["adapter"]["tensors"] == 30 * 7
    assert manifest["inputs"]["lora"] != manifest["inputs"]["model"]
    assert main(["package", str(test_model_path), "--output", str(root)]) == 0  # the base: another artifact
    assert Path(capsys.readouterr().out.strip()) != artifact
    assert main(["verify", str(artifact), "--max-tokens", "6", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["passed"]
    assert main(["promote", str(artifact), "--output", str(root)]) == 0

    class Served:
        class generation:  # noqa: N801
            n_ctx, n_threads, prefix_states, disk_prefix_state = 1024, 0, 0, False
            weight_repack, prefill_chunk = "auto", 0

    served = asyncio.run(greedy(backend_for_artifact(artifacts.current(root).resolve(), Served)))
    assert served == tuned


def test_package_refuses_an_adapter_that_does_not_fit_its_base(test_model_path, tmp_path, capsys):
    """Checked before anything is written: llama.cpp would refuse such an adapter at load (or crash)."""
    import gguf
    import numpy as np

    def adapter(name, a_shape, b_shape, arch="llama"):
        path = tmp_path / f"adapter-{len(list(tmp_path.glob('adapter-*')))}.gguf"
        writer = gguf.GGUFWriter(str(path), arch)
        writer.add_string(gguf.Keys.General.TYPE, gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, 8.0)
        writer.add_tensor(f"{name}.lora_a", np.zeros(a_shape, dtype=np.float32))
        writer.add_tensor(f"{name}.lora_b", np.zeros(b_shape, dtype=np.float32))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        return path

    root = tmp_path / "engines"
    cases = {
        # SmolLM2-135M: hidden 576, so attn_q is 576 x 576
        adapter("blk.0.attn_q.weight", (4, 576), (576, 4)): None,
        adapter("blk.0.attn_q.weight", (4, 100), (576, 4)): "do not fit",
        adapter("blk.99.attn_q.weight", (4, 576), (576, 4)): "has no tensor blk.99",
        adapter("blk.0.attn_q.weight", (4, 576), (576, 4), arch="qwen2"): "adapts a qwen2 model",
        test_model_path: "not a GGUF LoRA adapter",
    }
    for lora, problem in cases.items():
        code = main(["package", str(test_model_path), "--lora", str(lora), "--output", str(root)])
        out, err = capsys.readouterr()
        if problem is None:
            assert code == 0 and out.strip()
        else:
            assert code == 1 and problem in err, (lora, err)
    assert len(list((root / "artifacts").iterdir())) == 1  # only the one that fits was packaged
    assert main(["package", str(tmp_path / "nothing.gguf"), "--lora", str(lora), "--output", str(root)]) == 1
    assert "needs a .gguf base" in capsys.readouterr().err
