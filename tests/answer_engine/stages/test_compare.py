"""The compare stage: a comparison question checked one thing at a time and decided by rule, unit by
unit and through the real pipeline (index, reader, selector) with a scripted backend."""

import pytest

from answer_engine.components import build_pipeline
from answer_engine.request import AskOptions, AskRequest
from answer_engine.stages import compare
from tests.conftest import source_doc as doc

# HotpotQA's comparison questions (shared/evaldata/hotpotqa), each with its kind and two things
KINDS = [
    ("Are both Cypress and Ajuga genera?", "both", ["Cypress", "Ajuga"]),
    ("Do the drinks Gibson and Zurracapote both contain gin?", "both", ["Gibson", "Zurracapote"]),
    (
        "Are the Laleli Mosque and Esma Sultan Mansion located in the same neighborhood?",
        "same",
        ["Laleli Mosque", "Esma Sultan Mansion"],
    ),
    ("Who is older, Annie Morton or Terry Richardson?", "order", ["Annie Morton", "Terry Richardson"]),
    ("Who was born earlier, Emma Bull or Virginia Woolf?", "order", ["Emma Bull", "Virginia Woolf"]),
    (
        "Which writer was from England, Henry Roth or Robert Erskine Childers?",
        "which",
        ["Henry Roth", "Robert Erskine Childers"],
    ),
    ("What occupation do Chris Menges and Aram Avakian share?", "share", ["Chris Menges", "Aram Avakian"]),
]


@pytest.mark.parametrize(("question", "kind", "things"), KINDS)
def test_kinds_of_comparison(question, kind, things):
    c = compare.kind_of(question)
    assert c is not None and c.kind == kind and c.things == things


def test_what_is_not_checked_one_at_a_time():
    # amounts and a question with one thing are left to the model
    assert (
        compare.kind_of("Which act has a higher instrument to person ratio, Badly Drawn Boy or Wolf Alice?")
        is None
    )
    assert compare.kind_of("Who was Nikola Tesla?") is None


def test_sub_questions():
    older = compare.kind_of("Who is older, Annie Morton or Terry Richardson?")
    assert (
        compare.sub_question(older, "Annie Morton") == "When was Annie Morton born? Reply with the date only."
    )
    which = compare.kind_of("Which writer was from England, Henry Roth or Robert Erskine Childers?")
    assert (
        compare.sub_question(which, "Henry Roth") == "Was Henry Roth from England? Reply with Yes or No only."
    )
    share = compare.kind_of("What occupation do Chris Menges and Aram Avakian share?")
    assert compare.sub_question(share, "Aram Avakian") == (
        "What is the occupation of Aram Avakian? Reply with the answer only, in a few words."
    )
    same = compare.kind_of("Are the Laleli Mosque and Esma Sultan Mansion located in the same neighborhood?")
    assert 'for "Laleli Mosque" alone: which neighborhood?' in compare.sub_question(same, "Laleli Mosque")


@pytest.mark.parametrize(
    ("written", "key"),
    [
        ("December 13, 1954 [1]", (1954, 12, 13)),
        ("25 January 1882", (1882, 1, 25)),
        ("1838", (1838, 0, 0)),
        ("1882–1941", None),  # a range is not one date
        ("unknown", None),
        (None, None),
    ],
)
def test_dates_as_written(written, key):
    assert compare.date_key(written) == key


def _decided(question, *replies):
    c = compare.kind_of(question)
    c.checks = [
        compare.Check(t, "", [i + 1], r) for i, (t, r) in enumerate(zip(c.things, replies, strict=True))
    ]
    return compare.decide(c)


def test_decisions():
    both = "Do the drinks Gibson and Zurracapote both contain gin?"
    assert _decided(both, "Yes [1", "No") == "No"
    assert _decided(both, "Yes.", "yes") == "Yes"
    assert _decided(both, "Yes", "It is a wine drink") is None  # not a yes or a no: undecided
    same = "Are the Laleli Mosque and Esma Sultan Mansion located in the same neighborhood?"
    assert _decided(same, "Laleli [2]", "Ortaköy neighborhood") == "No"
    assert _decided(same, "Ortaköy", "Ortaköy, Istanbul") == "Yes"
    older = "Who is older, Annie Morton or Terry Richardson?"
    assert _decided(older, "October 8, 1970 [1]", "August 14, 1965 [3]") == "Terry Richardson"
    assert _decided("Who is younger, Annie Morton or Terry Richardson?", "1970", "1965") == "Annie Morton"
    assert _decided(older, "1970", "October 8, 1970") is None  # same year, a month missing
    assert _decided(older, "1970", None) is None  # a check the model did not answer
    which = "Which writer was from England, Henry Roth or Robert Erskine Childers?"
    assert _decided(which, "No. Henry", "Yes") == "Robert Erskine Childers"
    assert _decided(which, "Yes", "Yes") is None  # both: the rule cannot choose
    share = "What occupation do Chris Menges and Aram Avakian share?"
    assert (
        _decided(share, "cinematographer and film director [1]", "film editor, director") == "film director"
    )
    assert _decided(share, "cinematographer", "film editor") is None


