"""`answer-engine eval qa`: questions through the real pipeline on the current configuration.

Question files: ../shared/evaldata/squad/questions.jsonl (answered from the shipped corpus) and
../shared/evaldata/hotpotqa/questions.jsonl (each record brings its own paragraphs, which are
indexed into a private data dir first). Both have "question" and "answers"; a record with
``"answerable": false`` is one whose answer is in no indexed page (the right outcome: abstain).

Quality is judged by ``honest.py`` from the datasets' gold data (accuracy, abstention,
hallucination rate, CRAG score, citation precision), never by the engine's own citation filter.
The filter's lexical measure is still reported, as ``citation_precision_lexical``: it shares its
code and threshold with the filter, so it says how the filter behaved, not whether citations are right.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from answer_engine.backends.base import Backend
from answer_engine.citations import MARKER_RE
from answer_engine.config import Settings
from answer_engine.evaluation import honest, unanswerable
from answer_engine.evaluation.judge import support_score
from answer_engine.evaluation.metrics import contains, exact_match, f1, percentile
from answer_engine.request import AskOptions, AskRequest, ChatMessage, SearchType
from answer_engine.text import split_sentences, terms

ABSTAIN_RE = honest.ABSTAIN_RE
RETRIEVAL_KEYS = (
    "questions",
    "recall_at_1",
    "recall_at_5",
    "supporting_pages_all",
    "searches_per_question",
    "pro_share",
)
ALL_KEYS = (
    *RETRIEVAL_KEYS,
    "exact_match",
    "f1",
    "contains",
    "accuracy",
    "hallucination_rate",
    "crag_score",
    "citation_precision",
    "citation_precision_lexical",
    "citation_coverage",
    "abstain_rate",
    "abstention_unanswerable",
    "latency_ms_p50",
    "latency_ms_p95",
    "ttft_ms_p50",
    "escalated_share",  # with generation.backend = "router" only
)


class EvalError(Exception):
    pass


def load_questions(path: Path, limit: int | None = None) -> list[dict[str, Any]]:
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise EvalError(f"cannot read {path}: {exc.strerror or exc}") from exc
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            row["question"], row["answers"] = str(row["question"]), [str(a) for a in row["answers"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise EvalError(f"{path}:{n}: expected a JSON object with question and answers ({exc})") from exc
        rows.append(row)
        if limit and len(rows) >= limit:
            break
    if not rows:
        raise EvalError(f"{path}: no questions")
    return rows


def hotpot_corpus(rows: list[dict[str, Any]], dest: Path) -> Path:
    """HotpotQA records carry their paragraphs ("context": [[title, [sentences]], ...]): one page each."""
    seen: set[str] = set()
    with dest.open("w", encoding="utf-8") as fh:
        for row in rows:
            for title, sentences in row.get("context", []):
                if title in seen:
                    continue
                seen.add(title)
                url = "https://en.wikipedia.org/wiki/" + title.replace(" ", "_")
                fh.write(
                    json.dumps({"url": url, "title": title, "text": "".join(sentences)}, ensure_ascii=False)
                    + "\n"
                )
    return dest


def index_privately(settings: Settings, questions: list[dict[str, Any]], tmp: Path) -> None:
    """Point ``settings`` at a data dir in ``tmp`` whose only source is what the questions call for:
    the shipped corpus without their articles (the unanswerable set, ``left_out``), or HotpotQA's
    own paragraphs (``context``)."""
    from answer_engine.ingest import register_source

    settings.data_dir = tmp / "data"
    settings.search.include_default_corpus = False
    left_out = {q["left_out"] for q in questions if q.get("left_out")}
    if left_out:  # the unanswerable set: the shipped corpus without the questions' articles
        register_source(settings.data_dir, unanswerable.corpus_without(left_out, tmp / "corpus"))
    else:  # HotpotQA: index its own paragraphs privately
        register_source(settings.data_dir, hotpot_corpus(questions, tmp / "hotpot.jsonl"))


def judge_citations(answer: str, sources: dict[int, str], threshold: float) -> tuple[int, int, int, int]:
    """(citations, supported citations, sentences that need one, sentences that have one)."""
    cites = supported = needing = cited = 0
    for sentence in split_sentences(answer):
        markers = [int(n) for m in MARKER_RE.finditer(sentence) for n in re.findall(r"\d+", m.group(1))]
        plain = MARKER_RE.sub(" ", sentence)
        if len(set(terms(plain))) >= 2 and not ABSTAIN_RE.search(plain):
            needing += 1
            cited += bool(markers)
        for n in markers:
            cites += 1
            text = sources.get(n, "")
            supported += bool(text) and (support_score(plain, text) >= threshold or contains(text, [plain]))
    return cites, supported, needing, cited


async def evaluate(
    settings: Settings,
    questions: list[dict[str, Any]],
    *,
    generate: bool = True,
    backend: Backend | None = None,
    progress: bool = True,
    gold: dict[tuple[str, int], str] | None = None,
    search_type: SearchType | None = None,
    provider: str = "local",
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run every question; return (summary with the documented keys, per-question records).

    A question record may carry ``history`` (a thread: [{"role", "content"}, ...]) that it follows up."""
    from tqdm import tqdm

    from answer_engine.backends import create_backend
    from answer_engine.backends.extractive import ExtractiveBackend
    from answer_engine.components import build_embedder, build_pipeline

    with contextlib.ExitStack() as stack:
        embedder = build_embedder(settings)
        if generate and backend is None:  # before the data dir changes: the model lives in the real one
            backend = create_backend(settings)
        settings = settings.model_copy(deep=True)
        settings.search.providers = [provider]  # eval measures one index: local, or the shared postgres
        left_out = {q["left_out"] for q in questions if q.get("left_out")}
        if provider != "local" and (left_out or any("context" in q for q in questions)):
            raise EvalError(
                "this question set indexes its own corpus privately: measure it with --provider local"
            )
        if any("context" in q for q in questions) or left_out:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ae-eval-")))
            index_privately(settings, questions, tmp)
        # generate=False never calls a backend; the extractive one stands in without loading a model
        pipeline = build_pipeline(settings, backend=backend or ExtractiveBackend(), embedder=embedder)
        await pipeline.start()
        threshold = settings.citations.support_threshold
        records = []
        bar = tqdm(questions, desc="eval qa", unit="q", file=sys.stderr, disable=not progress)
        for q in bar:
            trace: dict[str, Any] = {}
            answer, done, error, cited, streamed, support = "", None, None, [], [], None
            t0 = time.perf_counter()
            request = AskRequest(
                query=q["question"],
                history=[ChatMessage(**m) for m in q.get("history", [])],
                options=AskOptions(search_type=search_type),
            )
            async for event in pipeline.run(request, trace=trace, generate=generate):
                if event.type == "delta":
                    streamed.append(event.text)
                elif event.type == "citations":
                    answer, cited, support = event.answer, event.citations, event.answer_support
                elif event.type == "done":
                    done = event
                elif event.type == "error":
                    error = f"{event.stage}: {event.message}"
            chosen = [p.text for p in trace.get("chosen", [])]
            rec: dict[str, Any] = {
                "id": q.get("id"),
                "question": q["question"],
                "answers": q["answers"][:3],
                "recall_at_1": contains(" ".join(chosen[:1]), q["answers"]),
                "recall_at_5": contains(" ".join(chosen[:5]), q["answers"]),
                "passages": len(chosen),
                "relevance": trace.get("relevance"),
                "coverage": trace.get("coverage"),
                "answerability": trace.get("answerability"),
                "error": error,
                "latency_ms": round((time.perf_counter() - t0) * 1000, 1),
                "timings": done.timings.model_dump() if done else None,
                "search_type": done.search_type if done else None,
                "queries": done.queries if done else [],
                "plan_stop": trace.get("plan_stop"),
                "plan_more": trace.get("plan_more", 0),
                "compare": trace.get("compare"),
                "route": done.route if done else None,
                "route_reason": done.route_reason if done else None,
            }
            if "supporting_facts" in q:  # HotpotQA: did the passages reach every page the answer needs?
                needed = {title for title, _ in q["supporting_facts"]}
                chosen_titles = {s.title for s in trace.get("sources", [])}
                rec["supporting_pages_found"] = len(needed & chosen_titles) / len(needed) if needed else 1.0
                rec["supporting_pages_all"] = needed <= chosen_titles
            if generate:
                sources = {s.n: s for s in trace.get("sources", [])}
                by_n = {n: s.text for n, s in sources.items()}
                cites, supported, needing, cited_sentences = judge_citations(answer, by_n, threshold)
                plain = MARKER_RE.sub("", answer)
                answerable = q.get("answerable", True)
                right = [
                    honest.citation_right(q, {"title": sources[c.n].title, "text": by_n[c.n]}, gold or {})
                    for c in cited
                    if c.n in sources
                ]
                rec.update(
                    answer=answer,
                    exact_match=exact_match(plain, q["answers"]),
                    f1=f1(plain, q["answers"]),
                    contains=contains(plain, q["answers"]),
                    citations=cites,
                    supported_citations=supported,
                    sentences=needing,
                    cited_sentences=cited_sentences,
                    abstained=honest.abstained(plain),
                    answerable=answerable,
                    outcome=honest.outcome(
                        plain, q["answers"], answerable=answerable, question=q["question"]
                    ),
                    answer_support=support,
                    # what the model wrote before verification (the stream): the same run, judged unverified
                    streamed="".join(streamed),
                    outcome_unverified=honest.outcome(
                        MARKER_RE.sub("", "".join(streamed)),
                        q["answers"],
                        answerable=answerable,
                        question=q["question"],
                    ),
                    honest_citations=len(right),
                    honest_citations_right=sum(right),
                )
            records.append(rec)
            bar.set_postfix(recall5=f"{sum(r['recall_at_5'] for r in records) / len(records):.2f}")
    return summarize(records, generate=generate), records


