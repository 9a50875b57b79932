"""The verify stage: each sentence checked against the source it cites (entailment asked of the
model, not shared words); unsupported sentences dropped; nothing left -> the answer says so."""

import pytest

from answer_engine.components import build_pipeline
from answer_engine.events import EventType
from answer_engine.passages import Passage, SourceDoc
from answer_engine.request import AskRequest, ChatMessage
from answer_engine.stages.state import RunState
from answer_engine.stages.verify import claims_of, key_facts, restates, verify
from tests.conftest import source_doc as doc

QUESTION = "What was Maria Curie the first female recipient of?"
SUPPORTED = "Maria Skłodowska-Curie was the first female recipient of the Nobel Prize [1]."
# Shares its words with source [1], so the lexical citation filter keeps the marker; the page does not say it.
UNSUPPORTED = "Maria Curie was born in Warsaw and won the Nobel Prize twice [1]."


async def run(settings, backend, query=QUESTION):
    """The real pipeline; the verify mode is the test's (the default, facts, asks the model nothing)."""
    events = [e async for e in build_pipeline(settings, backend=backend).run(AskRequest(query=query))]
    deltas = "".join(e.text for e in events if e.type == EventType.DELTA)
    return events, deltas, next(e for e in events if e.type == EventType.CITATIONS)


async def test_a_supported_sentence_keeps_its_citation_and_shows_its_evidence(settings, fake_backend_cls):
    settings.verify.mode = "yesno"  # the answer model as the judge
    backend = fake_backend_cls([SUPPORTED], verdicts=["yes"])
    events, deltas, cites = await run(settings, backend)
    assert cites.answer_support == "supported" and cites.answer == deltas
    assert [c.n for c in cites.citations] == [1]
    assert (
        "first female recipient of the Nobel Prize" in cites.citations[0].evidence
    )  # a sentence of source [1]
    (sentence,) = cites.sentences
    assert sentence.supported is True and sentence.citations == [1] and "[1]" not in sentence.text
    # the check continues the answer's conversation (llama.cpp reuses its KV cache) and names the source
    (check,) = backend.checks
    assert "Read only source [1] above" in check and "Nobel Prize" in check
    kinds = [e.type for e in events]
    assert kinds.index(EventType.CITATIONS) > max(i for i, k in enumerate(kinds) if k == EventType.DELTA)
    assert events[-1].timings.verify_checks == 1


async def test_an_unsupported_sentence_is_dropped_and_the_rest_is_partly_supported(
    settings, fake_backend_cls
):
    settings.verify.mode = "yesno"  # the answer model as the judge
    backend = fake_backend_cls([SUPPORTED, " ", UNSUPPORTED], verdicts=["yes", "No."])
    _, deltas, cites = await run(settings, backend)
    assert UNSUPPORTED in deltas  # it streamed, its marker kept by the word-overlap filter ...
    assert cites.answer == SUPPORTED  # ... and the final text no longer says it
    assert cites.answer_support == "partly_supported"
    assert [s.supported for s in cites.sentences] == [True, False]


async def test_nothing_supported_says_the_sources_do_not_answer(settings, fake_backend_cls):
    settings.verify.mode = "yesno"  # the answer model as the judge
    backend = fake_backend_cls([UNSUPPORTED], verdicts=["no"])
    events, _, cites = await run(settings, backend)
    sources = next(e for e in events if e.type == EventType.SOURCES).sources
    assert cites.answer.startswith("The sources found do not answer this question. They cover: ")
    assert sources[0].title in cites.answer  # names what they do cover
    assert cites.citations == [] and cites.answer_support == "not_supported"


async def test_a_verdict_it_cannot_read_keeps_the_sentence_unverified(settings, fake_backend_cls):
    settings.verify.mode = "yesno"  # the answer model as the judge
    backend = fake_backend_cls([SUPPORTED], verdicts=["Perhaps"])
    _, deltas, cites = await run(settings, backend)
    assert cites.answer == deltas and cites.answer_support is None
    assert cites.sentences[0].supported is None and cites.citations[0].evidence is None


async def test_verification_can_be_turned_off(settings, fake_backend_cls):
    settings.verify.enabled = False
    backend = fake_backend_cls([UNSUPPORTED])
    _, deltas, cites = await run(settings, backend)
    assert backend.checks == [] and cites.answer == deltas and cites.answer_support is None


def test_claims_are_sentences_that_state_something():
    text = (
        "Yes. Warsaw is the capital of Poland [2][3]. I could not find the answer in the sources.\n- Rio [1]"
    )
    claims = claims_of(text)
    assert [c.text for c in claims] == ["Warsaw is the capital of Poland."]
    assert claims[0].cited == [2, 3] and text[claims[0].start : claims[0].end].endswith("[3].")


