"""The plan stage: the follow-up rewrite, auto's signal, and pro's searches within their budget,
through the real pipeline (index, reader, selector) with a scripted backend, and the rewrite
through the real small model."""

import pytest

from answer_engine.backends.extractive import ExtractiveBackend
from answer_engine.backends.llamacpp import LlamaCppBackend
from answer_engine.components import build_pipeline
from answer_engine.config import PlanSettings
from answer_engine.request import AskOptions, AskRequest, ChatMessage
from answer_engine.stages import plan

TESLA_THREAD = [
    ChatMessage(role="user", content="Who was Nikola Tesla?"),
    ChatMessage(role="assistant", content="Nikola Tesla was a Serbian-American inventor [1]."),
]
HE = "Where was he born?"
CURIE = "What was Maria Curie the first female recipient of?"


async def run(pipeline, query, *, history=(), search_type=None):
    trace = {}
    request = AskRequest(query=query, history=list(history), options=AskOptions(search_type=search_type))
    events = [e async for e in pipeline.run(request, trace=trace)]
    return events, trace


def of_type(events, kind):
    return [e for e in events if e.type == kind]


@pytest.mark.parametrize(
    "reply, query",
    [
        ("Search query: Nikola Tesla birthplace", "Nikola Tesla birthplace"),
        ('"Nikola Tesla birthplace."', "Nikola Tesla birthplace"),
        ("- Nikola Tesla birthplace\nand more", "Nikola Tesla birthplace"),
        ("Next search: Sullivan County seat", "Sullivan County seat"),
        ("1. Sullivan County seat", "Sullivan County seat"),
        ("1998 FIFA World Cup final venue", "1998 FIFA World Cup final venue"),  # a year is not a bullet
    ],
)
def test_clean_query_keeps_only_the_query(reply, query):
    assert plan.clean_query(reply) == query


@pytest.mark.parametrize(
    "question",
    [
        "Which writer was from England, Henry Roth or Robert Erskine Childers?",
        "What is the county seat of the county where East Lempster, New Hampshire is located?",
        'What screenwriter with credits for "Evolution" co-wrote a film starring Nicolas Cage and Téa Leoni?',
    ],
)
def test_auto_takes_pro_for_multi_hop_questions(question):
    assert plan.needs_steps(question)
    assert plan.resolve("auto", question, can_plan=True) == "pro"
    assert plan.resolve("auto", question, can_plan=False) == "fast"  # no model to plan with
    assert plan.resolve("fast", question, can_plan=True) == "fast"


@pytest.mark.parametrize(
    "question", [CURIE, "When did Beyonce start becoming popular?", "What is the capital of Poland?"]
)
def test_auto_takes_fast_for_simple_questions(question):
    assert not plan.needs_steps(question)
    assert plan.resolve("auto", question, can_plan=True) == "fast"
    assert plan.resolve("pro", question, can_plan=True) == "pro"


# ----------------------------------------------------------------------------- rewrite


async def test_a_question_without_a_thread_is_searched_as_asked_without_a_model_call(
    settings, fake_backend_cls
):
    backend = fake_backend_cls(["Nobel Prize [1]."])
    events, _ = await run(build_pipeline(settings, backend=backend), CURIE, search_type="fast")
    assert backend.plan_prompts == []
    done = events[-1]
    assert done.queries == [CURIE] and done.search_type == "fast" and done.timings.plan_calls == 0


