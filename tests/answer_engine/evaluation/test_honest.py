"""The honest judge: gold data decides, not the engine's own word-overlap filter."""

from pathlib import Path

from answer_engine.citations import support
from answer_engine.evaluation import honest
from answer_engine.text import terms

SQUAD = Path(__file__).resolve().parents[3].parent / "shared" / "evaldata" / "squad" / "questions.jsonl"
GOLD_PARAGRAPH = (
    "Rory McIlroy has played the Masters many times; his best finish was fourth in 2015, and he has "
    "never won the tournament, the one major missing from his career grand slam."
)


def test_word_overlap_is_not_support_but_the_gold_judge_knows():
    """The design's own example: the sentence shares its words with the page that says the opposite."""
    claim = "Rory McIlroy has won the Masters tournament twice."
    q = {
        "question": "How many times has Rory McIlroy won the Masters?",
        "answers": ["never", "zero"],
        "title": "Rory",
        "paragraph_index": 0,
    }
    # the engine's lexical filter would keep this citation ...
    assert support(set(terms(claim)), set(terms(GOLD_PARAGRAPH))) >= 0.5
    # ... the honest judge calls the answer wrong (a hallucination), though it cites the gold page
    assert honest.outcome(claim, q["answers"]) == "wrong"
    source = {"title": "Rory", "text": GOLD_PARAGRAPH}
    assert honest.citation_right(q, source, {("Rory", 0): GOLD_PARAGRAPH})


def test_outcomes_and_abstention():
    assert honest.outcome("It was the Nobel Prize [1].", ["Nobel Prize"]) == "correct"
    assert honest.outcome("The sources found do not answer this question.", ["1745"]) == "abstained"
    assert honest.outcome("I could not find the answer in the sources.", ["1745"]) == "abstained"
    assert honest.outcome("He was born in 1750.", ["1745"]) == "wrong"
    assert honest.outcome("", ["1745"]) == "abstained"
    # an abstention that names what the sources cover does not answer, even when a title is the answer
    assert honest.outcome(
        "The sources found do not answer this question. They cover: Oxygen.", ["Oxygen"]
    ) == ("abstained")
    # an unanswerable question is answered right only by abstaining
    assert honest.outcome("It was filmed in Belfast.", ["Belfast"], answerable=False) == "wrong"
    assert honest.outcome("The sources do not say where.", [], answerable=False) == "abstained"


def test_yes_no_is_judged_by_the_leading_word_not_any_no_in_the_answer():
    # judged by containing the word "no", this "Yes" answer was counted right
    assert honest.outcome("Yes, there is no gin in either drink.", ["no"]) == "wrong"
    assert honest.outcome("No, Zurracapote does not contain gin[2].", ["no"]) == "correct"
    assert honest.outcome("Yes, both are genera[1].", ["yes"]) == "correct"
    assert honest.outcome("Both bands are from the United States, yes.", ["yes"]) == "correct"  # no lead


def test_a_choice_is_judged_by_the_option_named_first():
    q = "Who is older, Annie Morton or Terry Richardson?"
    # HotpotQA pro6 counted this right: the reference's name is in the answer, as the one not chosen
    assert honest.outcome(
        "Annie Morton is older than Terry Richardson[1].", ["Terry Richardson"], question=q
    ) == ("wrong")
    assert honest.outcome(
        "Terry Richardson is older than Annie Morton.", ["Terry Richardson"], question=q
    ) == ("correct")
    # the option, as the question offers it, stands for a reference that says more (or a variant of it)
    q2 = "Which writer was from England, Henry Roth or Robert Erskine Childers?"
    ref = ["Robert Erskine Childers DSC"]
    assert honest.outcome("Robert Erskine Childers was from England[1].", ref, question=q2) == "correct"
    assert honest.outcome("Henry Roth was from England[2].", ref, question=q2) == "wrong"
    q3 = "Which filmmaker was known for animation, Lev Yilmaz or Pamela B. Green?"
    assert (
        honest.outcome("Lev Yilmaz was known for animation[1].", ["Levni Yilmaz"], question=q3) == "correct"
    )
    # an answer naming neither option falls back to containing the reference
    assert honest.outcome("The English one was Childers.", ref, question=q2) == "wrong"


def test_citations_are_judged_by_gold_paragraph_or_supporting_pages():
    gold = {
        (
            "Warsaw",
            0,
        ): "One of the most famous people born in Warsaw was Maria Skłodowska-Curie, who achieved "
        "international recognition for her research on radioactivity."
    }
    q = {"answers": ["radioactivity"], "title": "Warsaw", "paragraph_index": 0}
    passage_from_gold = (
        "famous people born in Warsaw was Maria Skłodowska-Curie, who achieved international fame"
    )
    assert honest.citation_right(q, {"title": "Warsaw", "text": passage_from_gold}, gold)
    assert not honest.citation_right(q, {"title": "Oxygen", "text": "Oxygen is a chemical element."}, gold)
    assert honest.citation_right(
        q, {"title": "X", "text": "Her field was radioactivity."}, gold
    )  # holds the answer
    hotpot = {"answers": ["no"], "supporting_facts": [["Laleli Mosque", 0], ["Esma Sultan Mansion", 0]]}
    assert honest.citation_right(hotpot, {"title": "Laleli Mosque", "text": ""}, {})
    assert not honest.citation_right(hotpot, {"title": "Sultan Ahmed Mosque", "text": "no"}, {})


def test_summary_reports_hallucination_beside_accuracy_and_crag():
    records = [
        {"outcome": "correct", "honest_citations": 1, "honest_citations_right": 1},
        {"outcome": "wrong", "honest_citations": 2, "honest_citations_right": 1},
        {"outcome": "abstained", "honest_citations": 0, "honest_citations_right": 0},
        {"outcome": "abstained", "answerable": False, "honest_citations": 0, "honest_citations_right": 0},
    ]
    s = honest.summarize(records)
    assert s["accuracy"] == 0.25 and s["hallucination_rate"] == 0.25 and s["abstention"] == 0.5
    assert s["crag_score"] == 0.0 and s["citation_precision"] == round(2 / 3, 4)
    assert s["unanswerable"] == 1 and s["abstention_unanswerable"] == 1.0


def test_gold_paragraphs_come_from_the_corpus_beside_the_questions():
    gold = honest.gold_paragraphs(SQUAD)
    assert "first female recipient of the Nobel Prize" in gold[("Warsaw", 0)]
    assert honest.gold_paragraphs(Path("/nonexistent/questions.jsonl")) == {}


def test_a_reference_reads_the_same_as_digits_or_a_word_and_as_plural_or_singular():
    """Answers the SQuAD-style "contains" counted wrong: "3 stages" for "three", "the Keraite tribe"
    for "the Keraites"."""
    outcome = honest.outcome
    assert outcome("The Saturn V ended up having 3 stages.", ["three", "third"]) == "correct"
    assert outcome("Toghrul led the Keraite tribe[1].", ["the Keraites", "Keraites"]) == "correct"
    assert outcome("There were ten reconstructions.", ["10"]) == "correct"
    assert outcome("The Saturn V ended up having 4 stages.", ["three"]) == "wrong"
    assert outcome("He led the Kerait tribe.", ["Keraites"]) == "wrong"  # not a plural of it
    assert outcome("The glasses were made there.", ["glass"]) == "wrong"  # -es is not undone