def test_each_thing_gets_the_sources_named_for_it():
    sources = [
        doc(1, "Esma Sultan Mansion", "The Esma Sultan Mansion is a historical yalı in Ortaköy."),
        doc(2, "Laleli Mosque", "The Laleli Mosque is in Laleli, Fatih, Istanbul."),
        doc(3, "Fatih", "Fatih has many mosques, among them the Laleli Mosque."),
    ]
    assert [s.n for s in compare.sources_for("Laleli Mosque", sources)] == [2]  # its own page
    assert [s.n for s in compare.sources_for("Fatih district", sources)] == []
    assert [s.n for s in compare.sources_for("Ortaköy", sources)] == [1]  # named in the text only


async def test_pro_checks_each_thing_and_the_verdict_goes_into_the_answer_prompt(settings, fake_backend_cls):
    settings.retrieval.min_answerability = 0  # the shipped pages on both say little of their births
    question = "Who was born earlier, Nikola Tesla or Martin Luther?"
    backend = fake_backend_cls(["Martin Luther [2]."], compares=["10 July 1856 [1]", "10 November 1483"])
    trace = {}
    request = AskRequest(query=question, options=AskOptions(search_type="pro"))
    events = [e async for e in build_pipeline(settings, backend=backend).run(request, trace=trace)]
    asked = backend.compare_prompts
    assert [p.rsplit("Question: ", 1)[1] for p in asked] == [
        "When was Nikola Tesla born? Reply with the date only.",
        "When was Martin Luther born? Reply with the date only.",
    ]
    assert trace["compare"]["decided"] == "Martin Luther" and trace["compare"]["kind"] == "order"
    # each check saw only its own thing's page
    assert "Source [" in asked[0] and "Martin Luther" not in asked[0].split("Question:")[0]
    answer_prompt = backend.calls[0][-1].content
    assert answer_prompt.endswith("So the answer is: Martin Luther. Start your answer with it.")
    assert "Start your answer with it" in backend.params[0].stop  # the model's copy of it ends the answer
    assert "- Nikola Tesla: 10 July 1856 [1]" in answer_prompt
    statuses = [e.message for e in events if e.type == "status"]
    assert "Checking Nikola Tesla and Martin Luther one at a time" in statuses
    assert events[-1].timings.plan_calls == 2


async def test_undecided_checks_leave_the_prompt_alone_and_compare_can_be_off(settings, fake_backend_cls):
    settings.retrieval.min_answerability = 0
    question = "Who was born earlier, Nikola Tesla or Martin Luther?"
    backend = fake_backend_cls(["Martin Luther [2]."], compares=["I do not know", "1483"])
    request = AskRequest(query=question, options=AskOptions(search_type="pro"))
    [e async for e in build_pipeline(settings, backend=backend).run(request)]
    assert "Checked in the sources" not in backend.calls[0][-1].content
    settings.plan.compare = False
    backend = fake_backend_cls(["Martin Luther [2]."], compares=["1856", "1483"])
    [e async for e in build_pipeline(settings, backend=backend).run(request)]
    assert backend.compare_prompts == [] and "Checked in the sources" not in backend.calls[0][-1].content


def test_an_answer_agrees_with_the_verdict_when_it_gives_it():
    def checked(kind, decided, things):
        return {"kind": kind, "decided": decided, "checks": [{"thing": t} for t in things]}

    both = checked("both", "No", ["Gibson", "Zurracapote"])
    assert compare.agrees("No. Gibson contains gin, while Zurracapote does not [2].", both)
    assert not compare.agrees("Yes, both contain gin [1].", both)
    assert not compare.agrees("Nobody knows [1].", both)  # "no" as a word, not a prefix of one
    older = checked("order", "Terry Richardson", ["Annie Morton", "Terry Richardson"])
    assert compare.agrees("Terry Richardson is older than Annie Morton [1].", older)
    assert not compare.agrees("Annie Morton is older than Terry Richardson [1].", older)
    share = checked("share", "film director", ["Chris Menges", "Aram Avakian"])
    assert compare.agrees("Both worked as a film director [1][2].", share)
    assert not compare.agrees("Both are cinematographers.", share)
    assert not compare.agrees("No.", None) and not compare.agrees("No.", checked("both", None, []))
