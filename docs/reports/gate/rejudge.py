"""Re-judge the answers of `answer-engine eval qa` runs under today's verify stage and gates, with no
model: exact for verify.mode = "facts" (it asks the model nothing) and for the gates (they act before
the model, whose greedy answers do not change). Each run's streamed text is what the model wrote;
retrieval is run again (it is deterministic) for the sources, the relevance and the answerability.

    .venv/bin/python docs/reports/gate/rejudge.py RUN_DIR squad|unans|hotpot [--skip IDS.json] [--out F]

Policies: the streamed text unverified; verified with no gate; the previous default (embedding
similarity under 0.35 abstains); and today's (answerability under --gate abstains) with each
verify.min_question_coverage bar in --bars. Judged by evaluation/honest.py from gold data only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from pathlib import Path

from answer_engine.backends.extractive import ExtractiveBackend
from answer_engine.citations import MARKER_RE, parse_marker
from answer_engine.components import build_embedder, build_pipeline
from answer_engine.config import load_settings
from answer_engine.evaluation import honest
from answer_engine.evaluation import unanswerable as unanswerable_set
from answer_engine.evaluation.qa import index_privately, load_questions
from answer_engine.request import AskOptions, AskRequest
from answer_engine.stages import verify as verifying
from answer_engine.stages.state import RunState

SHARED = Path(__file__).resolve().parents[4] / "shared" / "evaldata"
SQUAD, HOTPOT = SHARED / "squad" / "questions.jsonl", SHARED / "hotpotqa" / "questions.jsonl"
OLD_RELEVANCE = 0.35


def record(q: dict, text: str, sources: dict, gold: dict) -> dict:
    plain = MARKER_RE.sub("", text)
    answerable = q.get("answerable", True)
    cited = [n for m in MARKER_RE.finditer(text) for n in (parse_marker(m.group(0)) or []) if n in sources]
    right = [
        honest.citation_right(q, {"title": sources[n].title, "text": sources[n].text}, gold)
        for n in dict.fromkeys(cited)
    ]
    return {
        "outcome": honest.outcome(plain, q["answers"], answerable=answerable, question=q["question"]),
        "answerable": answerable,
        "honest_citations": len(right),
        "honest_citations_right": sum(right),
    }


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run", type=Path)
    ap.add_argument("kind", choices=["squad", "unans", "hotpot"])
    ap.add_argument("--skip", type=Path, help="a JSON list of question ids to leave out")
    ap.add_argument("--gate", type=float, default=0.38)
    ap.add_argument("--bars", default="0,0.2,0.25,0.3,0.35,0.4")
    ap.add_argument("--out", type=Path)
    ap.add_argument(
        "--answers", type=Path, help="JSONL: each question's final text and outcome (default policy)"
    )
    args = ap.parse_args()
    bars = [float(b) for b in args.bars.split(",")]
    skip = set(json.loads(args.skip.read_text())) if args.skip else set()
    runs = [json.loads(line) for line in (args.run / "questions.jsonl").open()]
    runs = [r for r in runs if r["id"] not in skip]

    settings = load_settings()
    settings.search.providers = ["local"]
    tmp = Path(tempfile.mkdtemp(prefix="rejudge-"))
    if args.kind == "hotpot":
        by_id = {q["id"]: q for q in load_questions(HOTPOT)}
        gold: dict = {}
    else:
        by_id = {q["id"]: q for q in load_questions(SQUAD)}
        gold = honest.gold_paragraphs(SQUAD)
    if args.kind == "unans":
        built = {q["id"]: q for q in unanswerable_set.build(SQUAD)}
        questions = [
            {**by_id.get(r["id"], {}), **built.get(r["id"], {}), **r, "answerable": False} for r in runs
        ]
    else:
        questions = [{**by_id[r["id"]], **r} for r in runs]
    if args.kind != "squad":
        index_privately(settings, questions, tmp)
    if pro := sum(q.get("search_type") == "pro" for q in questions):
        print(f"warning: {pro} answers searched in pro mode: their later searches came from the model, so")
        print("their sources here (searched without it) may differ; only fast answers re-judge exactly")
    pipeline = build_pipeline(settings, backend=ExtractiveBackend(), embedder=build_embedder(settings))
    await pipeline.start()

    policies: dict[str, list[dict]] = {"unverified": [], "verified, no gate": [], "previous default": []}
    policies.update({f"gate {args.gate} + coverage {b}": [] for b in bars})
    answers: list[dict] = []
    for q in questions:
        trace: dict = {}
        request = AskRequest(
            query=q["question"], options=AskOptions(search_type=q.get("search_type") or "fast")
        )
        async for _ in pipeline.run(request, trace=trace, generate=False):
            pass
        sources = {s.n: s for s in trace["sources"]}
        streamed = q["streamed"]
        policies["unverified"].append(record(q, streamed, sources, gold))
        abstain = record(q, verifying.not_covered(trace["sources"]), sources, gold)
        finals = {}
        for b in sorted({0.0, *bars}):
            state = RunState(request=request, sources=trace["sources"])
            state.query = (q.get("queries") or [q["question"]])[0]
            state.term_weights = trace.get("term_weights") or {}
            state.answer = state.raw_answer = streamed
            cfg = settings.verify.model_copy(update={"mode": "facts", "min_question_coverage": b})
            final = (await verifying.verify(state, None, cfg)).answer
            finals[b] = record(q, final, sources, gold)
            if b == bars[-1]:
                answers.append(
                    {"id": q["id"], "question": q["question"], "answer": final, "trace": state.trace}
                )
        policies["verified, no gate"].append(finals[0.0])
        old_gated = (trace.get("relevance") or 0) < OLD_RELEVANCE
        policies["previous default"].append(abstain if old_gated else finals[0.0])
        gated = trace.get("answerability") is not None and trace["answerability"] < args.gate
        for b in bars:
            policies[f"gate {args.gate} + coverage {b}"].append(abstain if gated else finals[b])
        answers[-1]["outcome"] = (abstain if gated else finals[bars[-1]])["outcome"]
    summary = {name: honest.summarize(recs) for name, recs in policies.items()}
    print(args.run, len(questions))
    for name, s in summary.items():
        print(
            f"  {name:28} accuracy {s['accuracy']:.3f} abstention {s['abstention']:.3f} "
            f"hallucination {s['hallucination_rate']:.3f} CRAG {s['crag_score']:+.3f} "
            f"citation precision {s['citation_precision']}"
        )
    if args.answers:
        args.answers.write_text("".join(json.dumps(a, default=str) + "\n" for a in answers))
    if args.out:
        args.out.write_text(
            json.dumps({"run": str(args.run), "questions": len(questions), **summary}, indent=1)
        )


if __name__ == "__main__":
    asyncio.run(main())