@pytest.mark.model
async def test_the_real_small_model_answers_the_checks(test_model_path):
    """SmolLM2-135M as the verifier: each check is a short continuation of the cached conversation."""
    from answer_engine.backends.llamacpp import LlamaCppBackend
    from answer_engine.config import VerifySettings

    backend = LlamaCppBackend(test_model_path, n_ctx=2048)
    backend.load()
    source = SourceDoc(
        n=1,
        url="https://x.example",
        title="Paris",
        passages=[Passage(page=0, text="Paris is the capital of France. It lies on the Seine.")],
    )
    state = RunState(request=AskRequest(query="What is the capital of France?"), sources=[source])
    state.messages = [
        ChatMessage(role="system", content="Answer from the sources."),
        ChatMessage(
            role="user",
            content="Source [1]: Paris — Paris is the capital of France. It lies "
            "on the Seine.\n\nQuestion: What is the capital of France?",
        ),
    ]
    state.answer = state.raw_answer = "Paris is the capital of France [1]. Paris lies on the Thames [1]."
    check = [
        *state.messages,
        ChatMessage(role="assistant", content=state.raw_answer),
        ChatMessage(
            role="user",
            content="Fact check. Read only source [1] above. Does it clearly state this: "
            '"Paris is the capital of France."\nAnswer with one word, yes or no.',
        ),
    ]
    evaluated: list[int] = []
    llm = backend._llm
    real_eval = llm.eval
    llm.eval = lambda tokens: (evaluated.append(len(tokens)), real_eval(tokens))[1]
    try:
        one_check_tokens = backend.count_prompt_tokens(check)
        [
            p
            async for p in backend.stream(
                state.messages, __import__("answer_engine").backends.base.GenerationParams(max_tokens=1)
            )
        ]  # the answer's prompt, now in the KV cache
        evaluated.clear()
        cites = await verify(state, backend, VerifySettings(mode="yesno", timeout_s=600))
    finally:
        llm.eval = real_eval
        backend.close()
    assert len(cites.sentences) == 2 and state.timings.verify_checks == 2
    assert all(s.supported in (True, False, None) for s in cites.sentences)
    # the checks evaluated only their tails: both together cost less than one check prompt from scratch
    assert sum(evaluated) < one_check_tokens


def test_key_facts_are_numbers_number_words_and_names():
    assert key_facts("Rory McIlroy has won the Masters tournament twice.") == {
        "rori",
        "mcilroy",
        "master",
        "twice",
    }
    assert key_facts("The first manned flight was scheduled for 1968.") == {"first", "1968"}
    assert key_facts("It is made of rock.") == set()
    assert key_facts("She was born in Warsaw.") == {"warsaw"}  # a pronoun opening a sentence is no name


QUOTE_OF_SOURCE_1 = (
    "One of the most famous people born in Warsaw was Maria Skłodowska-Curie, who achieved international "
    "recognition for her research on radioactivity and was the first female recipient of the Nobel Prize."
)


@pytest.mark.parametrize(
    "answer,quote,supported",
    [
        (SUPPORTED, QUOTE_OF_SOURCE_1, True),  # quoted, and the quote holds Maria, Curie, Nobel, Prize, first
        (UNSUPPORTED, QUOTE_OF_SOURCE_1, False),  # quoted, but "twice" is not in it
        (SUPPORTED, "NONE", False),  # the model finds no sentence that states it
        (
            SUPPORTED,
            "Paris is the capital of France and its largest city.",
            None,
        ),  # not a quote of source [1]
    ],
)
async def test_quote_mode_checks_the_quoted_sentence_for_the_claims_facts(
    settings, fake_backend_cls, answer, quote, supported
):
    settings.verify.mode = "quote"
    backend = fake_backend_cls([answer], verdicts=[quote])
    _, _, cites = await run(settings, backend)
    assert "Copy, word for word, the one sentence of source [1]" in backend.checks[0]
    assert cites.sentences[0].supported is supported
    if supported:
        assert cites.citations[0].evidence == QUOTE_OF_SOURCE_1


