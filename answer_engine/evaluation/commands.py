"""The eval commands: run, write a report folder, return the summary object the CLI prints."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

from answer_engine.config import Settings
from answer_engine.evaluation import extraction, honest, judge, qa, report
from answer_engine.evaluation import unanswerable as unanswerable_set
from answer_engine.request import SearchType

SAMPLE_SEED = 20251123  # the bench's seed: the same questions in both


def eval_qa(
    settings: Settings,
    questions_file: Path,
    *,
    limit: int | None,
    generate: bool,
    report_to: str | None,
    progress: bool = True,
    unanswerable: bool = False,
    sample: int | None = None,
    search_type: SearchType | None = None,
    provider: str = "local",
) -> tuple[dict[str, Any], Path]:
    if unanswerable:
        try:
            questions = unanswerable_set.build(questions_file)[:limit]
        except (OSError, ValueError, KeyError) as exc:
            raise qa.EvalError(
                f"{questions_file}: cannot build the unanswerable set from it ({exc})"
            ) from exc
    else:
        questions = qa.load_questions(questions_file, limit)
    if sample:
        random.Random(SAMPLE_SEED).shuffle(questions)
        questions = questions[:sample]
    gold = honest.gold_paragraphs(questions_file)
    summary, records = asyncio.run(
        qa.evaluate(
            settings,
            questions,
            generate=generate,
            progress=progress,
            gold=gold,
            search_type=search_type,
            provider=provider,
        )
    )
    out = report.report_dir("eval-qa", report_to)
    meta = {
        "questions_file": str(questions_file),
        "model": settings.generation.model if generate else None,
        "retrieval": settings.retrieval.model_dump(),
        "generate": generate,
        "unanswerable": unanswerable,
        "sample": sample,
        "verify": settings.verify.model_dump(),
        "min_relevance": settings.retrieval.min_relevance,
        "min_answerability": settings.retrieval.min_answerability,
        "search_type": search_type or settings.plan.search_type,
        "plan": settings.plan.model_dump(),
        "provider": provider,
    }
    report.write_json(out / "summary.json", {**summary, "config": meta})
    report.write_jsonl(out / "questions.jsonl", records)
    stages = report.stage_table(records)
    report.write_json(out / "stages.json", stages)
    report.plot_stages(out / "latency-per-stage.png", stages, "Latency per stage (p50, p95)")
    keys = [
        k
        for k in (
            "recall_at_1",
            "recall_at_5",
            "accuracy",
            "hallucination_rate",
            "crag_score",
            "citation_precision",
            "citation_precision_lexical",
            "abstain_rate",
        )
        if summary.get(k) is not None
    ]
    report.plot_bars(
        out / "quality.png",
        {k: summary[k] for k in keys},
        f"eval qa: {questions_file.name}, n={summary['questions']}",
    )
    lines = [
        f"# eval qa: {questions_file.name}\n",
        f"Model: `{meta['model']}`; retrieval: `{meta['retrieval']}`.\n",
        report.markdown_table([summary], [k for k in qa.ALL_KEYS if k in summary]),
        "\n## Latency per stage (ms)\n",
        report.markdown_table([{"stage": s, **v} for s, v in stages.items()], ["stage", "p50", "p95"]),
        "\n![latency](latency-per-stage.png)\n![quality](quality.png)\n",
    ]
    (out / "summary.md").write_text("\n".join(lines), encoding="utf-8")
    return {k: summary[k] for k in (qa.ALL_KEYS if generate else qa.RETRIEVAL_KEYS) if k in summary}, out


def eval_extraction(
    data: Path, *, report_to: str | None, progress: bool = True
) -> tuple[dict[str, Any], Path]:
    if not (data / "ground-truth.json").exists():
        raise qa.EvalError(f"{data}: no ground-truth.json (expected the extraction benchmark's format)")
    summary = extraction.evaluate(data, progress=progress)
    out = report.report_dir("eval-extraction", report_to)
    report.write_json(out / "summary.json", summary)
    report.plot_bars(
        out / "extraction.png",
        {k: summary[k] for k in ("precision", "recall", "f1")},
        f"extraction: {summary['pages']} pages",
    )
    (out / "summary.md").write_text(
        "# eval extraction\n\n"
        + report.markdown_table([summary], list(summary))
        + "\n![extraction](extraction.png)\n",
        encoding="utf-8",
    )
    return {k: summary[k] for k in ("pages", "precision", "recall", "f1", "ms_per_page")}, out


def eval_judge(claims: Path, *, report_to: str | None) -> tuple[dict[str, Any], Path]:
    summary = judge.calibrate(claims)
    out = report.report_dir("eval-judge", report_to)
    report.write_json(out / "summary.json", summary)
    report.plot_bars(
        out / "judge.png",
        summary["held_out"],
        f"citation judge vs ExpertQA experts (threshold {summary['threshold']})",
    )
    (out / "summary.md").write_text(
        "# citation-support judge vs ExpertQA human labels (held-out half)\n\n"
        + report.markdown_table(
            [{"threshold": summary["threshold"], **summary["held_out"]}],
            ["threshold", "agreement", "balanced_agreement", "precision", "recall"],
        )
        + "\n![judge](judge.png)\n",
        encoding="utf-8",
    )
    return summary, out
