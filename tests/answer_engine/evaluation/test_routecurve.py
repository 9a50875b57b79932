"""The router's curve composed from an always-local and an always-strong run."""

import json

from answer_engine.evaluation.routecurve import curve


def write(folder, rows):
    folder.mkdir()
    (folder / "questions.jsonl").write_text("\n".join(json.dumps(r) for r in rows))


def row(qid, relevance, support, outcome, ms=1000.0, ttft=500.0):
    return {
        "id": qid,
        "relevance": relevance,
        "answer_support": support,
        "outcome": outcome,
        "latency_ms": ms,
        "timings": {"ttft_ms": ttft},
    }


def test_each_policy_takes_the_strong_outcome_where_it_escalates(tmp_path):
    local = [
        row("a", 0.9, "supported", "correct"),
        row("b", 0.45, "supported", "wrong"),
        row("c", 0.8, "not_supported", "wrong"),
        # the engine abstained by itself (off topic): no model was asked, so no router can help
        row("d", 0.2, "not_supported", "abstained", ms=100.0, ttft=0.0),
    ]
    strong = [{"id": q, "outcome": "correct", "latency_ms": 3000.0} for q in "abcd"]
    write(tmp_path / "local", local)
    write(tmp_path / "strong", strong)
    points = curve(tmp_path / "local", tmp_path / "strong")
    assert points["always local"]["accuracy"] == 0.25 and points["always local"]["escalated_share"] == 0
    assert points["always strong"]["accuracy"] == 0.75 and points["always strong"]["escalated_share"] == 0.75
    after = points["unsupported -> strong"]  # c escalates after its local answer: both times count
    assert after["escalated_share"] == 0.25
    assert after["latency_ms_mean"] == round((1000 + 1000 + 4000 + 100) / 4, 1)
    both = points["relevance < 0.5 or unsupported -> strong"]  # b before generating, c after; d never
    assert both["accuracy"] == 0.75 and both["hallucination_rate"] == 0.0 and both["abstention"] == 0.25
    assert both["latency_ms_mean"] == round((1000 + 3000 + 4000 + 100) / 4, 1)