def test_facts_mode_needs_the_claims_numbers_and_names_in_the_closest_source_sentence():
    from answer_engine.stages.verify import Claim, check_facts

    def source(text):
        return {1: SourceDoc(n=1, url="https://x.example", title="X", passages=[Passage(page=0, text=text)])}

    crust = source("Oxygen is a chemical element. By mass, oxygen makes up almost half of the Earth's crust.")
    ok, evidence = check_facts(Claim(0, 0, "Oxygen makes up almost half of the Earth's crust.", [1]), crust)
    assert ok is True and evidence == "By mass, oxygen makes up almost half of the Earth's crust."
    assert (
        check_facts(Claim(0, 0, "Silicon makes up almost half of the Earth's crust.", [1]), crust)[0] is False
    )
    rory = source("Rory McIlroy has played the Masters many times. He has never won the tournament.")
    assert (
        check_facts(Claim(0, 0, "Rory McIlroy has won the Masters tournament twice.", [1]), rory)[0] is False
    )
    moon = source("The Apollo program first planned a manned flight in 1967.")
    assert check_facts(Claim(0, 0, "The manned flight was planned for 1968.", [1]), moon)[0] is False
    assert check_facts(Claim(0, 0, "The manned flight was planned for 1967.", [1]), moon)[0] is True
    # the question's own names are the reader's words: they need not be on the page
    tv = source("WJZ-TV in New York City began broadcasting on August 10, 1948.")
    claim = Claim(0, 0, "WJZ-TV in NYC began broadcasting on August 10, 1948.", [1])
    assert check_facts(claim, tv)[0] is False  # "NYC" is not on the page ...
    assert (
        check_facts(claim, tv, "When did WJZ-TV in NYC begin broadcasting?")[0] is True
    )  # ... but was asked
    assert (
        check_facts(Claim(0, 0, "It began on August 11, 1948.", [1]), tv, "When did WJZ-TV begin?")[0]
        is False
    )
    negated = source("Curie did not receive the prize for chemistry.")
    assert check_facts(Claim(0, 0, "Curie received the prize for chemistry.", [1]), negated)[0] is False
    assert check_facts(Claim(0, 0, "it is found in the crust.", [1]), crust)[0] is None  # no facts
    assert check_facts(Claim(0, 0, "Volcanoes erupt.", [1]), crust) == (False, None)  # nothing close at all


async def test_facts_mode_asks_the_model_nothing(settings, fake_backend_cls):
    settings.verify.mode = "facts"
    backend = fake_backend_cls([SUPPORTED, " ", UNSUPPORTED])
    events, _, cites = await run(settings, backend)
    assert backend.checks == [] and events[-1].timings.verify_checks == 0
    assert cites.answer == SUPPORTED and cites.answer_support == "partly_supported"


def test_facts_mode_reads_the_page_title_as_part_of_the_evidence():
    """A sentence about "the university" on the page titled University of Chicago states "at the
    University of Chicago" (this answer was dropped as unsupported before the title counted)."""
    from answer_engine.stages.verify import Claim, check_facts

    page = (
        "In 1929 Robert Maynard Hutchins took office. He instituted the curriculum known as the Common Core."
    )
    sources = {
        1: SourceDoc(
            n=1, url="https://x.example", title="University of Chicago", passages=[Passage(page=0, text=page)]
        )
    }
    claim = Claim(0, 0, "Hutchins instituted the Common Core at the University of Chicago.", [1])
    assert check_facts(claim, sources, "Who instituted the Common Core?")[0] is True
    other = {
        1: SourceDoc(n=1, url="https://x.example", title="Harvard", passages=[Passage(page=0, text=page)])
    }
    assert check_facts(claim, other, "Who instituted the Common Core?")[0] is False


@pytest.mark.parametrize(
    ("question", "supported"),
    [
        (
            "Who painted the Girl with a Pearl Earring?",
            False,
        ),  # every fact is on the page, the subject is not
        ("Who painted the portrait of Dorothy?", True),
    ],
)
async def test_an_answer_about_something_else_than_the_question_is_not_supported(
    settings, question, supported
):
    """verify.min_question_coverage: "Peter Chang painted ..." is on the page, so the facts check
    passes, but the page never names what was asked about; the answer is not supported and says so."""
    page = "Peter Chang painted a portrait of Dorothy in 1950. It hangs in the Taipei city museum."
    source = SourceDoc(
        n=1, url="https://art.example", title="Peter Chang", passages=[Passage(page=0, text=page)]
    )
    answer = "It was painted by Peter Chang in 1950 [1]."
    state = RunState(request=AskRequest(query=question), sources=[source], query=question)
    # the question's terms as rare as the index says: here, all alike but "paint"
    state.term_weights = {"paint": 0.5}
    state.answer = state.raw_answer = answer
    settings.verify.mode, settings.verify.min_question_coverage = "facts", 0.3
    cites = await verify(state, None, settings.verify)
    assert (cites.answer_support == "supported") is supported
    if not supported:
        assert (
            cites.answer.startswith("The sources found do not answer this question.") and not cites.citations
        )
        assert state.trace["answer_coverage"] < 0.3
    settings.verify.min_question_coverage = 0.0  # the check off: the facts alone decide
    state.trace.clear()
    assert (await verify(state, None, settings.verify)).answer_support == "supported"


