"""`answer-engine bench --levers`: each lever on the time to first token, off and on, on the same
questions in one run (alternating per question, so drift on a shared machine hits both sides).

- passages: whole passages within a 700-token budget (the default) vs focused passages (the best
  one whole, the others cut to their best sentences) within 450; both from a cold KV cache.
- prefix: another prompt runs between two answers (the previous answer's related questions, a
  follow-up's rewrite); without saved states the answer prompt is evaluated from its first token,
  with them it restores the warmed system prompt and evaluates only the rest.
- repack: llama.cpp's weights repacked at load for its kernels, the prompt evaluated in 64-token
  chunks (llama.cpp's default; the engine's before this lever) vs the weights as stored and 256-token
  chunks (``weight_repack`` auto on an AVX-512 build); two models loaded side by side, cold KV cache,
  decode tokens/s beside the first token.
- cli: ``answer-engine ask --mode fast`` in a fresh process, from start to the first answer token
  on stdout (loading the index, the embedding model and the LLM included), with the embedding
  model run by sentence-transformers (torch) or by its ONNX export, and the warmed answer-prompt
  start evaluated or restored from disk (``CLI_SIDES``), alternating per run.

Every question is asked with ``search_type`` fast: a pro answer's plan calls would come before the
answer's first token and drown what the levers change.

Accuracy is not measured here: ``eval qa`` measures it with the same settings (docs/reports/speed).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from answer_engine.config import Settings
from answer_engine.evaluation import bench, qa, report
from answer_engine.evaluation.metrics import percentile
from answer_engine.prompt import answer_prefix, build_related_messages

# The two sides of the passages lever, whatever the config says.
WHOLE_PASSAGES = {"context_tokens": 700, "focus": False}
FOCUSED_PASSAGES = {"context_tokens": 450, "focus": True}
CLI_TIMEOUT_S = 300.0


async def first_token(pipeline: Any, question: str) -> dict[str, Any]:
    """Time to the first answer token and the prompt's size, for one question (``fast``)."""
    trace: dict[str, Any] = {}
    ttft_ms, done = await bench.fast_ask(pipeline, question, trace)
    if ttft_ms is None or done is None:
        raise qa.EvalError(f"no answer streamed for {question!r}")
    return {
        "ttft_ms": ttft_ms,
        "prompt_tokens": done.timings.prompt_tokens,
        "tokens_per_s": done.timings.tokens_per_s,
        "answer": trace.get("answer"),
    }


def _side(rows: list[dict[str, Any]], key: str) -> dict[str, float]:
    ttft = [r[key]["ttft_ms"] for r in rows]
    return {
        "ttft_ms_p50": round(percentile(ttft, 50), 1),
        "ttft_ms_p95": round(percentile(ttft, 95), 1),
        "prompt_tokens_p50": round(percentile([r[key]["prompt_tokens"] for r in rows], 50)),
    }


