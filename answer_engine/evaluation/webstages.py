"""`answer-engine bench --web`: where the time goes when a question is answered from the web.

The little web (five article pages and a SearXNG-format search) runs on 127.0.0.1; each question is
answered by a fresh pipeline (cold page and search caches), then once more by the same pipeline
(warm caches). Stage timings come from the pipeline's own done event."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from answer_engine.config import Settings
from answer_engine.evaluation import report
from answer_engine.evaluation.littleweb import little_web_app
from answer_engine.evaluation.server import ServerThread
from answer_engine.request import AskRequest

QUESTIONS = [
    "What causes tides on Earth?",
    "When did Mauna Loa last erupt?",
    "How do glaciers form?",
    "What is the largest coral reef system?",
    "What causes an aurora?",
]
STAGES = ("search_ms", "fetch_ms", "extract_ms", "select_ms", "ttft_ms", "generation_ms", "total_ms")


async def _timed(pipeline: Any, question: str) -> dict[str, Any]:
    done: dict[str, Any] = {}
    sources = read = 0
    async for event in pipeline.run(AskRequest(query=question)):
        if event.type == "status" and event.stage == "fetch":
            read = int(event.message.split()[1])  # "Reading N pages"
        elif event.type == "sources":
            sources = len(event.sources)
        elif event.type == "done":
            done = event.timings.model_dump()
        elif event.type == "error":
            raise RuntimeError(f"{event.stage}: {event.message}")
    return {**done, "pages_read": read, "sources": sources}


async def run(settings: Settings, *, report_to: str | None = None) -> tuple[dict[str, Any], Path]:
    from answer_engine.components import build_pipeline

    server = ServerThread(little_web_app(), graceful_s=1.0)
    base = server.start()
    web = settings.model_copy(deep=True)
    web.search.providers = ["searxng"]
    web.search.searxng_url = base
    web.search.max_results = 5
    web.fetch.allow_networks = ["127.0.0.1/32"]
    cold, warm = [], []
    backend = None
    try:
        for question in QUESTIONS:
            pipeline = build_pipeline(web, backend=backend)
            if backend is None:
                backend = pipeline.backend
                await backend.start()
            try:
                cold.append(await _timed(pipeline, question))
                warm.append(await _timed(pipeline, question))
            finally:
                await pipeline.aclose()
    finally:
        server.stop()

    def medians(rows: list[dict[str, Any]]) -> dict[str, float]:
        return {s: round(statistics.median(r[s] for r in rows), 1) for s in STAGES}

    summary = {
        "questions": len(QUESTIONS),
        "pages_per_question": statistics.median(r["pages_read"] for r in cold),
        "sources_per_answer": statistics.median(r["sources"] for r in cold),
        "backend": settings.generation.backend,
        "model": settings.generation.model,
        "cold_cache": medians(cold),
        "warm_cache": medians(warm),
    }
    out = report.report_dir("web-stages", report_to)
    lines = [
        "# Per-stage time, answering from the web (little web on 127.0.0.1)",
        "",
        f"{len(QUESTIONS)} questions, {summary['pages_per_question']} pages fetched and extracted for each, "
        f"{summary['sources_per_answer']} of them selected as sources; backend "
        f"{summary['backend']} ({summary['model']}); medians in ms.",
        "",
        "| stage | cold caches | warm caches |",
        "|---|---:|---:|",
    ]
    lines += [
        f"| {s.removesuffix('_ms')} | {summary['cold_cache'][s]} | {summary['warm_cache'][s]} |"
        for s in STAGES
    ]
    out.mkdir(parents=True, exist_ok=True)
    report.write_json(out / "summary.json", summary)
    (out / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return summary, out