async def test_a_follow_up_is_rewritten_from_the_thread(settings, fake_backend_cls):
    backend = fake_backend_cls(["Smiljan [1]."], plans=["Nikola Tesla birthplace"])
    events, _ = await run(build_pipeline(settings, backend=backend), HE, history=TESLA_THREAD)
    prompt = backend.plan_prompts[0][-1].content
    assert "User: Who was Nikola Tesla?" in prompt and "Assistant: Nikola Tesla was" in prompt
    assert "Last question: Where was he born?" in prompt
    rewritten = [e.message for e in of_type(events, "status") if e.stage == "plan"]
    assert rewritten == ["Searching for the question as: Nikola Tesla birthplace"]
    assert of_type(events, "sources")[0].sources[0].url == "https://en.wikipedia.org/wiki/Nikola_Tesla"
    done = events[-1]
    assert done.queries == ["Nikola Tesla birthplace"]
    assert done.timings.plan_calls == 1 and done.timings.plan_prompt_tokens > 0
    # the answer itself still sees the thread and the user's own words
    answer_prompt = backend.calls[0]
    assert [m.role for m in answer_prompt[1:]] == ["user", "assistant", "user"]
    assert answer_prompt[-1].content.endswith("Question: Where was he born?")


async def test_a_thread_that_changes_topic_is_not_glued_to_the_old_one(settings, fake_backend_cls):
    question = "What is the capital of Poland?"
    rewriting = fake_backend_cls(["Warsaw [1]."])  # the scripted model repeats a standalone question
    events, _ = await run(build_pipeline(settings, backend=rewriting), question, history=TESLA_THREAD)
    assert events[-1].queries == [question]
    assert of_type(events, "sources")[0].sources[0].url == "https://en.wikipedia.org/wiki/Warsaw"
    # today's gluing, kept as the fallback (and the measurement's baseline), searches the old topic too
    settings.plan.rewrite = False
    gluing = fake_backend_cls(["Warsaw [1]."])
    events, _ = await run(build_pipeline(settings, backend=gluing), question, history=TESLA_THREAD)
    assert events[-1].queries == [f"Who was Nikola Tesla? {question}"] and gluing.plan_prompts == []


@pytest.mark.parametrize("reply", ["", "   ", "x" * 400])
async def test_an_unusable_rewrite_falls_back_to_gluing(settings, fake_backend_cls, reply):
    backend = fake_backend_cls(["Smiljan [1]."], plans=[reply])
    events, _ = await run(build_pipeline(settings, backend=backend), HE, history=TESLA_THREAD)
    assert events[-1].queries == ["Who was Nikola Tesla? Where was he born?"]


async def test_a_failing_model_costs_the_rewrite_not_the_answer(settings, fake_backend_cls):
    settings.plan.step_timeout_s = 0.2
    backend = fake_backend_cls(["Smiljan [1]."], plan_delay=5)
    events, _ = await run(build_pipeline(settings, backend=backend), HE, history=TESLA_THREAD)
    assert events[-1].type == "done"
    assert events[-1].queries == ["Who was Nikola Tesla? Where was he born?"]
    assert of_type(events, "citations")[0].answer.startswith("Smiljan")


async def test_the_real_small_model_rewrites_a_follow_up(test_model_path):
    backend = LlamaCppBackend(test_model_path, n_ctx=2048)
    await backend.start()
    try:
        use = plan.PlanUse()
        request = AskRequest(query="Where was he born?", history=TESLA_THREAD)
        query, by_model = await plan.rewrite(request, backend, PlanSettings(step_timeout_s=600), use)
    finally:
        backend.close()
    assert by_model and "Tesla" in query and "\n" not in query
    assert use.calls == 1 and use.prompt_tokens > 50 and 0 < use.completion_tokens <= plan.REWRITE_MAX_TOKENS


# ----------------------------------------------------------------------------- pro