def _lever(name: str, what_off: str, what_on: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    off, on = _side(rows, "off"), _side(rows, "on")
    return {
        "lever": name,
        "off": what_off,
        "on": what_on,
        **{f"off_{k}": v for k, v in off.items()},
        **{f"on_{k}": v for k, v in on.items()},
        "ttft_ratio": round(statistics.median(r["on"]["ttft_ms"] / r["off"]["ttft_ms"] for r in rows), 3),
        "questions": len(rows),
    }


Questions = list[dict[str, Any]]


async def passages_lever(settings: Settings, questions: Questions, progress: bool) -> dict[str, Any]:
    from answer_engine.components import build_embedder, build_pipeline

    whole, focused = settings.model_copy(deep=True), settings.model_copy(deep=True)
    for side, values in ((whole, WHOLE_PASSAGES), (focused, FOCUSED_PASSAGES)):
        for key, value in values.items():
            setattr(side.retrieval, key, value)
    embedder = build_embedder(settings)
    on = build_pipeline(focused, embedder=embedder)
    off = build_pipeline(whole, backend=on.backend, embedder=embedder)
    await on.start()
    await off.start()  # its own index handle: loaded now, not on its first question
    backend = on.backend
    rows = []
    for q in questions:
        row: dict[str, Any] = {"question": q["question"]}
        for side, pipeline in (("off", off), ("on", on)):
            await backend.reset_cache()  # type: ignore[attr-defined]  # cold: only the prompt's size differs
            row[side] = await first_token(pipeline, q["question"])
        rows.append(row)
        if progress:
            print(f"bench levers passages: {row}", file=sys.stderr, flush=True)
    backend.close()
    lever = _lever(
        "passages",
        f"whole passages, {WHOLE_PASSAGES['context_tokens']}-token budget",
        f"focused: the best passage whole, the others' best sentences, "
        f"{FOCUSED_PASSAGES['context_tokens']}-token budget",
        rows,
    )
    return {**lever, "rows": rows}


async def prefix_lever(settings: Settings, questions: Questions, progress: bool) -> dict[str, Any]:
    from answer_engine.backends.base import GenerationParams
    from answer_engine.backends.llamacpp import PREFIX_STATES
    from answer_engine.components import build_pipeline

    pipeline = build_pipeline(settings)
    await pipeline.start()
    backend: Any = pipeline.backend
    if not hasattr(backend, "prefix_states"):
        raise qa.EvalError(f"the prefix lever needs the llamacpp backend, not {settings.generation.backend}")
    capacity = backend.prefix_states.capacity or PREFIX_STATES
    rows = []
    for q in questions:
        row: dict[str, Any] = {"question": q["question"]}
        for side in ("off", "on"):
            await backend.reset_cache()  # no live prefix, no saved state
            backend.prefix_states.capacity = capacity if side == "on" else 0
            await backend.warm_prefix(answer_prefix())  # what Pipeline.start does (nothing when off)
            between = build_related_messages("What came before?", "Another answer.")
            async for _ in backend.stream(between, GenerationParams(max_tokens=16)):
                pass
            before = backend.prefix_states.restored
            row[side] = await first_token(pipeline, q["question"])
            row[side]["restored"] = backend.prefix_states.restored - before  # 1: the answer reused a state
        rows.append(row)
        if progress:
            print(f"bench levers prefix: {row}", file=sys.stderr, flush=True)
    backend.prefix_states.capacity = capacity
    backend.close()
    lever = _lever(
        "prefix",
        "another prompt ran before the answer: its prompt evaluated from the first token",
        f"saved KV states ({capacity}): the warmed system prompt restored",
        rows,
    )
    return {**lever, "rows": rows}


REPACK_SIDES = {
    "off": ("weights repacked at load, 64-token prefill chunks (llama.cpp's default)", "on", 64),
    "on": ("weights as stored, 256-token prefill chunks", "off", 256),
}


async def repack_lever(settings: Settings, questions: Questions, progress: bool) -> dict[str, Any]:
    from answer_engine.components import build_embedder, build_pipeline

    embedder = build_embedder(settings)
    pipelines = {}
    load_s = {}
    for side, (_, repack, chunk) in REPACK_SIDES.items():
        part = settings.model_copy(deep=True)
        part.generation.weight_repack, part.generation.prefill_chunk = repack, chunk
        pipelines[side] = build_pipeline(part, embedder=embedder)
        t = time.perf_counter()
        await pipelines[side].start()
        load_s[side] = round(time.perf_counter() - t, 2)
    rows = []
    for q in questions:
        row: dict[str, Any] = {"question": q["question"]}
        for side, pipeline in pipelines.items():
            await pipeline.backend.reset_cache()  # type: ignore[attr-defined]  # cold: the whole prompt
            row[side] = await first_token(pipeline, q["question"])
        rows.append(row)
        if progress:
            print(f"bench levers repack: {row}", file=sys.stderr, flush=True)
    for pipeline in pipelines.values():
        pipeline.backend.close()  # type: ignore[attr-defined]
    lever = _lever("repack", REPACK_SIDES["off"][0], REPACK_SIDES["on"][0], rows)
    med = statistics.median
    # an answer the model did not write (no source passed the answerability gate) has no decode speed
    decoded = [r for r in rows if r["off"]["tokens_per_s"] > 0 and r["on"]["tokens_per_s"] > 0] or [
        {"off": {"tokens_per_s": 0.0}, "on": {"tokens_per_s": 0.0}}
    ]
    lever |= {
        "off_tokens_per_s_p50": round(med(r["off"]["tokens_per_s"] for r in decoded), 2),
        "on_tokens_per_s_p50": round(med(r["on"]["tokens_per_s"] for r in decoded), 2),
        "decode_ratio": round(
            med(r["on"]["tokens_per_s"] / max(r["off"]["tokens_per_s"], 1e-9) for r in decoded), 3
        ),
        "decoded": len(decoded),
        "same_answers": sum(r["on"]["answer"] == r["off"]["answer"] for r in rows),
        "off_start_s": load_s["off"],
        "on_start_s": load_s["on"],
    }
    return {**lever, "rows": rows}


LEVERS = ("passages", "prefix", "repack", "cli")


def _cli_once(cmd: list[str], env: dict[str, str]) -> float:
    """One fresh ``answer-engine ask``: milliseconds to its first answer character (the CLI prints
    the sources, a blank line, then streams the answer)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    assert proc.stdout is not None
    seen = b""
    first = None
    try:
        while first is None:
            byte = proc.stdout.read(1)
            if not byte:
                break
            seen += byte
            if seen.startswith(b"Sources:") and b"\n\n" in seen and not byte.isspace():
                first = time.perf_counter()
            if time.perf_counter() - t0 > CLI_TIMEOUT_S:
                break
    finally:
        proc.kill()
        proc.wait()
    if first is None:
        tail = seen[-300:].decode(errors="replace")
        raise qa.EvalError(f"answer-engine ask streamed no answer: {tail}")
    return (first - t0) * 1000


# The cli lever's sides, each a fresh process: what runs the embedding model, and whether the
# warmed answer-prompt start is read back from disk. The last is the default.
CLI_SIDES = {
    "torch": (
        "embedding model by sentence-transformers (torch imported), system prompt evaluated",
        {"AE_RETRIEVAL__EMBED_RUNTIME": "torch", "AE_GENERATION__DISK_PREFIX_STATE": "false"},
    ),
    "onnx": (
        "embedding model by its ONNX export, system prompt evaluated",
        {"AE_RETRIEVAL__EMBED_RUNTIME": "onnx", "AE_GENERATION__DISK_PREFIX_STATE": "false"},
    ),
    "onnx+state": (
        "embedding model by its ONNX export, warmed start restored from disk (the default)",
        {"AE_RETRIEVAL__EMBED_RUNTIME": "onnx", "AE_GENERATION__DISK_PREFIX_STATE": "true"},
    ),
}


def cli_first_token(questions: list[str], runs: int, config: str | None, model: str | None) -> dict[str, Any]:
    """``answer-engine ask`` in a fresh process each run, each side of ``CLI_SIDES`` in turn per run
    on the same question; run i asks ``questions[i % len(questions)]``, so the p50 is over several
    prompts, not one prompt's length (the state file is made by a run before the first timed one)."""
    exe = Path(sys.executable).with_name("answer-engine")
    base = [str(exe) if exe.exists() else "answer-engine", "ask", "--mode", "fast"]
    if config:
        base += ["--config", config]
    if model:
        base += ["--model", model]
    asked = [questions[i % len(questions)] for i in range(runs)]
    default = list(CLI_SIDES)[-1]
    # untimed: leaves the warmed start (the same for every question) on disk
    _cli_once([*base, questions[0]], {**os.environ, **CLI_SIDES[default][1]})
    times: dict[str, list[float]] = {name: [] for name in CLI_SIDES}
    for question in asked:
        for name, (_, env) in CLI_SIDES.items():
            times[name].append(_cli_once([*base, question], {**os.environ, **env}))
    first = list(CLI_SIDES)[0]
    sides = [
        {
            "side": name,
            "what": what,
            "first_token_ms_p50": round(percentile(times[name], 50), 1),
            "first_token_ms_max": round(max(times[name]), 1),
            "ratio_to_" + first: round(
                statistics.median(x / y for x, y in zip(times[name], times[first])), 3
            ),
        }
        for name, (what, _) in CLI_SIDES.items()
    ]
    return {
        "lever": "cli",
        "runs": runs,
        "sides": sides,
        "first_token_ms_p50": sides[-1]["first_token_ms_p50"],  # the default side
        "first_token_ms_max": sides[-1]["first_token_ms_max"],
        "question": questions[0],
        "questions": len(set(asked)),
        "rows": [
            {"question": asked[i], **{name: round(times[name][i], 1) for name in CLI_SIDES}}
            for i in range(runs)
        ],
    }


def run(
    settings: Settings,
    questions: list[dict[str, Any]],
    *,
    cli_runs: int,
    config: str | None,
    model: str | None,
    report_to: str | None,
    progress: bool = True,
    only: tuple[str, ...] = LEVERS,
) -> tuple[dict[str, Any], Path]:
    runs = {"passages": passages_lever, "prefix": prefix_lever, "repack": repack_lever}
    levers = [asyncio.run(runs[name](settings, questions, progress)) for name in runs if name in only]
    cli = None
    if cli_runs and "cli" in only:
        cli = cli_first_token([q["question"] for q in questions], cli_runs, config, model)
    summary: dict[str, Any] = {
        "model": settings.generation.model,
        "levers": [{k: v for k, v in lever.items() if k != "rows"} for lever in levers],
        "cli": cli,
        "retrieval": settings.retrieval.model_dump(),
    }
    out = report.report_dir("levers", report_to)
    report.write_json(out / "summary.json", summary)
    report.write_jsonl(out / "rows.jsonl", [{"lever": lv["lever"], **r} for lv in levers for r in lv["rows"]])
    if levers:
        report.plot_bars(
            out / "ratios.png",
            {lv["lever"]: lv["ttft_ratio"] for lv in levers},
            "time to first token, lever on / off (per-question median)",
            ylim=(0, 1.2),
        )
    columns = ["lever", "off", "on", "off_ttft_ms_p50", "on_ttft_ms_p50", "ttft_ratio"]
    columns += ["off_prompt_tokens_p50", "on_prompt_tokens_p50", "questions"]
    md = [f"# bench --levers: {settings.generation.model}\n"]
    if levers:
        md += ["Each lever off and on, alternating per question, in one run.\n"]
        md.append(report.markdown_table(summary["levers"], columns))
    if cli:
        md += ["\n## answer-engine ask, fresh process, to the first answer token\n"]
        columns = [
            "side",
            "what",
            "first_token_ms_p50",
            "first_token_ms_max",
            f"ratio_to_{next(iter(CLI_SIDES))}",
        ]
        md.append(report.markdown_table(cli["sides"], columns))
        asked = list(dict.fromkeys(r["question"] for r in cli["rows"]))
        md.append(f"\n{cli['runs']} runs of each, alternating, over {len(asked)} question(s):\n")
        md += [f"- {q!r}" for q in asked]
    if levers:
        md.append("\n![ratios](ratios.png)\n")
    (out / "summary.md").write_text("\n".join(md), encoding="utf-8")
    return summary, out
