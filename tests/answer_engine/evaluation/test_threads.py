"""The multi-turn set's builder: the pronoun rules, and the committed file is what it builds."""

import json
from pathlib import Path

import pytest

from answer_engine.evaluation import threads

SQUAD = Path(__file__).resolve().parents[3] / ".." / "shared" / "evaldata" / "squad"
COMMITTED = Path(__file__).resolve().parents[3] / "docs" / "evalsets" / "threads" / "threads.jsonl"


@pytest.mark.parametrize(
    "question, title, expected",
    [
        ("When did Tesla die?", "Nikola_Tesla", "When did he die?"),
        ("Who hired Nikola Tesla in 1882?", "Nikola_Tesla", "Who hired him in 1882?"),
        ("What was Tesla's nationality?", "Nikola_Tesla", "What was his nationality?"),
        ("Where did the Huguenots settle?", "Huguenot", "Where did they settle?"),
        ("Warsaw is on which river?", "Warsaw", "It is on which river?"),
        ("Who selected the first Apollo program crew?", "Apollo_program", None),  # a modifier
        ("What did Tesla say about Tesla?", "Nikola_Tesla", None),  # named twice
        ("When was oxygen discovered?", "Nikola_Tesla", None),  # not named
    ],
)
def test_the_topic_becomes_a_pronoun(question, title, expected):
    assert threads.pronoun_question(question, title) == expected


@pytest.mark.skipif(not (SQUAD / "questions.jsonl").exists(), reason="LOUD SKIP: ../shared/evaldata absent")
def test_the_committed_set_is_what_the_builder_makes():
    built = threads.build(SQUAD)
    committed = [json.loads(line) for line in COMMITTED.read_text(encoding="utf-8").splitlines()]
    assert built == committed
    follow_ups = [t for t in built if t["kind"] == "follow-up"]
    assert len(follow_ups) >= 30
    for t in follow_ups:  # the name is gone from the follow-up, and the thread names it
        names = threads.TOPICS[t["title"]][0]
        assert not any(n.lower() in t["question"].lower() for n in names)
        assert [m["role"] for m in t["history"]] == ["user", "assistant"]
    for t in built:
        assert t["answers"] and t["question"].strip()