async def test_pro_searches_for_the_missing_fact_and_merges_the_pages(settings, fake_backend_cls):
    # the first search reads Warsaw (Curie's city) and five others, none of them about the Rhine
    backend = fake_backend_cls(["She won the Nobel Prize [1]."], plans=["Rhine river"])
    events, trace = await run(build_pipeline(settings, backend=backend), CURIE, search_type="pro")
    done = events[-1]
    assert done.search_type == "pro" and done.queries == [CURIE, "Rhine river"] and done.search_queries == 2
    searching = [e.message for e in of_type(events, "status") if e.stage == "search"]
    assert searching == [f"Searching for: {CURIE}", "Searching for: Rhine river"]
    read_more = [e.message for e in of_type(events, "status") if e.message.startswith("Read ")]
    assert len(read_more) == 1 and "Rhine" in read_more[0]
    step = backend.plan_prompts[0][-1].content
    assert f"Question: {CURIE}" in step and "Found:\n- Warsaw: " in step  # what the first search found
    assert "Rhine" not in step
    urls = [s.url for s in of_type(events, "sources")[0].sources]
    assert urls[0] == "https://en.wikipedia.org/wiki/Warsaw"  # the question's best passage first
    assert "https://en.wikipedia.org/wiki/Rhine" in urls  # and the later search's page
    assert len(urls) == len(set(urls))  # one numbering: no page twice
    # the model was asked again after the second search, and said DONE
    assert trace["plan_stop"] == "enough" and done.timings.plan_calls == 2
    assert "Rhine" in backend.plan_prompts[1][-1].content


async def test_pro_stops_when_the_model_says_the_pages_are_enough(settings, fake_backend_cls):
    assert settings.plan.min_searches == 1  # the default: a DONE is taken at once
    backend = fake_backend_cls(["Nobel Prize [1]."], plans=["DONE"])
    events, trace = await run(build_pipeline(settings, backend=backend), CURIE, search_type="pro")
    assert events[-1].queries == [CURIE] and trace["plan_stop"] == "enough"
    assert any(e.message == "The pages found are enough" for e in of_type(events, "status"))
    assert len(backend.plan_prompts) == 1 and "plan_more" not in trace


async def test_pro_asks_again_when_the_model_stops_before_its_fewest_searches(settings, fake_backend_cls):
    # two searches at least: a DONE after the first is asked again, told to search
    settings.plan.min_searches = 2
    backend = fake_backend_cls(["Nobel Prize [1]."], plans=["DONE", "Rhine river", "DONE"])
    events, trace = await run(build_pipeline(settings, backend=backend), CURIE, search_type="pro")
    done = events[-1]
    assert done.queries == [CURIE, "Rhine river"] and trace["plan_stop"] == "enough"
    assert trace["plan_more"] == 1 and done.timings.plan_calls == 3
    first, again, after = (p[0].content for p in backend.plan_prompts)
    assert first == plan.STEP_SYSTEM and again == plan.STEP_MORE_SYSTEM and after == plan.STEP_SYSTEM
    assert "DONE" not in again and "One search is not enough" in again
    # a repeated search before the fewest is asked again too; a second refusal ends the steps
    backend = fake_backend_cls(["Nobel Prize [1]."], plans=[CURIE.lower(), "DONE"])
    events, trace = await run(build_pipeline(settings, backend=backend), CURIE, search_type="pro")
    assert events[-1].queries == [CURIE] and trace["plan_stop"] == "enough" and trace["plan_more"] == 1
    assert len(backend.plan_prompts) == 2


async def test_a_bare_number_the_pages_do_not_hold_is_a_guess_and_asked_again(settings, fake_backend_cls):
    # the model "searched" a year: it answered from memory; even with min_searches 1 it is asked
    # again, told to search, and its query is taken
    assert settings.plan.min_searches == 1
    backend = fake_backend_cls(["Nobel Prize [1]."], plans=["1962", "Rhine river", "DONE"])
    events, trace = await run(build_pipeline(settings, backend=backend), CURIE, search_type="pro")
    assert events[-1].queries == [CURIE, "Rhine river"] and trace["plan_more"] == 1
    again = backend.plan_prompts[1]
    assert again[0].content == plan.STEP_MORE_SYSTEM
    # told, in the same conversation, that its year was a guess; the worked example left out (the
    # model copied it when told to search)
    assert [m.content for m in again[-2:]] == ["1962", plan.GUESS_FOLLOW_UP]
    assert plan.STEP_EXAMPLE_REPLY not in [m.content for m in again]
    # guessed twice: the steps end there, named for it, and the answer still comes
    backend = fake_backend_cls(["Nobel Prize [1]."], plans=["1962", "1963."])
    events, trace = await run(build_pipeline(settings, backend=backend), CURIE, search_type="pro")
    assert events[-1].queries == [CURIE] and trace["plan_stop"] == "guess"
    assert events[-1].type == "done" and of_type(events, "citations")


