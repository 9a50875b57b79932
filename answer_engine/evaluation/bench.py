"""`answer-engine bench`: where the time goes, what the pipeline costs on top of the model, how the
service behaves under concurrent streams, and which packaged model is the best default.

Every ratio is measured side by side in one run on the same machine: absolute figures on a shared
2-core machine are noisy, ratios much less so.
"""

from __future__ import annotations

import asyncio
import random
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from answer_engine.config import Settings
from answer_engine.evaluation import qa, report
from answer_engine.evaluation.load import ask_over_sse
from answer_engine.evaluation.metrics import percentile
from answer_engine.models import MODELS, is_installed
from answer_engine.request import AskOptions, AskRequest

SEED = 20251123


def sample_questions(path: Path, n: int, *, seed: int = SEED) -> list[dict[str, Any]]:
    rows = qa.load_questions(path)
    random.Random(seed).shuffle(rows)
    return rows[:n]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def fast_ask(
    pipeline: Any, question: str, trace: dict[str, Any] | None = None
) -> tuple[float | None, Any]:
    """One question in ``fast`` mode: (ms to the first answer token, the done event), None where none
    came. fast: a pro answer's plan calls come before its first token and are not in the answer's
    own prompt, which is what the benchmarks compare."""
    t0 = time.perf_counter()
    first = None
    done = None
    request = AskRequest(query=question, options=AskOptions(search_type="fast"))
    async for event in pipeline.run(request, trace=trace):
        if event.type == "delta" and first is None:
            first = time.perf_counter()
        elif event.type == "done":
            done = event
        elif event.type == "citations" and trace is not None:
            trace["answer"] = event.answer  # the answer as its citations left it
        elif event.type == "error":
            raise qa.EvalError(f"{event.stage}: {event.message}")
    return (None if first is None else (first - t0) * 1000), done


async def overhead(settings: Settings, questions: list[dict[str, Any]], progress: bool) -> dict[str, Any]:
    """Each question: a full ask (first token seen by the caller), then raw llama.cpp on the very
    same prompt; both from a cold KV cache so the comparison is only the pipeline's own cost."""
    from tqdm import tqdm

    from answer_engine.components import build_pipeline

    pipeline = build_pipeline(settings)
    backend = pipeline.backend
    if not hasattr(backend, "raw_timing"):
        raise qa.EvalError(f"bench needs the llamacpp backend, not {settings.generation.backend}")
    await pipeline.start()
    # warm-up: load the embedder and fill the page cache like a running service would have
    async for _ in pipeline.run(AskRequest(query=questions[0]["question"]), generate=False):
        pass
    rows = []
    for q in tqdm(questions, desc="bench overhead", unit="q", file=sys.stderr, disable=not progress):
        await backend.reset_cache()  # type: ignore[attr-defined]
        trace: dict[str, Any] = {}
        ttft_ms, done = await fast_ask(pipeline, q["question"], trace)
        if done is None or ttft_ms is None or "messages" not in trace:
            continue
        raw = await backend.raw_timing(trace["messages"], settings.generation.max_tokens)  # type: ignore[attr-defined]
        rows.append(
            {
                "question": q["question"],
                "ask_ttft_ms": ttft_ms,
                "raw_ttft_ms": raw["ttft_ms"],
                "pipeline_tokens_per_s": done.timings.tokens_per_s,
                "raw_tokens_per_s": raw["tokens_per_s"],
                "prompt_tokens": raw["prompt_tokens"],
                "timings": done.timings.model_dump(),
            }
        )
    if not rows:
        raise qa.EvalError("no question produced an answer")
    med = statistics.median
    return {
        "rows": rows,
        "overhead_ratio": round(med(r["ask_ttft_ms"] for r in rows) / med(r["raw_ttft_ms"] for r in rows), 3),
        "decode_ratio": round(
            med(r["pipeline_tokens_per_s"] for r in rows)
            / max(1e-9, med(r["raw_tokens_per_s"] for r in rows)),
            3,
        ),
        "ttft_ms_p50": round(percentile([r["ask_ttft_ms"] for r in rows], 50), 1),
        "ttft_ms_p95": round(percentile([r["ask_ttft_ms"] for r in rows], 95), 1),
        "raw_ttft_ms_p50": round(percentile([r["raw_ttft_ms"] for r in rows], 50), 1),
        "tokens_per_s": round(med(r["pipeline_tokens_per_s"] for r in rows), 2),
        "raw_tokens_per_s": round(med(r["raw_tokens_per_s"] for r in rows), 2),
        "prompt_tokens_p50": round(percentile([r["prompt_tokens"] for r in rows], 50)),
        "stages": report.stage_table(rows),
        "pipeline": pipeline,
    }


