"""`answer-engine distill`: training data for fine-tuning the answer model, from our own pipeline.

For training questions, the engine's own retrieval picks the passages (search, read, select: what
the model will see at question time), a teacher (any OpenAI-compatible model: a frontier API in
production; the 1.5B default behind ``python -m llama_cpp.server`` here) writes the answer with
``[n]`` citations from the very prompt the engine sends, and the example is kept only when it
passes the dataset's checks: a reference answer is in it, it cites, and every source it cites holds
the answer (a reference answer in the passage, or a shared run of words with the gold paragraph).
Unanswerable examples are the same questions with the answer's article taken out of the passages
(and no remaining passage holding a reference answer): their target is the abstention the system
prompt asks for.

The split is by article: the shared SQuAD articles with questions are shuffled with a seed and
``EVAL_SHARE`` of them are held apart for evaluating the tuned model (``split.json`` names both
sides); no training question comes from an evaluation article. Written beside the data: every
rejected example with its reason, and a dataset card (counts, sources, licenses, the split, what
was filtered out and why).
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from answer_engine.backends.base import Backend, GenerationParams
from answer_engine.citations import MARKER_RE, parse_marker
from answer_engine.config import Settings
from answer_engine.evaluation import honest
from answer_engine.evaluation.metrics import contains
from answer_engine.prompt import STOP_STRINGS, build_messages
from answer_engine.request import AskOptions, AskRequest

SEED = 20261201
EVAL_SHARE = 0.25
ABSTENTION = "I could not find the answer in the sources."  # what the system prompt asks for


class DistillError(Exception):
    """The distillation cannot run (no questions, no teacher)."""


def split_articles(questions: list[dict[str, Any]], *, seed: int = SEED) -> dict[str, list[str]]:
    """{"train": [...], "eval": [...]}: the articles of the questions, split with a seed."""
    titles = sorted({q["title"] for q in questions})
    random.Random(seed).shuffle(titles)
    n_eval = max(1, round(len(titles) * EVAL_SHARE)) if len(titles) > 1 else 0
    return {"train": sorted(titles[n_eval:]), "eval": sorted(titles[:n_eval])}


def cited(answer: str) -> list[int]:
    return [n for m in MARKER_RE.finditer(answer) for n in (parse_marker(m.group(0)) or [])]


def check(question: dict[str, Any], answer: str, sources: dict[int, Any], gold: honest.Gold) -> str | None:
    """Why the teacher's answer is not a training target (None: it is one)."""
    if not answer.strip():
        return "empty answer"
    if honest.abstained(answer):
        return "the teacher abstained although the passages hold the answer"
    plain = MARKER_RE.sub("", answer)
    if not contains(plain, question["answers"]):
        return "no reference answer in it"
    numbers = cited(answer)
    if not numbers:
        return "no citation"
    if any(n not in sources for n in numbers):
        return "cites a source it was not given"
    for n in dict.fromkeys(numbers):
        if not honest.citation_right(question, {"title": sources[n].title, "text": sources[n].text}, gold):
            return f"cites [{n}], which does not hold the answer"
    return None


async def _teacher_answer(teacher: Backend, messages: list[Any], max_tokens: int) -> str:
    params = GenerationParams(max_tokens=max_tokens, temperature=0.0, top_p=1.0, stop=list(STOP_STRINGS))
    return "".join([piece async for piece in teacher.stream(messages, params)]).strip()