@pytest.mark.parametrize(
    ("lempster_page", "supported"),
    [
        # the first page names the cited one: the bridge, so the answer is about the question
        ("East Lempster is an unincorporated community in the town of Lempster in Sullivan County.", True),
        # nothing leads from the question's subject to the cited page: still not about the question
        ("East Lempster is an unincorporated community in the town of Lempster.", False),
    ],
)
async def test_a_two_page_answer_counts_the_sentence_that_leads_to_its_page(
    settings, lempster_page, supported
):
    """verify.min_question_coverage with a bridge: "Newport [2]" is on the Sullivan County page, which
    never names East Lempster; the sentence of the other source that names Sullivan County does."""
    question = "What is the county seat of the county where East Lempster, New Hampshire is located?"
    sources = [
        SourceDoc(
            n=1,
            url="https://w.example/East_Lempster",
            title="East Lempster, New Hampshire",
            passages=[Passage(page=0, text=lempster_page)],
        ),
        SourceDoc(
            n=2,
            url="https://w.example/Sullivan_County",
            title="Sullivan County, New Hampshire (county)",
            passages=[
                Passage(
                    page=1, text="Sullivan County is a county in New Hampshire. Its county seat is Newport."
                )
            ],
        ),
    ]
    state = RunState(request=AskRequest(query=question), sources=sources, query=question)
    # "Lempster" is rare in the index; "what", "where" and "county" are common
    state.term_weights = {"what": 0.1, "where": 0.1, "counti": 0.5, "new": 0.3, "locat": 0.5, "lempster": 6.0}
    state.answer = state.raw_answer = "The county seat is Newport [2]."
    settings.verify.mode, settings.verify.min_question_coverage = "facts", 0.3
    cites = await verify(state, None, settings.verify)
    assert (cites.answer_support == "supported") is supported
    assert (state.trace["answer_coverage"] >= 0.3) is supported
    if not supported:
        assert cites.answer.startswith("The sources found do not answer this question.")


@pytest.mark.parametrize(
    ("answer", "question", "restated"),
    [
        # every word is the question's, in the question's order: nothing added
        (
            "D1NZ is a series based on oversteering technique.",
            "D1NZ is a series based on what oversteering technique?",
            True,
        ),
        ("New York City [1]", 'The director of "Big Stone Gap" is based in what New York city?', True),
        (
            "Rabat [1]",
            "In which city is the ambassador of the Rabat-Salé-Kénitra region to China based?",
            True,
        ),
        # the question's words put together anew, or a word it did not have: an answer
        ("Kansas Song [1]", "What is the fight song of the university in Lawrence, Kansas?", False),
        ("It was 6.7 [1].", "What magnitude was the 1994 Northridge earthquake?", False),
        (
            "Beijing [1]",
            "In which city is the ambassador of the Rabat-Salé-Kénitra region to China based?",
            False,
        ),
        # a yes or no, or one of the things offered to choose between
        (
            "Yes, both are from the United States [1].",
            "Are Local H and For Against both from the United States?",
            False,
        ),
        ("Lev Yilmaz [1]", "Which filmmaker was known for animation, Lev Yilmaz or Pamela B. Green?", False),
        ("", "Who?", False),
    ],
)
def test_an_answer_that_only_says_the_question_back_restates_it(answer, question, restated):
    assert restates(answer, question) is restated


async def test_an_answer_that_restates_the_question_says_the_sources_do_not_answer(settings):
    """The facts check has no fact to hold and the coverage check finds every asked term: without
    the restatement rule this answer passed as an answer (HotpotQA's D1NZ question)."""
    question = "D1NZ is a series based on what oversteering technique?"
    page = "D1NZ is a production car drifting series in New Zealand."
    source = SourceDoc(n=1, url="https://w.example/D1NZ", title="D1NZ", passages=[Passage(page=0, text=page)])
    state = RunState(request=AskRequest(query=question), sources=[source], query=question)
    state.answer = state.raw_answer = "D1NZ is a series based on oversteering technique [1]."
    settings.verify.mode = "facts"
    cites = await verify(state, None, settings.verify)
    assert cites.answer.startswith("The sources found do not answer this question.") and not cites.citations
    assert cites.answer_support == "not_supported" and state.trace["answer_restates"] is True
    # the answer the page gives is kept
    state.answer = state.raw_answer = "D1NZ is a drifting series [1]."
    cites = await verify(state, None, settings.verify)
    assert cites.answer == state.answer and state.trace["answer_restates"] is False


