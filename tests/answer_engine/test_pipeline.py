"""The real pipeline (index, page store, extraction, selection, citations) with a scripted backend."""

import asyncio

import pytest

from answer_engine.components import build_pipeline
from answer_engine.events import EventType
from answer_engine.pipeline import NO_SOURCES_ANSWER
from answer_engine.request import AskOptions, AskRequest, ChatMessage
from answer_engine.text import approx_tokens
from search_adapters.base import SearchError, SearchResult

QUESTION = "What was Maria Curie the first female recipient of?"


async def collect(pipeline, query=QUESTION, history=()):
    return [e async for e in pipeline.run(AskRequest(query=query, history=list(history)))]


def types(events):
    return [e.type for e in events]


async def test_event_order_and_citations_with_bad_markers(settings, fake_backend_cls):
    # The model writes a good marker split across tokens, a marker for a source that doesn't exist
    # ([9]) and one for source zero ([0]).
    backend = fake_backend_cls(
        [
            "Maria Skłodowska-Curie was the first female recipient of the Nobel Prize [",
            "1",
            "]. She was born in Warsaw [9]",
            "[0].",
        ]
    )
    events = await collect(build_pipeline(settings, backend=backend))
    kinds = types(events)
    assert kinds[0] == EventType.STATUS
    i_sources = kinds.index(EventType.SOURCES)
    assert set(kinds[:i_sources]) == {EventType.STATUS}
    assert kinds[-3:] == [EventType.CITATIONS, EventType.RELATED, EventType.DONE]
    assert EventType.ERROR not in kinds

    sources = events[i_sources].sources
    assert sources[0].url == "https://en.wikipedia.org/wiki/Warsaw"
    assert [s.n for s in sources] == list(range(1, len(sources) + 1))

    answer = "".join(e.text for e in events if e.type == EventType.DELTA)
    citations = next(e for e in events if e.type == EventType.CITATIONS)
    assert citations.answer == answer
    assert "[9]" not in answer and "[0]" not in answer
    assert answer.startswith("Maria Skłodowska-Curie was the first female recipient of the Nobel Prize [1].")
    assert [c.url for c in citations.citations] == ["https://en.wikipedia.org/wiki/Warsaw"]
    assert {c.url for c in citations.citations} <= {s.url for s in sources}

    done = events[-1].timings
    assert done.prompt_tokens > 0 and done.total_ms > 0 and done.completion_tokens > 0


async def test_prompt_numbers_sources_and_fences_them_as_data(settings, fake_backend_cls):
    backend = fake_backend_cls(["Nobel Prize."])
    history = [
        ChatMessage(role="user", content="Tell me about Warsaw"),
        ChatMessage(role="assistant", content="It is a city [1]."),
    ]
    await collect(build_pipeline(settings, backend=backend), history=history)
    messages = backend.calls[0]
    assert (
        messages[0].role == "system"
        and "only" in messages[0].content
        and "not instructions" in messages[0].content
    )
    assert [m.role for m in messages[1:]] == ["user", "assistant", "user"]
    prompt = messages[-1].content
    assert "Source [1]: Warsaw — https://en.wikipedia.org/wiki/Warsaw — " in prompt
    assert prompt.index("</sources>") < prompt.index(f"Question: {QUESTION}")
    assert backend.params[0].max_tokens == settings.generation.max_tokens
    assert backend.params[0].min_chars == 2  # a prose answer may not end at "1" or a bare "[1]"


async def test_start_warms_the_start_every_answer_prompt_shares(settings, fake_backend_cls):
    backend = fake_backend_cls(["Nobel Prize."])
    pipeline = build_pipeline(settings, backend=backend)
    await pipeline.start()
    assert len(backend.warmed) == 1
    await collect(pipeline)
    warmed, asked = backend.warmed[0], backend.calls[0]
    assert warmed[0] == asked[0]  # the same system prompt
    assert warmed[-1].content.startswith("<sources>\n") and asked[-1].content.startswith("<sources>\n")


async def test_focus_sends_the_best_passage_whole_and_only_the_best_sentences_of_the_rest(
    settings, fake_backend_cls
):
    settings.retrieval.min_relative_score = 0.0  # five passages to choose from
    settings.retrieval.context_tokens = 200
    trace = {}
    for focus in (False, True):
        settings.retrieval.focus = focus
        pipeline = build_pipeline(settings, backend=fake_backend_cls(["Nobel Prize."]))
        trace[focus] = {}
        async for _ in pipeline.run(AskRequest(query=QUESTION), trace=trace[focus]):
            pass
    whole, focused = trace[False]["chosen"], trace[True]["chosen"]
    assert focused[0].text == whole[0].text  # the best passage, whole
    assert len(focused) > len(whole)  # pieces of more passages in the same budget
    assert sum(approx_tokens(p.text) for p in focused[1:]) <= 200 - approx_tokens(focused[0].text)


