"""The multi-turn set of the multi-step search issue: threads built from the shared SQuAD questions.

Each thread is a first question about an article (naming its topic), an answer to it (the
sentence of the gold paragraph that holds SQuAD's answer, cited [1]), and a last question:

- **follow-up** threads: another SQuAD question on the same article with the topic's name
  replaced by a pronoun ("When did Tesla die?" -> "When did he die?"); it can only be searched
  well by reading the thread. The reference answers are SQuAD's.
- **topic-change** threads: a short question (under 8 words) on another article that names its
  own topic; it needs nothing from the thread, and searching it with the old question glued in
  front (the engine's old behaviour for short follow-ups) pulls in the old topic.

``build`` is deterministic (a fixed seed); ``python -m answer_engine.evaluation.threads`` writes the
set that docs/evalsets/threads/ commits. SQuAD is CC BY-SA 4.0, so the set is too.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

SEED = 20261125
FOLLOW_UPS_PER_TOPIC = 3
TOPIC_CHANGES = 10
SHORT_WORDS = 8

# title -> (names of the topic, longest first; subject, object and possessive pronoun)
TOPICS: dict[str, tuple[list[str], tuple[str, str, str]]] = {
    "Nikola_Tesla": (["Nikola Tesla", "Tesla"], ("he", "him", "his")),
    "Martin_Luther": (["Martin Luther", "Luther"], ("he", "him", "his")),
    "Genghis_Khan": (["Genghis Khan", "Genghis"], ("he", "him", "his")),
    "Warsaw": (["Warsaw"], ("it", "it", "its")),
    "American_Broadcasting_Company": (["American Broadcasting Company", "ABC"], ("it", "it", "its")),
    "Apollo_program": (["Apollo program"], ("it", "it", "its")),
    "Yuan_dynasty": (["Yuan dynasty"], ("it", "it", "its")),
    "Huguenot": (["Huguenots"], ("they", "them", "their")),
    "Normans": (["Normans"], ("they", "them", "their")),
    "University_of_Chicago": (["University of Chicago"], ("it", "it", "its")),
    "Amazon_rainforest": (["Amazon rainforest", "Amazon"], ("it", "it", "its")),
    "United_Methodist_Church": (["United Methodist Church", "UMC"], ("it", "it", "its")),
    "Intergovernmental_Panel_on_Climate_Change": (["IPCC"], ("it", "it", "its")),
    "Black_Death": (["Black Death"], ("it", "it", "its")),
}
_AUX = re.compile(r"\b(?:did|does|do|was|is|were|are|has|had|have|can|could|will|would)\s*$", re.IGNORECASE)


_OBJECT_END = re.compile(
    r"\s*(?:[?.,;:]|$|(?:in|on|at|to|for|of|by|with|from|after|before|during|near|and|or|as|than|when|"
    r"while|until|into|over|under|about|against|between|since)\b)",
    re.IGNORECASE,
)


def _name_re(names: list[str]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(n) for n in names)
    return re.compile(rf"(?:\bthe\s+)?\b(?:{alternatives})\b('s|’s)?", re.IGNORECASE)


def pronoun_question(question: str, title: str) -> str | None:
    """The question with its topic's name as a pronoun, or None (no name in it, or named twice)."""
    names, (subject, obj, possessive) = TOPICS[title]
    pattern = _name_re(names)
    found = list(pattern.finditer(question))
    if len(found) != 1:
        return None
    m = found[0]
    before = question[: m.start()]
    after = question[m.end() :]
    if m.group(1):
        word = possessive
    elif re.search(r"\b(?:the|a|an|new|old|first|appellation)\s*$", before, re.IGNORECASE):
        return None  # "the new ABC", "the the Amazon"
    elif re.match(r"\s*(?:\d|[A-Z]|news\b)", after):  # "Apollo 5", "ABC News": a name, not the topic
        return None
    elif not before.strip() or _AUX.search(before):
        word = subject
    elif _OBJECT_END.match(after):
        word = obj
    else:  # the name as a modifier ("the first Apollo crew", "the Royal University of Warsaw founded")
        return None
    if not before.strip():
        word = word.capitalize()
    out = before + word + after
    return re.sub(r"\s+", " ", out).strip()


def _answer_sentence(paragraph: str, start: int) -> str:
    """The sentence of the paragraph that holds the character ``start``."""
    left = max(paragraph.rfind(". ", 0, start), paragraph.rfind("? ", 0, start))
    right = paragraph.find(". ", start)
    return paragraph[left + 2 if left >= 0 else 0 : right + 1 if right >= 0 else len(paragraph)].strip()


def build(squad_dir: Path) -> list[dict[str, Any]]:
    questions = [
        json.loads(line)
        for line in (squad_dir / "questions.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    corpus = {
        (row := json.loads(line))["title"]: row["paragraphs"]
        for line in (squad_dir / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    }
    rng = random.Random(SEED)
    by_title: dict[str, list[dict[str, Any]]] = {}
    for q in questions:
        by_title.setdefault(q["title"], []).append(q)

    named = {title: _name_re(names) for title, (names, _) in TOPICS.items()}

    def opener(title: str, avoid: set[str]) -> list[dict[str, str]]:
        """A first question naming the topic, and its answer sentence as the assistant's turn."""
        firsts = [q for q in by_title[title] if named[title].search(q["question"]) and q["id"] not in avoid]
        first = rng.choice(firsts)
        paragraph = corpus[title][first["paragraph_index"]]
        answer = _answer_sentence(paragraph, first["answer_starts"][0])
        return [
            {"role": "user", "content": first["question"]},
            {"role": "assistant", "content": f"{answer} [1]"},
        ]

    def thread(kind: str, q: dict[str, Any], question: str, history: list[dict[str, str]]) -> dict[str, Any]:
        return {
            "id": f"{kind}-{q['id']}",
            "kind": kind,
            "title": q["title"],
            "question": question,
            "original_question": q["question"],
            "history": history,
            "answers": q["answers"],
            "paragraph_index": q["paragraph_index"],
        }

    threads: list[dict[str, Any]] = []
    for title in sorted(TOPICS):
        candidates = [
            (q, pq) for q in by_title.get(title, []) if (pq := pronoun_question(q["question"], title))
        ]
        for q, follow_up in rng.sample(candidates, min(FOLLOW_UPS_PER_TOPIC, len(candidates))):
            threads.append(thread("follow-up", q, follow_up, opener(title, {q["id"]})))
    shorts = {
        title: [
            q
            for q in by_title[title]
            if len(q["question"].split()) < SHORT_WORDS and named[title].search(q["question"])
        ]
        for title in sorted(TOPICS)
    }
    titles = [t for t, qs in shorts.items() if qs]
    for _ in range(TOPIC_CHANGES):
        old, new = rng.sample(titles, 2)
        q = rng.choice(shorts[new])
        threads.append(thread("topic-change", q, q["question"], opener(old, set())))
    return threads


def write(threads: list[dict[str, Any]], dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text("".join(json.dumps(t, ensure_ascii=False) + "\n" for t in threads), encoding="utf-8")
    return dest


if __name__ == "__main__":
    import sys

    squad = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/evaldata/squad")
    dest = Path(sys.argv[2] if len(sys.argv) > 2 else "docs/evalsets/threads/threads.jsonl")
    made = build(squad)
    write(made, dest)
    kinds = {k: sum(t["kind"] == k for t in made) for k in ("follow-up", "topic-change")}
    print(f"{len(made)} threads ({kinds}) -> {dest}")