def _katsura_sources():
    manga = (
        'I"s is a Japanese manga series written and illustrated by Masakazu Katsura. '
        "The series follows Ichitaka Seto, a high school student."
    )
    artist = "Masakazu Katsura (born December 10, 1962) is a Japanese manga artist."
    return [
        SourceDoc(n=1, url="https://w.example/Is", title='I"s', passages=[Passage(page=0, text=manga)]),
        SourceDoc(
            n=2,
            url="https://w.example/Katsura",
            title="Masakazu Katsura",
            passages=[Passage(page=1, text=artist)],
        ),
    ]


async def test_a_fact_cited_to_the_wrong_retrieved_page_is_cited_to_the_page_that_states_it(settings):
    """HotpotQA's Ichitaka Seto question: the model put "1962 [1]" on the manga's page, which never
    says 1962; the artist's page, also retrieved, does. The answer was withheld; now the marker
    points at [2] and the evidence is its sentence."""
    question = "In what year was the creator of the manga featuring Ichitaka Seto born?"
    state = RunState(request=AskRequest(query=question), sources=_katsura_sources(), query=question)
    state.answer = state.raw_answer = "Ichitaka Seto's creator is Masakazu Katsura, who was born in 1962 [1]."
    settings.verify.mode = "facts"
    cites = await verify(state, None, settings.verify)
    assert cites.answer == "Ichitaka Seto's creator is Masakazu Katsura, who was born in 1962 [2]."
    assert cites.answer_support == "supported" and state.trace["recited"] == 1
    assert [c.n for c in cites.citations] == [2] and "1962" in cites.citations[0].evidence
    assert cites.sentences[0].citations == [2]
    # a fact no retrieved page states stays unsupported, cited where the model put it
    state.answer = state.raw_answer = "Ichitaka Seto's creator is Masakazu Katsura, who was born in 1965 [1]."
    cites = await verify(state, None, settings.verify)
    assert cites.answer_support == "not_supported" and state.trace["recited"] == 0
    # only a page the cited one names: the facts on a page the answer did not hop to state nothing
    unlinked = _katsura_sources()
    unlinked[0].passages[0].text = 'I"s is a Japanese manga series. It follows Ichitaka Seto, a student.'
    state = RunState(request=AskRequest(query=question), sources=unlinked, query=question)
    state.answer = state.raw_answer = "Ichitaka Seto's creator is Masakazu Katsura, who was born in 1962 [1]."
    cites = await verify(state, None, settings.verify)
    assert cites.answer_support == "not_supported" and state.trace["recited"] == 0


def test_reciting_keeps_the_other_sentences_and_their_spans():
    from answer_engine.stages.verify import claims_of, recite

    text = 'Katsura drew I"s [1]. He was born in 1962 [1][1]. The series ran in Weekly Shonen Jump [1].'
    claims = claims_of(text)
    claims[1].recited = 2
    edited = recite(text, claims)
    assert (
        edited == 'Katsura drew I"s [1]. He was born in 1962 [2]. The series ran in Weekly Shonen Jump [1].'
    )
    assert [edited[c.start : c.end] for c in claims] == [
        'Katsura drew I"s [1].',
        "He was born in 1962 [2].",
        "The series ran in Weekly Shonen Jump [1].",
    ]


@pytest.mark.parametrize(
    ("sentence", "claim", "denied"),
    [
        ("Curie did not receive the prize for chemistry.", "Curie received the prize for chemistry.", True),
        ("He has never won the tournament.", "Rory McIlroy has won the tournament.", True),
        ("Curie didn't receive the prize.", "Curie received the prize.", True),
        # a negation about something else the sentence says (two right SQuAD answers were withheld)
        (
            "By 1892 Thomas Edison was no longer in control of his own company, which was consolidated "
            "into the conglomerate General Electric.",
            "General Electric took over Edison Machine Works.",
            False,
        ),
        (
            "On 24 March 1879, Tesla was returned to Gospić under police guard for not having a residence "
            "permit.",
            "Tesla was returned to Gospić on 24 March 1879 under police guard.",
            False,
        ),
        ("He has never won the tournament.", "He has never won the tournament.", False),  # says it too
    ],
)
def test_a_negation_denies_the_claim_only_where_it_bears_on_the_claims_words(sentence, claim, denied):
    from answer_engine.stages.verify import negates

    assert negates(sentence, claim) is denied


