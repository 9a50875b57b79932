"""`answer-engine bench --postgres`: the shared PostgreSQL index at 1x, 10x and 100x the shipped corpus.

The shipped corpus is written once by the real writer (extracted, cut, embedded); the larger indexes
copy its rows k times inside PostgreSQL (each copy its own URLs, same passages, terms and
embeddings), so they have the real index's shape at k times its size without embedding it k times.
Then the same SQuAD questions are searched at every scale through the real provider (candidates by
PostgreSQL's full-text search, BM25 over them, the result pages' passages and embeddings fetched),
beside the on-disk index on the same questions. Reported: latency p50/p95 per scale, the share of
questions whose gold article is among the results (search recall, copies counted as their article),
and two readers with pools of their own (two replicas) querying one database at once.
"""

from __future__ import annotations

import concurrent.futures
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from answer_engine.config import Settings
from answer_engine.evaluation import report
from answer_engine.evaluation.metrics import percentile
from answer_engine.evaluation.qa import EvalError, load_questions
from answer_engine.text import terms

SEED = 20251123
ID_STRIDE = 10_000_000  # copy c of a row gets id + c * ID_STRIDE (passages: * 10)


def _copy(conn: Any, src: str, dst: str, copies: int) -> None:
    """``dst`` := ``copies`` copies of ``src``'s documents, pages and passages, stats refreshed."""
    s, d = f'"{src}"', f'"{dst}"'
    with conn.transaction():
        for c in range(copies):
            conn.execute(
                f"INSERT INTO {d}.documents (id, source, fingerprint, info) "
                f"SELECT id + %s, source || '#copy-' || %s, fingerprint, info FROM {s}.documents",
                (c * ID_STRIDE, c),
            )
            conn.execute(
                f"INSERT INTO {d}.pages (id, document_id, url, title, date) "
                f"SELECT id + %s, document_id + %s, url || '#copy-' || %s, title, date FROM {s}.pages",
                (c * ID_STRIDE, c * ID_STRIDE, c),
            )
            conn.execute(
                f"INSERT INTO {d}.passages (id, page_id, ord, body, terms, n_terms, embedding) "
                f"SELECT id + %s, page_id + %s, ord, body, terms, n_terms, embedding FROM {s}.passages",
                (c * ID_STRIDE * 10, c * ID_STRIDE),
            )
        conn.execute(f"INSERT INTO {d}.term_stats SELECT term, df * %s FROM {s}.term_stats", (copies,))
        conn.execute(
            f"INSERT INTO {d}.meta (key, value) SELECT key, value FROM {s}.meta "
            "WHERE key IN ('avg_terms', 'embedded', 'generation') "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
        )
        conn.execute(
            f"INSERT INTO {d}.meta (key, value) SELECT 'passages', count(*)::text FROM {d}.passages "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
        )
    conn.execute(f"ANALYZE {d}.passages")
    conn.execute(f"ANALYZE {d}.pages")


def _timed(search: Any, questions: list[dict[str, Any]], k: int) -> tuple[list[float], float]:
    """Milliseconds per search, and the share whose gold article is among the results."""
    times, found = [], 0
    for q in questions:
        t = time.perf_counter()
        results = search(q["question"], k)
        times.append((time.perf_counter() - t) * 1000)
        gold = str(q.get("title", "")).replace("_", " ")  # SQuAD names articles Super_Bowl_50
        found += any(r.title == gold for r in results)
    return times, found / max(len(questions), 1)


