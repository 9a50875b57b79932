"""An honest judge for `eval qa`, sharing no code or threshold with the engine's citation filter.

The engine keeps or drops a citation by word overlap (citations.py); judging citations with the
same overlap can only agree with it. This judge uses the datasets' own gold data instead:

- SQuAD: a cited source is right when the text the engine gave the model for it contains a
  reference answer, or shares a run of 8 words with the gold paragraph that holds the answer
  (``corpus.jsonl`` beside the questions file).
- HotpotQA: a cited source is right when it is one of the question's supporting-fact pages.

Each answer is one of: correct (it contains a reference answer, ``reads_as``: as whole normalized
words, a number as digits or as a word, a word as its plural or singular), abstained (it says the
sources do not answer), or wrong. Two kinds of question are judged by what the answer *says*, not
by the words it contains: a yes/no question by the answer's leading "yes" or "no" ("Yes, ... no
..." is not a no), and a choice ("Who is older, A or B?") by the option the answer names first
("A is older than B" names both, and picks A). The hallucination rate is the share wrong and not
abstained; the CRAG score (Meta's CRAG benchmark) averages +1 correct, 0 abstained, -1 wrong. An
unanswerable question (``"answerable": false``) is correct only when the engine abstains.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from answer_engine.evaluation.metrics import contains, normalize_answer

SHARED_RUN_WORDS = 8
# How an answer says it cannot answer: the engine's own wording and the common ways a model puts it.
ABSTAIN_RE = re.compile(
    r"could ?n[o']t find|cannot find|can't find"
    # "the sources do not say", not "Zurracapote does not contain gin" (an answer, to a yes/no question)
    r"|(?:sources?|passages?|texts?|context|documents?|pages?|information|they)\s+do(?:es)?\s+not\s+"
    r"(?:answer|contain|say|mention|provide|state)"
    r"|no information|not (?:mentioned|stated|provided|covered) in the (?:sources|provided)"
    r"|sources? (?:found )?(?:do|does) not|not enough information|unable to (?:find|answer)",
    re.IGNORECASE,
)


# The forms a reference takes in a right answer that the plain SQuAD "contains" misses: "3 stages"
# for "three", "the Keraite tribe" for "the Keraites". (The judge's own table: the verifier has one
# for a different job, and a judge must not share code with what it measures.)
_NUMERALS = {
    w: str(i)
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen twenty".split()
    )
}


def _form(word: str) -> str:
    word = _NUMERALS.get(word, word)
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _forms(text: str) -> str:
    return " ".join(_form(w) for w in normalize_answer(text).split())


def reads_as(answer: str, answers: list[str]) -> bool:
    """The answer gives a reference answer: its words, in order, up to number form and plural."""
    hay = f" {_forms(answer)} "
    return any(n and f" {n} " in hay for n in (_forms(r) for r in answers))


def gold_paragraphs(questions_file: Path) -> dict[tuple[str, int], str]:
    """(title, paragraph_index) -> paragraph, from the corpus.jsonl beside a SQuAD questions file."""
    corpus = questions_file.parent / "corpus.jsonl"
    if not corpus.exists():
        return {}
    out: dict[tuple[str, int], str] = {}
    for line in corpus.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        for i, paragraph in enumerate(row["paragraphs"]):
            out[(row["title"], i)] = paragraph
    return out


def _runs(text: str, n: int = SHARED_RUN_WORDS) -> set[tuple[str, ...]]:
    words = normalize_answer(text).split()
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def shares_a_run(a: str, b: str, n: int = SHARED_RUN_WORDS) -> bool:
    return bool(_runs(a, n) & _runs(b, n))


def abstained(answer: str) -> bool:
    return bool(ABSTAIN_RE.search(answer))


_YES_NO = ("yes", "no")
# "Which writer was from England, Henry Roth or Robert Erskine Childers?": the two options.
_CHOICE_OPTIONS = re.compile(r",\s*([^,?]+?)\s+or\s+([^,?]+?)\s*\?\s*$")


def _first_option(answer: str, options: list[str]) -> str | None:
    """The option the answer names first (by its full name), or None when it names neither."""
    hay = f" {normalize_answer(answer)} "
    at = {o: hay.find(f" {normalize_answer(o)} ") for o in options}
    named = [o for o in options if normalize_answer(o) and at[o] >= 0]
    return min(named, key=lambda o: at[o]) if named else None


def _reference_option(answers: list[str], options: list[str]) -> str | None:
    """The option a reference answer names: the one sharing the most words with a reference ("Robert
    Erskine Childers DSC" -> "Robert Erskine Childers", "Levni Yilmaz" -> "Lev Yilmaz"); None on a tie."""

    def shared(o: str) -> int:
        words = set(normalize_answer(o).split())
        return max((len(words & set(normalize_answer(r).split())) for r in answers), default=0)

    scores = sorted(((shared(o), o) for o in options), reverse=True)
    if not scores or scores[0][0] == 0 or (len(scores) > 1 and scores[1][0] == scores[0][0]):
        return None
    return scores[0][1]


def outcome(answer: str, answers: list[str], *, answerable: bool = True, question: str | None = None) -> str:
    """'correct', 'abstained' or 'wrong'. A yes/no reference is judged by the answer's leading yes/no;
    with the ``question``, a choice by the option the answer names first (the module's docstring)."""
    if abstained(answer) or not answer.strip():
        return "abstained"  # even if it names the answer ("... They cover: Oxygen."): it did not give it
    if not answerable:
        return "wrong"
    refs = {normalize_answer(r) for r in answers}
    if refs and refs <= set(_YES_NO):
        lead = normalize_answer(answer).split()[:1]
        if lead and lead[0] in _YES_NO:
            return "correct" if lead[0] in refs else "wrong"
    if question and (m := _CHOICE_OPTIONS.search(question)):
        options = [o.strip().strip("\"'") for o in m.groups()]
        if (picked := _reference_option(answers, options)) is not None:
            first = _first_option(answer, options)
            if first is not None:
                return "correct" if first == picked else "wrong"
    return "correct" if reads_as(answer, answers) else "wrong"


Gold = dict[tuple[str, int], str]


def citation_right(question: dict[str, Any], source: dict[str, str], gold: Gold) -> bool:
    """Is this cited source one the dataset says holds the answer?"""
    if "supporting_facts" in question:  # HotpotQA: the supporting pages
        return source["title"] in {title for title, _ in question["supporting_facts"]}
    if contains(source["text"], question["answers"]):
        return True
    paragraph = gold.get((question.get("title", ""), question.get("paragraph_index", -1)))
    return bool(paragraph) and shares_a_run(source["text"], paragraph)


def summarize(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy, abstention, hallucination, CRAG score and honest citation precision."""
    n = len(records)
    if not n:
        return {}
    outcomes = [r["outcome"] for r in records]
    cites = sum(r["honest_citations"] for r in records)
    right = sum(r["honest_citations_right"] for r in records)
    answerable = [r for r in records if r.get("answerable", True)]
    unanswerable = [r for r in records if not r.get("answerable", True)]
    out = {
        "accuracy": round(outcomes.count("correct") / n, 4),
        "abstention": round(outcomes.count("abstained") / n, 4),
        "hallucination_rate": round(outcomes.count("wrong") / n, 4),
        "crag_score": round((outcomes.count("correct") - outcomes.count("wrong")) / n, 4),
        "citation_precision": round(right / cites, 4) if cites else None,
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
    }
    if unanswerable:
        out["abstention_unanswerable"] = round(
            sum(r["outcome"] == "abstained" for r in unanswerable) / len(unanswerable), 4
        )
    return out