@pytest.mark.parametrize(("window", "supported"), [(1, False), (2, True)])
async def test_the_question_coverage_window_reaches_the_sentence_that_names_the_subject(
    settings, window, supported
):
    """SQuAD's "When was 7 Lincoln Square completed?": "Both buildings were completed in June 1979"
    holds the fact; the building is named two sentences before it."""
    page = (
        'The facility that was built in its place is nicknamed "7 Lincoln Square" (although it is at 149 '
        "Columbus Avenue). Meanwhile, a former parking lot was transformed into a 15-story building. "
        "Both buildings were completed in June 1979."
    )
    question = "When was 7 Lincoln Square completed?"
    source = SourceDoc(
        n=1,
        url="https://w.example/ABC",
        title="American Broadcasting Company",
        passages=[Passage(page=0, text=page)],
    )
    state = RunState(request=AskRequest(query=question), sources=[source], query=question)
    state.term_weights = {"lincoln": 4.0, "squar": 3.0, "complet": 1.0}
    state.answer = state.raw_answer = "7 Lincoln Square was completed in June 1979 [1]."
    settings.verify.mode, settings.verify.min_question_coverage = "facts", 0.3
    settings.verify.question_coverage_window = window
    cites = await verify(state, None, settings.verify)
    assert (cites.answer_support == "supported") is supported


def _verdict(decided, things=("Emma Bull", "Virginia Woolf"), kind="order"):
    """The compare stage's trace (stages/compare.py) for a comparison it decided."""
    return {
        "kind": kind,
        "checks": [{"thing": t, "sources": [], "reply": ""} for t in things],
        "decided": decided,
    }


def _two_people() -> list[SourceDoc]:
    woolf = "Adeline Virginia Woolf (25 January 1882 – 28 March 1941) was an English writer."
    bull = "Emma Bull (born December 13, 1954) is an American science fiction and fantasy author."
    return [doc(1, "Emma Bull", bull), doc(2, "Virginia Woolf", woolf)]


async def test_a_comparison_stated_across_the_two_pages_it_names_is_supported_and_cites_both(settings):
    """HotpotQA's "Who was born earlier, Emma Bull or Virginia Woolf?": the model wrote both dates
    right, in one sentence, citing nothing; no sentence holds both dates, so the answer was withheld.
    Each date is on the page of the person the sentence names: the sentence is stated, by both."""
    question = "Who was born earlier, Emma Bull or Virginia Woolf?"
    state = RunState(request=AskRequest(query=question), sources=_two_people(), query=question)
    answer = "Virginia Woolf was born earlier, on January 25, 1882, compared to Emma Bull's birth on "
    answer += "December 13, 1954."
    state.answer = state.raw_answer = answer
    settings.verify.mode = "facts"
    # without the engine's own verdict (fast: nothing checked one at a time), not stated: the lexical
    # check sees both dates, not their order ("Emma Bull was born earlier" would pass as well)
    cites = await verify(state, None, settings.verify)
    assert cites.answer_support == "not_supported"
    state.trace["compare"] = _verdict("Emma Bull")  # a verdict the answer does not give: the same
    cites = await verify(state, None, settings.verify)
    assert cites.answer_support == "not_supported"
    state.trace["compare"] = _verdict("Virginia Woolf")
    state.answer = state.raw_answer = answer
    cites = await verify(state, None, settings.verify)
    assert cites.answer_support == "supported" and state.trace["comparison_agrees"]
    assert cites.answer.endswith("December 13, 1954[1][2].")
    assert {c.n for c in cites.citations} == {1, 2}
    assert "1882" in cites.sentences[0].text and cites.sentences[0].citations == [1, 2]
    # a date neither page says is not stated across them either
    state.answer = state.raw_answer = (
        "Virginia Woolf was born earlier, on January 25, 1872, "
        "compared to Emma Bull's birth on December 13, 1954."
    )
    cites = await verify(state, None, settings.verify)
    assert cites.answer_support == "not_supported"


def test_a_leading_no_is_the_answer_not_part_of_the_next_sentence():
    # the splitter keeps "No. 5" together, so the verdict went with the sentence after it, and was
    # dropped with it when that sentence failed its check
    (claim,) = claims_of("No. Cypress and Ajuga are not genera [1].")
    assert claim.text == "Cypress and Ajuga are not genera." and claim.start == 4
    assert [c.text for c in claims_of("No. 5 is the number of the shirt [1].")] == [
        "No. 5 is the number of the shirt."
    ]


async def test_only_a_comparison_is_stated_across_two_pages(settings):
    """HotpotQA: "David Weissman co-wrote "Evolution" with David Urban [2]" passed as stated across
    Weissman's page ("Evolution") and David Urban's (his name): a made-up collaboration. A question
    that compares nothing gets no claim across pages."""
    weissman = (
        "David Weissman is an American screenwriter whose credits include Evolution and The Family Man."
    )
    urban = "David Urban is an American actor."
    sources = [doc(1, "David Weissman", weissman), doc(2, "David Urban", urban)]
    question = 'What screenwriter with credits for "Evolution" co-wrote a film starring Nicolas Cage?'
    state = RunState(request=AskRequest(query=question), sources=sources, query=question)
    state.answer = state.raw_answer = 'David Weissman co-wrote "Evolution" with David Urban [2].'
    settings.verify.mode = "facts"
    cites = await verify(state, None, settings.verify)
    assert cites.answer_support == "not_supported"