def run(
    settings: Settings,
    questions_file: Path,
    *,
    scales: list[int],
    n: int,
    keep: bool = False,
    report_to: str | None = None,
) -> tuple[dict[str, Any], Path]:
    import psycopg

    from answer_engine.components import build_embedder
    from answer_engine.ingest import Ingestor
    from answer_engine.pgindex import PostgresIngestor, connect, migrate
    from search_adapters.local import LocalIndex
    from search_adapters.postgres import PostgresIndex

    url = settings.search.postgres_url
    if not url:
        raise EvalError("bench --postgres needs search.postgres_url or DATABASE_URL")
    questions = load_questions(questions_file)
    random.Random(SEED).shuffle(questions)
    questions = questions[:n]
    k = settings.search.max_results
    base = f"{settings.search.postgres_schema}_scale"
    schemas = {s: f"{base}_{s}" for s in scales}
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    with connect(url, 30.0) as conn:
        for name in [f"{base}_1", *schemas.values()]:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    writer = PostgresIngestor(
        url,
        schema=f"{base}_1",
        embedder=build_embedder(settings),
        passage_words=settings.retrieval.chunk_words,
    )
    written = writer.sync([])
    build_1x_s = time.perf_counter() - t0
    try:
        with connect(url, 30.0) as conn:
            for scale, schema in schemas.items():
                if scale == 1:
                    continue
                t = time.perf_counter()
                migrate(conn, schema)
                _copy(conn, f"{base}_1", schema, scale)
                rows.append({"scale": scale, "copy_s": round(time.perf_counter() - t, 1)})
        with tempfile.TemporaryDirectory(prefix="ae-pgscale-") as tmp:
            ingestor = Ingestor(Path(tmp), passage_words=settings.retrieval.chunk_words)
            local = LocalIndex(ingestor.path, analyzer=terms, refresh=ingestor.ensure)
            local.prepare()
            _timed(local.search_sync, questions[:10], k)  # warm-up
            local_ms, local_recall = _timed(local.search_sync, questions, k)
        results = {
            "on-disk 1x": {
                "p50_ms": round(percentile(local_ms, 50), 2),
                "p95_ms": round(percentile(local_ms, 95), 2),
                "recall": round(local_recall, 3),
                "passages": local.counts()[1],
            }
        }
        for scale, schema in schemas.items():
            idx = PostgresIndex(url, analyzer=terms, schema=schema, pool_size=2, timeout_s=30)
            try:
                _timed(idx.search_sync, questions[:10], k)
                ms, recall = _timed(idx.search_sync, questions, k)
                pages, passages = idx.counts()
            finally:
                idx.close()
            results[f"postgres {scale}x"] = {
                "p50_ms": round(percentile(ms, 50), 2),
                "p95_ms": round(percentile(ms, 95), 2),
                "recall": round(recall, 3),
                "pages": pages,
                "passages": passages,
            }
        top = max(scales)
        replicas = _replicas(url, schemas[top], questions)
        with psycopg.connect(url, autocommit=True) as conn:
            size = conn.execute(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r'",
                (schemas[top],),
            ).fetchone()[0]
    finally:
        if not keep:
            with connect(url, 30.0) as conn:
                for name in {f"{base}_1", *schemas.values()}:
                    conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    summary = {
        "questions": len(questions),
        "max_results": k,
        "results": results,
        "replicas": replicas,
        "build_1x_s": round(build_1x_s, 1),
        "copies": rows,
        "written_1x": written.model_dump(),
        f"size_{top}x_mb": round(int(size) / 1e6, 1),
    }
    out = report.report_dir("pgscale", report_to)
    report.write_json(out / "summary.json", summary)
    _plot(out / "latency-by-scale.png", results)
    lines = [
        "# The shared PostgreSQL index by size",
        "",
        f"{len(questions)} SQuAD questions (seed {SEED}), top {k} results, one process on this machine.",
        "",
        "| index | passages | p50 ms | p95 ms | gold article in results |",
        "|---|---|---|---|---|",
        *[
            f"| {name} | {r['passages']:,} | {r['p50_ms']} | {r['p95_ms']} | {r['recall']} |"
            for name, r in results.items()
        ],
        "",
        f"Two replicas (a pool each) on the {top}x index at once: {replicas['queries']} searches in "
        f"{replicas['wall_s']} s, {replicas['per_s']}/s "
        f"(one reader alone: {replicas['one_reader_per_s']}/s).",
        "",
    ]
    (out / "README.md").write_text("\n".join(lines), encoding="utf-8")
    return summary, out


def _replicas(url: str, schema: str, questions: list[dict[str, Any]]) -> dict[str, Any]:
    """One reader, then two readers with their own pools at once (two replicas on one database)."""
    from search_adapters.postgres import PostgresIndex

    readers = [PostgresIndex(url, analyzer=terms, schema=schema, pool_size=2, timeout_s=30) for _ in range(2)]
    try:
        for r in readers:
            r.prepare()
        t = time.perf_counter()
        for q in questions:
            readers[0].search_sync(q["question"], 6)
        one = len(questions) / (time.perf_counter() - t)
        t = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            done = list(
                pool.map(lambda i: [readers[i].search_sync(q["question"], 6) for q in questions], range(2))
            )
        wall = time.perf_counter() - t
        same = all(
            [x.url for x in a] == [y.url for y in b] for a, b in zip(done[0], done[1])
        )  # both replicas see the same index
    finally:
        for r in readers:
            r.close()
    total = 2 * len(questions)
    return {
        "queries": total,
        "wall_s": round(wall, 2),
        "per_s": round(total / wall, 1),
        "one_reader_per_s": round(one, 1),
        "same_results": same,
    }


def _plot(path: Path, results: dict[str, dict[str, Any]]) -> None:
    plt = report._plt()
    names = list(results)
    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.bar(names, [results[n]["p50_ms"] for n in names], color="#1a5fd1", label="p50")
    ax.bar(
        names,
        [results[n]["p95_ms"] - results[n]["p50_ms"] for n in names],
        bottom=[results[n]["p50_ms"] for n in names],
        color="#9bb8ea",
        label="p95",
    )
    ax.set_ylabel("ms per search")
    ax.set_title("Search latency by index size")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