async def test_a_bare_number_the_pages_hold_is_taken_as_done(settings, fake_backend_cls):
    found = [("Marie Curie", "She won the Nobel Prize in Physics in 1903, the first woman to win one.")]
    for reply, why in [("1903", "enough"), ("1904", "guess")]:
        backend = fake_backend_cls(plans=[reply, reply])
        use = plan.PlanUse()
        query, stop = await plan.next_search(
            "When did Marie Curie win her first Nobel Prize?",
            ["Marie Curie Nobel"],
            found,
            backend,
            settings.plan,
            use,
            timeout_s=5,
        )
        assert (query, stop) == (None, why)
        assert len(backend.plan_prompts) == (1 if why == "enough" else 2)


@pytest.mark.parametrize(
    "query, names",
    [
        ("1962", False),
        ("3, 4", False),
        ("Sullivan County", True),
        ("1962 FIFA World Cup", True),
        ("the", False),
    ],
)
def test_a_search_query_must_name_something(query, names):
    assert plan.names_anything(query) is names


async def test_pro_stops_at_the_search_budget(settings, fake_backend_cls):
    settings.plan.max_searches = 2
    backend = fake_backend_cls(["Nobel Prize [1]."], plans=["Rhine river", "Nikola Tesla", "Genghis Khan"])
    events, trace = await run(build_pipeline(settings, backend=backend), CURIE, search_type="pro")
    assert events[-1].queries == [CURIE, "Rhine river"] and trace["plan_stop"] == "budget: searches"
    assert len(backend.plan_prompts) == 1


async def test_pro_stops_at_the_token_budget(settings, fake_backend_cls):
    settings.plan.max_tokens = 1  # spent by the first step's prompt
    backend = fake_backend_cls(["Nobel Prize [1]."], plans=["Rhine river", "Nikola Tesla"])
    events, trace = await run(build_pipeline(settings, backend=backend), CURIE, search_type="pro")
    assert events[-1].queries == [CURIE, "Rhine river"] and trace["plan_stop"] == "budget: tokens"


async def test_pro_stops_at_its_deadline_and_still_answers(settings, fake_backend_cls):
    settings.plan.deadline_s = 0.3
    backend = fake_backend_cls(["Nobel Prize [1]."], plans=["Warsaw"], plan_delay=3)
    events, trace = await run(build_pipeline(settings, backend=backend), CURIE, search_type="pro")
    done = events[-1]
    assert done.type == "done" and done.queries == [CURIE] and trace["plan_stop"] == "no answer"
    assert done.timings.plan_ms < 2000  # the step was cut at the deadline, not waited for
    assert of_type(events, "citations")[0].answer.startswith("Nobel Prize")


async def test_pro_does_not_repeat_a_search_but_takes_a_part_of_one(settings, fake_backend_cls):
    backend = fake_backend_cls(
        ["Nobel Prize [1]."], plans=["what was Maria Curie the first female recipient of"]
    )
    events, trace = await run(build_pipeline(settings, backend=backend), CURIE, search_type="pro")
    assert events[-1].queries == [CURIE] and trace["plan_stop"] == "repeat"
    # a part of the question is a search of its own (the film's director, not the whole question)
    backend = fake_backend_cls(["Nobel Prize [1]."], plans=["Maria Curie recipient"])
    events, trace = await run(build_pipeline(settings, backend=backend), CURIE, search_type="pro")
    assert events[-1].queries == [CURIE, "Maria Curie recipient"]


