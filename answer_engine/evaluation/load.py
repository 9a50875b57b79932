"""`answer-engine load`: a bounded load test on 127.0.0.1 that stops by itself.

Many concurrent SSE streams against a real uvicorn serving the real pipeline (index, page store,
extraction, citations) with a fast backend (extractive by default, so the model is not what is
measured). Reports lost and truncated streams, latency, and memory before and after the soak.
"""

from __future__ import annotations

import asyncio
import gc
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from answer_engine.config import Settings
from answer_engine.evaluation import qa, report
from answer_engine.evaluation.metrics import percentile


def rss_mb() -> float:
    """Current resident memory of this process (the server runs in it)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def ask_over_sse(client: httpx.AsyncClient, url: str, question: str) -> dict[str, Any]:
    """One question through POST /api/ask, read as a client would. ``outcome`` is ok, refused (503),
    error (another status), error_event, lost (no done event, or the connection broke) or truncated
    (the deltas do not add up to the final answer, and verification removed nothing to explain it)."""
    t0 = time.perf_counter()
    first = None
    deltas: list[str] = []
    final = None
    edited = False  # verification removed sentences: the final answer may differ from the stream
    done = None
    status = None
    try:
        async with client.stream("POST", f"{url}/api/ask", json={"query": question}) as r:
            status = r.status_code
            if status != 200:
                await r.aread()
                return {"status": status, "outcome": "refused" if status == 503 else "error"}
            event = None
            async for line in r.aiter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event:
                    data = json.loads(line[5:])
                    if event == "delta":
                        first = first or time.perf_counter()
                        deltas.append(data["text"])
                    elif event == "citations":
                        final = data["answer"]
                        edited = data.get("answer_support") == "not_supported" or any(
                            s.get("supported") is False for s in data.get("sentences", [])
                        )
                    elif event == "done":
                        done = data
                    elif event == "error":
                        return {"status": status, "outcome": "error_event", "message": data["message"]}
    except httpx.HTTPError as exc:
        return {"status": status, "outcome": "lost", "message": f"{type(exc).__name__}: {exc}"}
    if done is None:
        return {"status": status, "outcome": "lost", "message": "stream ended without a done event"}
    if final is None or ("".join(deltas) != final and not edited):
        return {"status": status, "outcome": "truncated"}
    return {
        "status": status,
        "outcome": "ok",
        "latency_ms": (time.perf_counter() - t0) * 1000,
        "ttft_ms": (first - t0) * 1000 if first else None,
        "tokens": done["timings"]["completion_tokens"],
    }


RSS_SAMPLE_S = 15.0


async def _soak(
    url: str,
    questions: list[str],
    streams: int,
    duration_s: float,
    timeout_s: float,
    timeline: list[tuple[float, float]] | None = None,
) -> list[dict[str, Any]]:
    """``timeline`` receives (seconds since start, RSS MB) every 15 s: growth that levels off
    (caches filling, allocator arenas) looks different from a leak, which keeps climbing."""
    start = time.monotonic()
    deadline = start + duration_s
    results: list[dict[str, Any]] = []
    rng = random.Random(20251123)
    limits = httpx.Limits(max_connections=streams, max_keepalive_connections=streams)

    async def worker() -> None:
        async with httpx.AsyncClient(timeout=httpx.Timeout(timeout_s, connect=5), limits=limits) as client:
            while time.monotonic() < deadline:
                results.append(await ask_over_sse(client, url, rng.choice(questions)))

    async def sample() -> None:
        while timeline is not None and time.monotonic() < deadline:
            timeline.append((round(time.monotonic() - start, 1), round(rss_mb(), 1)))
            await asyncio.sleep(RSS_SAMPLE_S)

    await asyncio.gather(sample(), *(worker() for _ in range(streams)))
    return results


def run(
    settings: Settings,
    *,
    questions_file: Path,
    streams: int,
    duration_s: float,
    report_to: str | None,
    progress: bool = True,
) -> tuple[dict[str, Any], Path]:
    from answer_engine.api.app import create_app
    from answer_engine.components import build_pipeline
    from answer_engine.evaluation.server import ServerThread

    questions = [q["question"] for q in qa.load_questions(questions_file)]
    settings.server.max_in_flight = max(
        settings.server.max_in_flight, streams
    )  # measure serving, not refusing
    pipeline = build_pipeline(settings)
    # a fresh machine builds (and embeds) the index first: minutes, not a start-up timeout
    pipeline.search.prepare()
    app = create_app(settings, pipeline=pipeline)
    server = ServerThread(app)
    url = server.start()
    try:
        # warm-up: index, embedder and page cache loaded, as in a service that has been running
        asyncio.run(_soak(url, questions, min(streams, 4), 5, 60))
        gc.collect()
        before = rss_mb()
        t0 = time.perf_counter()
        timeline: list[tuple[float, float]] = []
        results = asyncio.run(
            _soak(url, questions, streams, duration_s, max(60.0, settings.generation.timeout_s), timeline)
        )
        wall = time.perf_counter() - t0
        gc.collect()
        after = rss_mb()
    finally:
        server.stop()
    ok = [r for r in results if r["outcome"] == "ok"]
    count = {
        o: sum(r["outcome"] == o for r in results)
        for o in ("ok", "lost", "truncated", "error", "error_event", "refused")
    }
    summary = {
        "backend": settings.generation.backend,
        "streams": streams,
        "duration_s": round(wall, 1),
        "requests": len(results),
        **count,
        "answers_per_s": round(len(ok) / wall, 2),
        "latency_ms_p50": round(percentile([r["latency_ms"] for r in ok], 50), 1),
        "latency_ms_p95": round(percentile([r["latency_ms"] for r in ok], 95), 1),
        "ttft_ms_p95": round(percentile([r["ttft_ms"] for r in ok if r.get("ttft_ms")], 95), 1),
        "rss_mb_before": round(before, 1),
        "rss_mb_after": round(after, 1),
        "rss_mb_timeline": timeline,
        "messages": sorted({r["message"] for r in results if r.get("message")})[:10],
    }
    out = report.report_dir("load", report_to)
    report.write_json(out / "summary.json", summary)
    (out / "summary.md").write_text(
        "# load test\n\n"
        + report.markdown_table([summary], [k for k in summary if k not in ("messages", "rss_mb_timeline")])
        + "\n\nRSS over the soak (s, MB): "
        + ", ".join(f"{t:g}: {m:g}" for t, m in timeline)
        + "\n",
        encoding="utf-8",
    )
    if progress:
        print(f"load: {summary}", file=sys.stderr)
    return summary, out