async def test_a_comparison_sentence_with_nothing_to_check_is_cited_to_the_pages_it_names(settings):
    """HotpotQA pro8: "Robert Erskine Childers was from England [1]" cited Henry Roth's page (every
    name in it is the question's, so the facts check had nothing to hold it to); and "Chris Menges
    and Aram Avakian share the occupation of film director [1][2]" abstained, one page's sentence
    covering half of a question about two people."""
    roth = "Henry Roth was an American novelist and short story writer."
    childers = "Robert Erskine Childers was an English-born Irish writer, born in London."
    sources = [doc(1, "Henry Roth", roth), doc(2, "Robert Erskine Childers", childers)]
    question = "Which writer was from England, Henry Roth or Robert Erskine Childers?"
    state = RunState(request=AskRequest(query=question), sources=sources, query=question)
    state.trace["compare"] = _verdict(
        "Robert Erskine Childers", ("Henry Roth", "Robert Erskine Childers"), "which"
    )
    state.answer = state.raw_answer = "Robert Erskine Childers was from England [1]."
    settings.verify.mode = "facts"
    cites = await verify(state, None, settings.verify)
    assert cites.answer == "Robert Erskine Childers was from England [2]."
    assert cites.answer_support is None and [c.n for c in cites.citations] == [2]  # nothing to judge
    # a question that compares nothing: cited to a page that does not name its subject, it is unsupported
    other = "Where was Robert Erskine Childers from?"
    state = RunState(request=AskRequest(query=other), sources=sources, query=other)
    state.answer = state.raw_answer = "Robert Erskine Childers was from England [1]."
    cites = await verify(state, None, settings.verify)
    assert cites.answer_support == "not_supported"


async def test_a_thing_without_its_own_page_keeps_the_page_the_model_cited(settings):
    """HotpotQA pro9: "Ferocactus and Silene are both types of plant [3]" was re-cited to Ferocactus's
    page alone (no page is titled Silene; [3] is "Silene menziesii") and then abstained."""
    sources = [
        doc(1, "Ferocactus", "Ferocactus is a genus of large barrel-shaped cacti."),
        doc(2, "Silene menziesii", "Silene menziesii is a species of flowering plant in the genus Silene."),
    ]
    question = "Are Ferocactus and Silene both types of plant?"
    state = RunState(request=AskRequest(query=question), sources=sources, query=question)
    state.trace["compare"] = _verdict("Yes", ("Ferocactus", "Silene"), "both")
    state.answer = state.raw_answer = "Yes. Ferocactus and Silene are both types of plant [2]."
    settings.verify.mode = "facts"
    cites = await verify(state, None, settings.verify)
    assert cites.answer == "Yes. Ferocactus and Silene are both types of plant [1][2]."


HASTINGS = (
    "In 1066, Duke William II of Normandy conquered England killing King Harold II at the Battle of Hastings."
)


@pytest.mark.parametrize(
    ("sentence", "question", "kept"),
    [
        (
            "Harold II died at the Battle of Hastings, which took place on 14 September 1066[1].",
            "Where did Harold II die?",
            "Harold II died at the Battle of Hastings[1].",
        ),
        # a parenthesis is not an aside: "(SiO 2)" restates the (wrong) subject, and without it
        # "Silicon makes up almost half of the earth's crust" passed on the Oxygen page, which names silicon
        ("Silicon (SiO 2) makes up half of the crust [1].", "What makes up half of the crust?", None),
        # the aside answers the question: without it the sentence says nothing asked
        (
            "Its creator is Masakazu Katsura, who was born in 1965 [1].",
            "In what year was its creator born?",
            None,
        ),
        ("Harold II died at the Battle of Hastings [1].", "Where did Harold II die?", None),  # no aside
    ],
)
def test_the_main_clause_is_the_sentence_without_the_asides_the_question_does_not_ask_about(
    sentence, question, kept
):
    from answer_engine.stages.verify import main_clause

    assert main_clause(sentence, question) == kept


