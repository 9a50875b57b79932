"""The development sets the gate's bar was chosen on, and their retrieval-only features.

    .venv/bin/python docs/reports/gate/devset.py unans|squad OUT.jsonl

unans: 8 SQuAD articles other than the reported unanswerable set's 4 (seed 7), 10 questions each,
asked against the shipped corpus without them, plus 20 off-topic questions written for this set
(none of the reported set's); squad: 250 SQuAD questions (seed 11) outside the reported 40-question
sample. Each line: the question, whether a reference answer is in the chosen passages, the best
embedding similarity, the coverage and the answerability (the engine's own trace), the passages.
dev-features.jsonl keeps the numbers and ids only (no SQuAD text is copied into the repository).
"""

import asyncio
import json
import random
import sys
import tempfile
from pathlib import Path

from answer_engine.config import load_settings
from answer_engine.evaluation import unanswerable as U
from answer_engine.evaluation.metrics import contains
from answer_engine.request import AskRequest

SQUAD = Path(__file__).resolve().parents[4] / "shared" / "evaldata" / "squad" / "questions.jsonl"
kind, out = sys.argv[1], sys.argv[2]

rows = [json.loads(line) for line in SQUAD.read_text().splitlines() if line.strip()]
titles = sorted({r["title"] for r in rows})
test_left = {q["left_out"] for q in U.build(SQUAD) if q["left_out"]}

OFF_DEV = [
    "Who won the Tour de France in 2019?",
    "What is the melting point of tungsten?",
    "How many strings does a standard violin have?",
    "Who directed the film Jaws?",
    "What is the largest desert in Asia?",
    "When was the first iPhone released?",
    "What language is spoken in Brazil?",
    "Who composed The Four Seasons?",
    "What is the chemical formula of table salt?",
    "How long is the Great Wall of China?",
    "Who is the author of Harry Potter?",
    "What is the tallest building in Dubai?",
    "How many players are on a baseball team?",
    "What causes the northern lights?",
    "Which country hosted the 2016 Summer Olympics?",
    "What is the currency of Japan?",
    "Who discovered penicillin?",
    "What is the distance from Earth to Mars?",
    "How do vaccines train the immune system?",
    "What is Kubernetes used for?",
]

if kind == "unans":
    rng = random.Random(7)
    left = rng.sample([t for t in titles if t not in test_left], 8)
    qs = []
    for t in left:
        pool = [r for r in rows if r["title"] == t]
        qs += [dict(r, left_out=t, answerable=False) for r in rng.sample(pool, min(10, len(pool)))]
    qs += [
        {"id": f"off{i}", "question": q, "answers": [], "left_out": None, "answerable": False}
        for i, q in enumerate(OFF_DEV)
    ]
else:
    rng = random.Random(11)
    test_ids = {r["id"] for r in random.Random(20251123).sample(rows, 40)}
    qs = [dict(r, answerable=True) for r in rng.sample(rows, 300) if r["id"] not in test_ids][:250]


async def main():
    from answer_engine.backends.extractive import ExtractiveBackend
    from answer_engine.components import build_embedder, build_pipeline
    from answer_engine.evaluation.qa import index_privately

    settings = load_settings()
    settings.retrieval.min_relevance = 0.0
    embedder = build_embedder(settings)
    settings.search.providers = ["local"]
    tmp = Path(tempfile.mkdtemp())
    lefts = {q["left_out"] for q in qs if q.get("left_out")}
    if lefts:
        index_privately(settings, qs, tmp)
    pipe = build_pipeline(settings, backend=ExtractiveBackend(), embedder=embedder)
    await pipe.start()
    with open(out, "w") as fh:
        for q in qs:
            trace = {}
            async for ev in pipe.run(AskRequest(query=q["question"]), trace=trace, generate=False):
                pass
            chosen = [{"text": p.text} for p in trace.get("chosen", [])]
            rec = {
                "id": q["id"],
                "question": q["question"],
                "answers": q["answers"],
                "answerable": q["answerable"],
                "left_out": q.get("left_out"),
                "relevance": trace.get("relevance"),
                "coverage": trace.get("coverage"),
                "answerability": trace.get("answerability"),
                "recall5": contains(" ".join(c["text"] for c in chosen), q["answers"])
                if q["answers"]
                else False,
                "chosen": [c["text"] for c in chosen],
                "titles": [s.title for s in trace.get("sources", [])],
            }
            fh.write(json.dumps(rec) + "\n")


asyncio.run(main())
