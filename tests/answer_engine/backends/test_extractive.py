from answer_engine.backends.base import Backend, GenerationParams
from answer_engine.backends.extractive import NOT_FOUND, ExtractiveBackend
from answer_engine.components import build_pipeline
from answer_engine.events import EventType
from answer_engine.request import AskRequest


async def test_quotes_the_best_sentence_with_its_source(settings):
    settings.generation.backend = "extractive"
    pipeline = build_pipeline(settings)
    assert isinstance(pipeline.backend, Backend)
    events = [
        e async for e in pipeline.run(AskRequest(query="What year was Casimir Pulaski born in Warsaw?"))
    ]
    cit = next(e for e in events if e.type == EventType.CITATIONS)
    assert "1745" in cit.answer and cit.citations[0].url == "https://en.wikipedia.org/wiki/Warsaw"
    assert events[-1].type == EventType.DONE


async def test_no_matching_sentence_says_so():
    b = ExtractiveBackend()
    from answer_engine.backends.base import ChatMessage

    msgs = [
        ChatMessage(
            role="user",
            content="<sources>\nSource [1]: T — https://x.example — Cats purr.\n</sources>\n\nQuestion: zebra stripes?",  # noqa: E501
        )
    ]
    assert "".join([p async for p in b.stream(msgs, GenerationParams(max_tokens=50))]) == NOT_FOUND


async def test_its_quotes_are_not_put_to_the_verifier(settings):
    from answer_engine.backends.extractive import ExtractiveBackend
    from answer_engine.components import build_pipeline

    events = [
        e
        async for e in build_pipeline(settings, backend=ExtractiveBackend()).run(
            AskRequest(query="What was Maria Curie the first female recipient of?")
        )
    ]
    cites = next(e for e in events if e.type == "citations")
    assert cites.answer_support is None and events[-1].timings.verify_checks == 0
    assert "verify" not in [e.stage for e in events if e.type == "status"]
