"""The unanswerable set of `eval qa --unanswerable`: questions whose answer is in no indexed page.

Two kinds, both marked ``"answerable": false``:
- shared SQuAD questions asked against the shipped corpus with their article left out of the
  index: ``ARTICLES`` articles picked with a fixed seed, ``PER_ARTICLE`` questions from each;
- questions on topics no shipped page covers (written for this set; the first four are the ones
  the verification issue reported answered with confident, cited nonsense).

The right outcome for every one is to abstain. Built on the fly from the shared data (nothing of
SQuAD is copied into the repository); the same seed gives the same set.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

from answer_engine.ingest import SHIPPED_CORPUS

SEED = 20261125
ARTICLES = 4
PER_ARTICLE = 15

OFF_TOPIC = [
    "who told the story of the prodigal son",
    "what are the main sources of economic growth in the US currently",
    "where did they film the game of thrones",
    "Who designed the Eiffel Tower and when was it completed?",
    "How many times has Rory McIlroy won the Masters tournament?",
    "What is the boiling point of liquid nitrogen?",
    "Who wrote the novel Pride and Prejudice?",
    "What is the capital city of Mongolia today?",
    "How tall is Mount Kilimanjaro?",
    "Which team won the 2018 FIFA World Cup?",
    "What does the Python GIL do?",
    "When did the Berlin Wall fall?",
    "What is the population of Lagos, Nigeria?",
    "Who painted the Girl with a Pearl Earring?",
    "How does a lithium-ion battery store energy?",
    "What is the speed of sound in water?",
    "Who was the first person to climb Mount Everest without oxygen?",
    "What year did the Titanic sink?",
    "What is the main ingredient of guacamole?",
    "Which planet has the most moons?",
]


def build(squad_questions: Path, *, seed: int = SEED) -> list[dict[str, Any]]:
    rows = [
        json.loads(line) for line in squad_questions.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    titles = sorted({r["title"] for r in rows})
    rng = random.Random(seed)
    left_out = rng.sample(titles, ARTICLES)
    out: list[dict[str, Any]] = []
    for title in left_out:
        pool = [r for r in rows if r["title"] == title]
        for r in rng.sample(pool, min(PER_ARTICLE, len(pool))):
            out.append(
                {
                    "id": r["id"],
                    "question": r["question"],
                    "answers": r["answers"],
                    "answerable": False,
                    "left_out": title,
                    "kind": "squad-article-left-out",
                }
            )
    for i, q in enumerate(OFF_TOPIC):
        out.append(
            {
                "id": f"off-topic-{i}",
                "question": q,
                "answers": [],
                "answerable": False,
                "left_out": None,
                "kind": "off-topic",
            }
        )
    return out


def corpus_without(titles: set[str], dest: Path) -> Path:
    """A copy of the shipped corpus folder (manifest and pages) without these SQuAD titles."""
    dest.mkdir(parents=True, exist_ok=True)
    kept = []
    for line in (SHIPPED_CORPUS / "manifest.jsonl").read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        if entry["url"].rsplit("/", 1)[-1] in titles:
            continue
        shutil.copy2(SHIPPED_CORPUS / entry["file"], dest / entry["file"])
        kept.append(line)
    (dest / "manifest.jsonl").write_text("\n".join(kept) + "\n", encoding="utf-8")
    return dest