async def concurrency_sweep(
    url: str, questions: list[str], levels: list[int], timeout_s: float, progress: bool
) -> list[dict[str, Any]]:
    """Levels of simultaneous streams against a service on 127.0.0.1; each level runs once."""
    if not url.startswith(("http://127.0.0.1", "http://localhost", "http://[::1]")):
        raise qa.EvalError("the concurrency sweep only targets a service on this machine (127.0.0.1)")
    out = []
    async with httpx.AsyncClient(timeout=httpx.Timeout(timeout_s, connect=5)) as client:
        for level in levels:
            t0 = time.perf_counter()
            batch = [questions[i % len(questions)] for i in range(level)]
            results = await asyncio.gather(*(ask_over_sse(client, url, q) for q in batch))
            wall = time.perf_counter() - t0
            ok = [r for r in results if r["outcome"] == "ok"]
            ttfts = [r["ttft_ms"] for r in ok if r["ttft_ms"] is not None]
            row = {
                "streams": level,
                "wall_s": round(wall, 2),
                "errors": len(results) - len(ok),
                "answers_per_min": round(60 * len(ok) / wall, 2),
                "tokens_per_s": round(sum(r.get("tokens", 0) for r in results) / wall, 2),
                "ttft_ms_p50": round(percentile(ttfts, 50), 1),
                "ttft_ms_p95": round(percentile(ttfts, 95), 1),
                "peak_rss_mb": round(_rss_mb(), 1),
            }
            out.append(row)
            if progress:
                print(f"bench concurrency: {row}", file=sys.stderr, flush=True)
    return out


def compare_models(
    settings: Settings, names: list[str], questions: list[dict[str, Any]], progress: bool
) -> list[dict[str, Any]]:
    rows = []
    for name in names:
        s = settings.model_copy(deep=True)
        s.generation.model = name
        summary, _ = asyncio.run(qa.evaluate(s, questions, progress=progress))
        rows.append(
            {
                "model": name,
                **{
                    k: summary[k]
                    for k in (
                        "contains",
                        "f1",
                        "citation_precision",
                        "citation_coverage",
                        "abstain_rate",
                        "ttft_ms_p50",
                        "latency_ms_p50",
                    )
                },
            }
        )
    return rows


def choose_default(rows: list[dict[str, Any]]) -> str | None:
    """Best answers first (contains, then citation precision); among equals, the faster."""
    if not rows:
        return None
    return max(
        rows, key=lambda r: (round(r["contains"], 2), round(r["citation_precision"], 2), -r["latency_ms_p50"])
    )["model"]


