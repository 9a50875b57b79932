import json

import pytest

from answer_engine.evaluation import judge
from answer_engine.evaluation.extraction import page_scores, shingles
from answer_engine.evaluation.metrics import contains, exact_match, f1, normalize_answer, percentile
from answer_engine.evaluation.qa import judge_citations, summarize


def test_squad_normalization_and_scores():
    assert normalize_answer("The  Nobel Prize!") == "nobel prize"
    assert exact_match("the Nobel prize.", ["Nobel Prize"]) == 1.0
    assert f1("won the Nobel Prize in physics", ["Nobel Prize"]) == pytest.approx(
        2 * (2 / 5) * 1 / (2 / 5 + 1)
    )  # 5 tokens once "the" is gone
    assert contains("It was the Nobel Prize [1].", ["Nobel Prize"])
    assert not contains("Nobel Prizes", ["Nobel Prize"])  # whole tokens only
    assert not contains("not at all", ["no"])


def test_percentile():
    assert percentile([], 50) == 0.0
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([5], 95) == 5


def test_extraction_shingle_scores():
    truth = "one two three four five six"
    assert page_scores(truth, truth) == (1.0, 1.0)
    p, r = page_scores(truth, "one two three four")
    assert p == 1.0 and r == pytest.approx(1 / 3)
    assert sum(shingles("a b c d e").values()) == 2


def test_citation_judging():
    sources = {1: "Warsaw is the capital and largest city of Poland.", 2: "Paris is in France."}
    cites, supported, needing, cited = judge_citations(
        "Warsaw is the capital of Poland [1]. Warsaw is the capital of Poland [2]. It has many parks.",
        sources,
        0.5,
    )
    assert (cites, supported, needing, cited) == (2, 1, 3, 2)
    # an abstention needs no citation
    assert judge_citations("I could not find the answer in the sources.", sources, 0.5)[2] == 0


def test_summary_keys():
    rec = {
        "recall_at_1": True,
        "recall_at_5": True,
        "exact_match": 0.0,
        "f1": 0.5,
        "contains": True,
        "citations": 2,
        "supported_citations": 1,
        "sentences": 2,
        "cited_sentences": 1,
        "abstained": False,
        "outcome": "correct",
        "honest_citations": 2,
        "honest_citations_right": 2,
        "latency_ms": 10.0,
        "error": None,
        "timings": {"ttft_ms": 5.0},
    }
    s = summarize([rec], generate=True)
    assert {
        "questions",
        "recall_at_1",
        "recall_at_5",
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
        "latency_ms_p50",
        "latency_ms_p95",
        "ttft_ms_p50",
    } <= set(s)
    # the lexical figure (the filter's own measure) and the honest one are reported apart
    assert s["citation_precision_lexical"] == 0.5 and s["citation_coverage"] == 0.5
    assert s["citation_precision"] == 1.0 and s["accuracy"] == 1.0 and s["hallucination_rate"] == 0.0
    assert set(summarize([rec], generate=False)) == {
        "questions",
        "recall_at_1",
        "recall_at_5",
        "searches_per_question",
        "pro_share",
    }


def test_judge_calibration_on_labelled_claims(tmp_path):
    rows = []
    for i in range(40):
        good = i % 2 == 0
        rows.append(
            {
                "claim_string": f"The river Zambezi floods every March near town {i}.",
                "evidence": [
                    f"[1] https://x.example/{i}\n\n"
                    + (
                        f"The Zambezi river floods each March near town {i}."
                        if good
                        else "Recipes for bread and cake."
                    )
                ],
                "support": "Complete" if good else "Incomplete",
            }
        )
    rows.append({"claim_string": "no evidence", "evidence": [], "support": "Missing"})
    f = tmp_path / "claims.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in rows))
    out = judge.calibrate(f)
    assert out["claims"] == 40
    assert out["held_out"]["agreement"] == 1.0
