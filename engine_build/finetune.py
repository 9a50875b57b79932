"""`engine-build finetune`: a LoRA adapter for the answer model, trained on `answer-engine distill` data.

PEFT's LoRA through transformers' Trainer, on a Hugging Face checkpoint directory, or on a GGUF file
(transformers dequantizes it through the ``gguf`` package, and the dequantized base is written to
``OUTPUT/base``: the shipped models can be tuned without a model hub). Each example's chat template
is applied with the model's own tokenizer and the loss is on the answer's tokens only (the system
prompt, the sources and the question are labelled -100).
Seeded; checkpoints every ``save_steps`` and ``--resume`` continues from the last; Trainer's
progress bar; the log of every step (``log.jsonl``), a loss plot (``loss.png``) and ``summary.json``
(time, tokens, machine, first and last loss) beside the adapter. The same command runs on a CPU and
on a GPU (Trainer picks the device).

The adapter folds into its base with ``engine-build merge-lora`` (an HF checkpoint the transformers
backend loads; on GPUs, the input of ``engine-build plan/build``).
"""

from __future__ import annotations

import contextlib
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

from engine_build.checkpoint import CheckpointError

IGNORE = -100


def load_examples(path: Path) -> list[list[dict[str, str]]]:
    """The ``messages`` of each line of a distill ``train.jsonl`` (the last one the target)."""
    out = []
    for i, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            messages = json.loads(line)["messages"]
        except (ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{path}:{i}: expected a JSON object with messages ({exc})") from exc
        if not messages or messages[-1].get("role") != "assistant":
            raise CheckpointError(f"{path}:{i}: the last message must be the assistant's target")
        out.append(messages)
    if not out:
        raise CheckpointError(f"{path}: no examples")
    return out


def encode(tokenizer: Any, messages: list[dict[str, str]], max_len: int) -> dict[str, list[int]] | None:
    """input_ids and labels with the loss on the target's tokens only; None when it does not fit."""
    prompt = tokenizer.apply_chat_template(messages[:-1], add_generation_prompt=True, tokenize=False)
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    if not full.startswith(prompt):  # a template that rewrites earlier turns: not supported
        raise CheckpointError("the chat template does not extend the prompt with the answer")
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(full[len(prompt) :], add_special_tokens=False)["input_ids"]
    ids = prompt_ids + answer_ids
    if len(ids) > max_len or not answer_ids:
        return None
    return {"input_ids": ids, "labels": [IGNORE] * len(prompt_ids) + answer_ids}


def finetune(
    base: Path,
    data: Path,
    output: Path,
    *,
    gguf_file: str | None = None,
    max_steps: int = 100,
    learning_rate: float = 2e-4,
    rank: int = 8,
    alpha: int = 16,
    targets: str = "q_proj,k_proj,v_proj,o_proj",
    max_len: int = 1536,
    grad_accum: int = 4,
    save_steps: int = 25,
    seed: int = 0,
    resume: bool = False,
) -> dict[str, Any]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments, set_seed

    base, output = Path(base), Path(output)
    examples = load_examples(data)
    set_seed(seed)
    load = {"gguf_file": gguf_file} if gguf_file else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(base, local_files_only=True, **load)
        model = AutoModelForCausalLM.from_pretrained(base, local_files_only=True, dtype=torch.float32, **load)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot load {base}{f' / {gguf_file}' if gguf_file else ''}: {exc}") from exc
    if gguf_file:
        # transformers marks a model read from GGUF as quantized (not trainable, not saveable): its
        # weights are already dequantized, so they move into a plain model of the same config, which
        # is also written out as OUTPUT/base, the base merge-lora folds the adapter into
        config = model.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        plain.load_state_dict(model.state_dict())
        plain.generation_config = model.generation_config
        model = plain
        model.save_pretrained(output / "base", safe_serialization=True)
        tokenizer.save_pretrained(output / "base")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    encoded = [e for e in (encode(tokenizer, m, max_len) for m in examples) if e is not None]
    if not encoded:
        raise CheckpointError(f"no example fits in {max_len} tokens")
    model = get_peft_model(
        model,
        LoraConfig(
            r=rank,
            lora_alpha=alpha,
            target_modules=targets.split(","),
            lora_dropout=0.0,
            task_type="CAUSAL_LM",
        ),
    )

    def collate(batch: list[dict[str, list[int]]]) -> dict[str, Any]:
        width = max(len(b["input_ids"]) for b in batch)
        pad = tokenizer.pad_token_id
        return {
            "input_ids": torch.tensor(
                [b["input_ids"] + [pad] * (width - len(b["input_ids"])) for b in batch]
            ),
            "labels": torch.tensor([b["labels"] + [IGNORE] * (width - len(b["labels"])) for b in batch]),
            "attention_mask": torch.tensor(
                [[1] * len(b["input_ids"]) + [0] * (width - len(b["input_ids"])) for b in batch]
            ),
        }

    checkpoints = output / "checkpoints"
    args = TrainingArguments(
        output_dir=str(checkpoints),
        per_device_train_batch_size=1,
        gradient_accumulation_steps=grad_accum,
        max_steps=max_steps,
        learning_rate=learning_rate,
        lr_scheduler_type="constant",
        logging_steps=1,
        save_steps=save_steps,
        save_total_limit=2,
        seed=seed,
        data_seed=seed,
        report_to=[],
        remove_unused_columns=False,
        use_cpu=not torch.cuda.is_available(),
    )
    trainer = Trainer(model=model, args=args, train_dataset=encoded, data_collator=collate)
    resume_from = resume and any(checkpoints.glob("checkpoint-*"))
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # Trainer prints its logs; stdout is the summary's
        trainer.train(resume_from_checkpoint=True if resume_from else None)
    seconds = time.perf_counter() - t0
    model.save_pretrained(output / "adapter")
    tokenizer.save_pretrained(output / "adapter")
    history = [h for h in trainer.state.log_history if "loss" in h]
    with (output / "log.jsonl").open("w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(h) + "\n" for h in trainer.state.log_history)
    _plot(output / "loss.png", history)
    tokens = sum(len(e["input_ids"]) for e in encoded)
    summary = {
        "base": str(base),
        "gguf_file": gguf_file,
        "examples": len(examples),
        "examples_used": len(encoded),
        "steps": trainer.state.global_step,
        "resumed": bool(resume_from),
        "first_loss": history[0]["loss"] if history else None,
        "last_loss": history[-1]["loss"] if history else None,
        "seconds": round(seconds, 1),
        "tokens_per_epoch": tokens,
        "answer_tokens_per_epoch": sum(sum(t != IGNORE for t in e["labels"]) for e in encoded),
        "lora": {"r": rank, "alpha": alpha, "targets": targets.split(",")},
        "learning_rate": learning_rate,
        "grad_accum": grad_accum,
        "seed": seed,
        "machine": {
            "device": "cuda" if torch.cuda.is_available() else "cpu",
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "cpu": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(),
        },
        "adapter": str(output / "adapter"),
    }
    (output / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def _plot(path: Path, history: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot([h["step"] for h in history], [h["loss"] for h in history], color="#1a5fd1")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (answer tokens)")
    ax.set_title("Fine-tuning loss")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