async def test_without_rewriting_a_follow_up_searches_with_the_previous_question(settings, fake_backend_cls):
    settings.plan.rewrite = False  # the fallback; rewriting itself: stages/test_plan.py
    pipeline = build_pipeline(settings, backend=fake_backend_cls())
    history = [
        ChatMessage(role="user", content="Who was Nikola Tesla?"),
        ChatMessage(role="assistant", content="An inventor."),
    ]
    events = await collect(pipeline, query="Where was he born?", history=history)
    sources = next(e for e in events if e.type == EventType.SOURCES).sources
    assert sources[0].url == "https://en.wikipedia.org/wiki/Nikola_Tesla"


async def test_backend_failure_mid_stream_is_an_error_event(settings, fake_backend_cls):
    backend = fake_backend_cls(["The Nobel", " Prize", " and more"], fail_after=2)
    events = await collect(build_pipeline(settings, backend=backend))
    assert events[-1].type == EventType.ERROR
    assert events[-1].stage == "generate" and "model crashed" in events[-1].message
    assert [e.text for e in events if e.type == EventType.DELTA]  # what streamed before the failure stays


async def test_generation_timeout_is_an_error_event(settings, fake_backend_cls):
    settings.generation.timeout_s = 0.2
    backend = fake_backend_cls(["Nobel"], hang=True)
    events = await asyncio.wait_for(collect(build_pipeline(settings, backend=backend)), 5)
    assert events[-1].type == EventType.ERROR and "did not finish" in events[-1].message
    assert backend.closed == 1  # the backend's stream was closed, i.e. generation stopped


async def test_search_failure_is_an_error_event(settings, fake_backend_cls):
    class BrokenSearch:
        name = "broken"

        async def search(self, query, *, max_results, filters=None):
            raise SearchError("index unreadable")

    pipeline = build_pipeline(settings, backend=fake_backend_cls())
    pipeline.search = BrokenSearch()
    events = await collect(pipeline)
    assert types(events) == [EventType.STATUS, EventType.ERROR]
    assert events[-1].stage == "search" and "index unreadable" in events[-1].message


async def test_unfetchable_page_falls_back_to_snippet(settings, fake_backend_cls):
    class OnePhantomResult:
        name = "phantom"

        async def search(self, query, *, max_results, filters=None):
            return [
                SearchResult(
                    url="https://gone.example/curie",
                    title="Curie (cached)",
                    provider="phantom",
                    snippet="Maria Curie was the first female recipient of the Nobel Prize, in 1903.",
                )
            ]

    pipeline = build_pipeline(
        settings, backend=fake_backend_cls(["She was the first woman to win the Nobel Prize."])
    )
    pipeline.search = OnePhantomResult()
    events = await collect(pipeline)
    sources = next(e for e in events if e.type == EventType.SOURCES).sources
    assert len(sources) == 1 and sources[0].from_snippet and sources[0].url == "https://gone.example/curie"
    assert events[-1].type == EventType.DONE


async def test_no_results_answers_that_without_the_model(settings, fake_backend_cls):
    backend = fake_backend_cls()
    events = await collect(build_pipeline(settings, backend=backend), query="zzyzxqwv")
    assert "".join(e.text for e in events if e.type == EventType.DELTA) == NO_SOURCES_ANSWER
    assert backend.calls == []
    assert events[-1].type == EventType.DONE


@pytest.mark.parametrize("query,message", [("   ", "empty"), ("x" * 5000, "longer than")])
async def test_invalid_request_is_an_error_event(settings, fake_backend_cls, query, message):
    # model_construct skips the model's own validation: the pipeline checks again for callers that do
    request = AskRequest.model_construct(query=query, history=[], options=AskOptions())
    events = [e async for e in build_pipeline(settings, backend=fake_backend_cls()).run(request)]
    assert types(events) == [EventType.ERROR] and message in events[0].message


async def test_closing_the_stream_stops_the_backend(settings, fake_backend_cls):
    backend = fake_backend_cls(["word "] * 1000, delay=0.01)
    run = build_pipeline(settings, backend=backend).run(AskRequest(query=QUESTION))
    async for event in run:
        if event.type == EventType.DELTA:
            break
    await run.aclose()  # what the SSE endpoint does when the client goes away
    assert backend.closed == 1
    emitted = backend.emitted
    await asyncio.sleep(0.1)
    assert backend.emitted == emitted < 1000


async def test_source_urls_off_leaves_them_out_of_the_prompt_but_not_the_citations(
    settings, fake_backend_cls
):
    backend = fake_backend_cls(["Nobel Prize [1]."])
    settings.generation.source_urls = False
    events = await collect(build_pipeline(settings, backend=backend))
    prompt = backend.calls[0][-1].content
    assert "Source [1]: Warsaw — " in prompt and "https://" not in prompt
    sources = next(e for e in events if e.type == EventType.SOURCES)
    assert any(s.url.startswith("https://en.wikipedia.org/") for s in sources.sources)