async def test_a_wrong_detail_in_an_aside_costs_the_aside_not_the_answer(settings):
    """SQuAD's "Where did Harold II die?": the model added the battle's date, wrong (14 September;
    it was October), and the whole sentence, the right answer, was dropped; what was left (a
    sentence on the Norman conquest) passed as the answer. Now the aside goes and the answer stays."""
    question = "Where did Harold II die?"
    source = doc(1, "Normans", HASTINGS)
    state = RunState(request=AskRequest(query=question), sources=[source], query=question)
    state.answer = state.raw_answer = (
        "Harold II died at the Battle of Hastings, which took place on 14 September 1066[1]. "
        "Duke William II of Normandy conquered England in 1066[1]."
    )
    settings.verify.mode = "facts"
    cites = await verify(state, None, settings.verify)
    kept = "Harold II died at the Battle of Hastings[1]."
    assert cites.answer == kept + " Duke William II of Normandy conquered England in 1066[1]."
    assert (
        cites.sentences[0].supported is True
        and cites.sentences[0].text == "Harold II died at the Battle of Hastings."
    )
    assert HASTINGS in cites.citations[0].evidence and state.trace["trimmed"] == 1
    # a wrong fact outside any aside still drops its sentence
    state.answer = state.raw_answer = "Harold II died at the Battle of Hastings in 1067[1]."
    cites = await verify(state, None, settings.verify)
    assert cites.answer_support == "not_supported" and state.trace["trimmed"] == 0


async def test_a_sentence_that_leans_on_a_dropped_sentence_goes_with_it(settings):
    """SQuAD's "What is the name of the organization in charge of running the clubs at the
    university?" (Recognized Student Organizations): the model's wrong first sentence was dropped,
    and the two after it ("It is made up of ...", "It is led by ...", both on the page) stood as
    the answer, "it" now pointing at nothing. Dropped with it, nothing is left: the engine abstains."""
    question = "Who funds the Recognized Student Organizations at the university?"
    page = (
        "All Recognized Student Organizations are funded by The University of Chicago Student Government. "
        "Student Government is made up of graduate and undergraduate students elected to represent members "
        "from their respective academic unit. It is led by an Executive Committee, chaired by a President."
    )
    source = doc(1, "University of Chicago", page)
    state = RunState(request=AskRequest(query=question), sources=[source], query=question)
    wrong = "The Maroon Council funds the Recognized Student Organizations at the university[1]. "
    rest = "It is made up of graduate and undergraduate students[1]. It is led by an Executive Committee[1]."
    state.answer = state.raw_answer = wrong + rest
    settings.verify.mode = "facts"
    cites = await verify(state, None, settings.verify)
    assert cites.answer.startswith("The sources found do not answer this question.")
    assert state.trace["dependent"] == 2 and [s.supported for s in cites.sentences] == [False, False, False]
    # after a sentence that stands, the same sentences stand too
    right = "The Student Government funds the Recognized Student Organizations at the university[1]. "
    state.answer = state.raw_answer = right + rest
    cites = await verify(state, None, settings.verify)
    assert cites.answer == right + rest  # kept (the first "It" sentence has no fact to check)
    assert state.trace["dependent"] == 0


def test_a_number_is_stated_in_digits_or_in_words():
    """SQuAD's "How many stages did the Saturn V end up having?": "3 stages" was withheld because
    the page says "three-stage"."""
    from answer_engine.stages.verify import Claim, check_facts

    saturn = {
        1: doc(1, "Apollo program", "The three-stage Saturn V was designed to send a CSM and LM to the Moon.")
    }
    question = "How many stages did the Saturn V end up having?"
    assert (
        check_facts(Claim(0, 0, "The Saturn V ended up having 3 stages.", [1]), saturn, question)[0] is True
    )
    assert (
        check_facts(Claim(0, 0, "The Saturn V ended up having 4 stages.", [1]), saturn, question)[0] is False
    )
    ten = {1: doc(1, "Climate", "There were 10 reconstructions that covered 1,000 years.")}
    assert check_facts(Claim(0, 0, "Ten reconstructions covered 1,000 years.", [1]), ten)[0] is True


async def test_a_name_asked_without_its_accents_is_the_pages_name(settings):
    """SQuAD's "Why did the police bring Tesla back to Gospic?": the answer, word for word the page's,
    was withheld because "Gospic", the question's rarest term, is "Gospić" on the page, and the
    question-coverage check counted it missing. (Weights as the index's rarity gives them.) Terms
    are accent-folded, so "Gospić" is the question's own name, not a fact the answer adds: the
    sentence adds no name or number to judge, and it is kept unjudged."""
    question = "Why did the police bring Tesla back to Gospic?"
    page = (
        "On 24 March 1879, Tesla was returned to Gospić under police guard for not having a residence permit."
    )
    state = RunState(
        request=AskRequest(query=question), sources=[doc(1, "Nikola Tesla", page)], query=question
    )
    state.term_weights = {"gospic": 10.0, "polic": 3.0, "bring": 2.0, "tesla": 2.0, "back": 1.5}
    state.answer = state.raw_answer = (
        "The police brought Tesla back to Gospić under police guard for not having a residence permit[1]."
    )
    settings.verify.mode = "facts"
    cites = await verify(state, None, settings.verify)
    assert cites.answer == state.answer and cites.answer_support is None
    assert state.trace["answer_coverage"] > 0.5