async def test_pro_without_a_model_that_can_plan_searches_once(settings):
    events, _ = await run(build_pipeline(settings, backend=ExtractiveBackend()), CURIE, search_type="pro")
    assert events[-1].search_type == "fast" and events[-1].queries == [CURIE]


@pytest.mark.parametrize(
    "question, things",
    [
        ("Who is older, Annie Morton or Terry Richardson?", ["Annie Morton", "Terry Richardson"]),
        ("Are Local H and For Against both from the United States?", ["Local H", "For Against"]),
        ("What occupation do Chris Menges and Aram Avakian share?", ["Chris Menges", "Aram Avakian"]),
        ("Are both Cypress and Ajuga genera?", ["Cypress", "Ajuga"]),
        (CURIE, []),
        ("What is the difference between a rock and a mineral?", []),
    ],
)
def test_a_comparison_names_the_two_things_it_compares(question, things):
    assert plan.compared(question) == things


async def test_pro_searches_each_compared_thing_without_asking_the_model(settings, fake_backend_cls):
    question = "Who was born earlier, Nikola Tesla or Martin Luther?"
    backend = fake_backend_cls(["Martin Luther [1]."])
    events, trace = await run(build_pipeline(settings, backend=backend), question)  # auto
    done = events[-1]
    assert done.search_type == "pro" and done.queries == [question, "Nikola Tesla", "Martin Luther"]
    assert backend.plan_prompts == [] and trace["plan_stop"] == "compared"
    # the two things then checked one at a time (compare): two short calls, counted as the plan's
    assert done.timings.plan_calls == 2 and len(backend.compare_prompts) == 2
    urls = {s.url for s in of_type(events, "sources")[0].sources}
    wiki = "https://en.wikipedia.org/wiki/"
    assert {f"{wiki}Nikola_Tesla", f"{wiki}Martin_Luther"} <= urls


def test_a_search_naming_the_worked_example_is_a_copy():
    found = [("Kirton End", "Kirton End is a hamlet in the civil parish of Kirton in Lincolnshire, England.")]
    question = (
        "According to the 2001 census, what was the population of the city in which Kirton End is located?"
    )
    assert plan.copies_the_example("Suffolk County New Hampshire", question, found)
    assert not plan.copies_the_example("Kirton Lincolnshire population 2001", question, found)
    # the example's names are fine where the question or the pages put them together
    assert not plan.copies_the_example(
        "Sullivan County New Hampshire",
        "Where is Lempster?",
        [("Lempster", "Lempster is a town in Sullivan County, New Hampshire.")],
    )


async def test_a_copied_example_is_asked_again_and_a_second_copy_ends_the_steps(settings, fake_backend_cls):
    question = (
        "According to the 2001 census, what was the population of the city in which Kirton End is located?"
    )
    found = [("Kirton End", "Kirton End is a hamlet in the civil parish of Kirton in Lincolnshire, England.")]
    for replies, want in [
        (["Suffolk County New Hampshire", "Boston Lincolnshire"], ("Boston Lincolnshire", "")),
        (["Suffolk County New Hampshire", "Sullivan County New Hampshire city"], (None, "copied")),
    ]:
        backend = fake_backend_cls(plans=replies)
        use = plan.PlanUse()
        got = await plan.next_search(
            question, ["Kirton End"], found, backend, settings.plan, use, timeout_s=5
        )
        assert got == want and use.more == 1
        assert backend.plan_prompts[1][0].content == plan.STEP_MORE_SYSTEM


async def test_a_refusal_is_no_search(settings, fake_backend_cls):
    backend = fake_backend_cls(plans=["1970", "I'm sorry, but I can't assist with that"])
    got = await plan.next_search(
        "Who wrote I's, and when were they born?",
        ["I's manga"],
        [],
        backend,
        settings.plan,
        plan.PlanUse(),
        timeout_s=5,
    )
    assert got == (None, "no answer")