def summarize(records: list[dict[str, Any]], *, generate: bool) -> dict[str, Any]:
    n = len(records)

    def mean(key: str) -> float:
        return round(sum(float(r[key]) for r in records) / n, 4) if n else 0.0

    out: dict[str, Any] = {
        "questions": n,
        "recall_at_1": mean("recall_at_1"),
        "recall_at_5": mean("recall_at_5"),
        "searches_per_question": round(sum(len(r.get("queries", [])) for r in records) / n, 3) if n else 0.0,
        "pro_share": round(sum(r.get("search_type") == "pro" for r in records) / n, 4) if n else 0.0,
    }
    if n and all("supporting_pages_all" in r for r in records):
        out["supporting_pages_all"] = mean("supporting_pages_all")
    if not generate:
        return out
    cites = sum(r["citations"] for r in records)
    needing = sum(r["sentences"] for r in records)
    latencies = [r["latency_ms"] for r in records if not r["error"]]
    ttfts = [r["timings"]["ttft_ms"] for r in records if r["timings"] and r["timings"]["ttft_ms"]]
    out.update(
        exact_match=mean("exact_match"),
        f1=mean("f1"),
        contains=mean("contains"),
        citation_precision_lexical=(
            round(sum(r["supported_citations"] for r in records) / cites, 4) if cites else 0.0
        ),
        citation_coverage=round(sum(r["cited_sentences"] for r in records) / needing, 4) if needing else 0.0,
        abstain_rate=mean("abstained"),
        latency_ms_p50=round(percentile(latencies, 50), 1),
        latency_ms_p95=round(percentile(latencies, 95), 1),
        ttft_ms_p50=round(percentile(ttfts, 50), 1),
        errors=sum(bool(r["error"]) for r in records),
        latency_ms_mean=round(sum(latencies) / len(latencies), 1) if latencies else 0.0,
    )
    if any(r.get("route") for r in records):  # a router answered: how often the strong model did
        out["escalated_share"] = round(sum(r.get("route") == "strong" for r in records) / n, 4)
    out.update(honest.summarize(records))
    return out