async def distill(
    settings: Settings,
    questions_file: Path,
    out: Path,
    *,
    teacher: Backend,
    teacher_name: str,
    n: int,
    unanswerable: int,
    max_tokens: int = 160,
    progress: bool = True,
) -> dict[str, Any]:
    """Write ``out/train.jsonl``, ``rejected.jsonl``, ``split.json`` and ``CARD.md``; return the counts."""
    from tqdm import tqdm

    from answer_engine.backends.extractive import ExtractiveBackend
    from answer_engine.components import build_embedder, build_pipeline
    from answer_engine.evaluation.qa import load_questions

    try:
        questions = load_questions(questions_file)
    except (OSError, ValueError) as exc:
        raise DistillError(f"{questions_file}: {exc}") from exc
    if not questions or "title" not in questions[0]:
        raise DistillError(f"{questions_file}: expected SQuAD-shaped questions with a title")
    split = split_articles(questions)
    train_titles = set(split["train"])
    pool = [q for q in questions if q["title"] in train_titles]
    random.Random(SEED).shuffle(pool)
    gold = honest.gold_paragraphs(questions_file)
    settings = settings.model_copy(deep=True)
    settings.search.providers = ["local"]
    # retrieval only: the teacher writes the answers, so the pipeline never calls a model
    pipeline = build_pipeline(settings, backend=ExtractiveBackend(), embedder=build_embedder(settings))
    await pipeline.start()
    await teacher.start()
    out.mkdir(parents=True, exist_ok=True)
    kept: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    answers = abstentions = 0
    t0 = time.perf_counter()
    bar = tqdm(pool, desc="distill", unit="q", disable=not progress)
    for q in bar:
        if answers >= n and abstentions >= unanswerable:
            break
        trace: dict[str, Any] = {}
        async for _ in pipeline.run(
            AskRequest(query=q["question"], options=AskOptions(search_type="fast")),
            trace=trace,
            generate=False,
        ):
            pass
        sources = trace.get("sources", [])
        base = {"id": q["id"], "question": q["question"], "answers": q["answers"][:3], "article": q["title"]}
        if not sources:
            rejected.append({**base, "kind": "answer", "why": "retrieval found no passages"})
            continue
        if answers < n:
            messages = build_messages(q["question"], sources, [])
            answer = await _teacher_answer(teacher, messages, max_tokens)
            why = check(q, answer, {s.n: s for s in sources}, gold)
            record = {**base, "kind": "answer", "teacher": teacher_name, "target": answer}
            if why:
                rejected.append({**record, "why": why})
            else:
                answers += 1
                kept.append(
                    {
                        **record,
                        "messages": [
                            *[m.model_dump() for m in messages],
                            {"role": "assistant", "content": answer},
                        ],
                    }
                )
        if abstentions < unanswerable:
            article = q["title"].replace("_", " ")
            others = [s for s in sources if s.title != article]
            if not others:
                continue  # every passage was from the answer's article
            others = [replace(s, n=i) for i, s in enumerate(others, 1)]
            if any(contains(s.text, q["answers"]) for s in others):
                rejected.append(
                    {**base, "kind": "abstain", "why": "a passage of another article holds the answer"}
                )
                continue
            messages = build_messages(q["question"], others, [])
            abstentions += 1
            kept.append(
                {
                    **base,
                    "kind": "abstain",
                    "teacher": None,
                    "target": ABSTENTION,
                    "messages": [
                        *[m.model_dump() for m in messages],
                        {"role": "assistant", "content": ABSTENTION},
                    ],
                }
            )
        bar.set_postfix(kept=len(kept), rejected=len(rejected))
    await pipeline.aclose()
    counts = Counter(k["kind"] for k in kept)
    reasons = Counter(r["why"] for r in rejected)
    summary = {
        "answers": counts["answer"],
        "abstentions": counts["abstain"],
        "rejected": len(rejected),
        "rejected_by_reason": dict(reasons.most_common()),
        "questions_tried": len({r["id"] for r in [*kept, *rejected]}),
        "teacher": teacher_name,
        "seconds": round(time.perf_counter() - t0, 1),
        "split": {"train_articles": len(split["train"]), "eval_articles": len(split["eval"])},
    }
    with (out / "train.jsonl").open("w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(k, ensure_ascii=False) + "\n" for k in kept)
    with (out / "rejected.jsonl").open("w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rejected)
    (out / "split.json").write_text(json.dumps({"seed": SEED, **split}, indent=1) + "\n", encoding="utf-8")
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    (out / "CARD.md").write_text(card(summary, split, questions_file), encoding="utf-8")
    return summary


def card(summary: dict[str, Any], split: dict[str, list[str]], questions_file: Path) -> str:
    reasons = "\n".join(f"| {why} | {k} |" for why, k in summary["rejected_by_reason"].items()) or "| — | 0 |"
    return f"""# Distilled answers with citations: dataset card

Made by `answer-engine distill` on {datetime.now(UTC):%Y-%m-%d} (`answer_engine/distill.py`).

## What it is
Chat-formatted examples (`train.jsonl`, field `messages`: the engine's system prompt, the numbered
sources its own retrieval chose for the question, and the target answer) for fine-tuning the
answer model to answer from its sources with `[n]` citations, and to abstain when they do not hold
the answer.

| kind | examples |
|---|---|
| answer (the teacher's, checked) | {summary["answers"]} |
| abstain (the answer's article left out of the passages) | {summary["abstentions"]} |
| rejected (`rejected.jsonl`) | {summary["rejected"]} |

Teacher: `{summary["teacher"]}`, greedy decoding.
{summary["questions_tried"]} questions tried in {summary["seconds"]} s.

## Sources and licenses
- Questions and reference answers: SQuAD v1.1 dev (`{questions_file}`), CC BY-SA 4.0.
- Passages: the engine's shipped corpus, the same 48 Wikipedia articles (CC BY-SA 4.0; see
  `answer_engine/corpus/ATTRIBUTION.md`), as the engine's index cuts them.
- Targets: written by the teacher model named above; its own license terms apply to its output.
The examples carry Wikipedia text, so any copy shipped needs attribution and the share-alike notice.

## The split (by article)
{summary["split"]["train_articles"]} articles for training, {summary["split"]["eval_articles"]} held apart for
evaluation (`split.json`, seed {SEED}): no example comes from an evaluation article.
Evaluation articles: {", ".join(split["eval"])}.

## What was filtered out, and why
A teacher answer is kept only when a reference answer is in it, it cites at least one source, every
source it cites was given, and every cited source holds the answer (a reference answer in the
passage, or a run of words shared with the gold paragraph: the dataset's judgement, not the
engine's citation filter). An abstention example is dropped when a passage of another article holds
the answer anyway.

| reason | rejected |
|---|---|
{reasons}
"""