def run(
    settings: Settings,
    *,
    questions_file: Path,
    n: int,
    levels: list[int],
    models: list[str] | None,
    quality_n: int,
    report_to: str | None,
    progress: bool = True,
) -> tuple[dict[str, Any], Path]:
    from answer_engine.api.app import create_app
    from answer_engine.evaluation.server import ServerThread

    sample = sample_questions(questions_file, max(n, max(levels, default=1), quality_n))
    result = asyncio.run(overhead(settings, sample[:n], progress))
    pipeline = result.pop("pipeline")
    summary: dict[str, Any] = {k: v for k, v in result.items() if k != "rows"}
    sweep: list[dict[str, Any]] = []
    if levels:
        server = ServerThread(create_app(settings, pipeline=pipeline))
        url = server.start()
        try:
            sweep = asyncio.run(
                concurrency_sweep(
                    url,
                    [q["question"] for q in sample],
                    levels,
                    settings.generation.timeout_s * max(levels),
                    progress,
                )
            )
        finally:
            server.stop()
    pipeline.backend.close()  # type: ignore[attr-defined]
    summary["concurrency"] = sweep
    model_rows: list[dict[str, Any]] = []
    if models:
        names = [m for m in (MODELS if models == ["all"] else models) if is_installed(settings.data_dir, m)]
        model_rows = compare_models(settings, names, sample[:quality_n], progress)
        summary["models"] = model_rows
        summary["recommended_default"] = choose_default(model_rows)
    summary["passage_budget"] = settings.retrieval.context_tokens
    summary["focus"] = settings.retrieval.focus
    summary["config"] = {
        "model": settings.generation.model,
        "questions": n,
        "max_tokens": settings.generation.max_tokens,
        "threads": settings.generation.n_threads or "all",
        "retrieval": settings.retrieval.model_dump(),
    }

    out = report.report_dir("bench", report_to)
    report.write_json(out / "summary.json", summary)
    report.write_jsonl(out / "overhead.jsonl", result["rows"])
    report.plot_stages(
        out / "latency-per-stage.png", summary["stages"], "Latency per stage, one ask (p50, p95)"
    )
    report.plot_bars(
        out / "ratios.png",
        {"overhead_ratio": summary["overhead_ratio"], "decode_ratio": summary["decode_ratio"]},
        "pipeline / raw llama.cpp, same prompt, same run",
        ylim=(0, 1.5),
    )
    if sweep:
        _plot_sweep(out / "concurrency.png", sweep)
    if model_rows:
        _plot_models(out / "models.png", model_rows)
    md = [
        f"# bench: {settings.generation.model}\n",
        report.markdown_table(
            [summary],
            [
                "overhead_ratio",
                "decode_ratio",
                "ttft_ms_p50",
                "raw_ttft_ms_p50",
                "tokens_per_s",
                "raw_tokens_per_s",
                "prompt_tokens_p50",
                "passage_budget",
                "focus",
            ],
        ),
        "\n## Latency per stage (ms)\n",
        report.markdown_table(
            [{"stage": s, **v} for s, v in summary["stages"].items()], ["stage", "p50", "p95"]
        ),
    ]
    if sweep:
        md += ["\n## Concurrent streams\n", report.markdown_table(sweep, list(sweep[0]))]
    if model_rows:
        md += [
            "\n## Models\n",
            report.markdown_table(model_rows, list(model_rows[0])),
            f"\nRecommended default: `{summary['recommended_default']}`\n",
        ]
    md.append(
        "\n![stages](latency-per-stage.png) ![ratios](ratios.png)"
        + (" ![concurrency](concurrency.png)" if sweep else "")
        + (" ![models](models.png)" if model_rows else "")
        + "\n"
    )
    (out / "summary.md").write_text("\n".join(md), encoding="utf-8")
    return summary, out


def _plot_sweep(path: Path, sweep: list[dict[str, Any]]) -> None:
    plt = report._plt()
    fig, ax1 = plt.subplots(figsize=(7, 3.6))
    x = [r["streams"] for r in sweep]
    ax1.plot(x, [r["ttft_ms_p50"] / 1000 for r in sweep], "o-", label="TTFT p50 (s)")
    ax1.plot(x, [r["ttft_ms_p95"] / 1000 for r in sweep], "o--", label="TTFT p95 (s)")
    ax1.set_xlabel("simultaneous streams")
    ax1.set_ylabel("seconds")
    ax2 = ax1.twinx()
    ax2.bar(x, [r["tokens_per_s"] for r in sweep], alpha=0.25, color="green", label="tokens/s (all streams)")
    ax2.set_ylabel("tokens/s")
    ax1.legend(loc="upper left")
    ax1.set_title("Concurrency sweep")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_models(path: Path, rows: list[dict[str, Any]]) -> None:
    plt = report._plt()
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for r in rows:
        ax.scatter(r["latency_ms_p50"] / 1000, r["contains"], s=80)
        ax.annotate(
            r["model"],
            (r["latency_ms_p50"] / 1000, r["contains"]),
            fontsize=8,
            xytext=(4, 4),
            textcoords="offset points",
        )
    ax.set_xlabel("latency p50 (s)")
    ax.set_ylabel("answer contains a reference")
    ax.set_ylim(0, 1)
    ax.set_title("Quality against speed")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
