"""The route stage with a router backend: the local model answers; the strong one takes the answers
the verifier finds unsupported (the local text held back meanwhile) and the questions retrieval is
unsure of; a failing strong backend costs the escalation, never the answer. Real pipeline, two
scripted backends."""

import pytest

from answer_engine.backends import create_backend
from answer_engine.backends.base import BackendError
from answer_engine.backends.router import RouterBackend
from answer_engine.components import build_pipeline
from answer_engine.config import load_settings
from answer_engine.events import EventType
from answer_engine.request import AskRequest
from answer_engine.stages import route
from answer_engine.stages.state import RunState

QUESTION = "What was Maria Curie the first female recipient of?"
SUPPORTED = "Maria Skłodowska-Curie was the first female recipient of the Nobel Prize [1]."
UNSUPPORTED = "Maria Curie was the first female recipient of the Nobel Prize in 1999 [1]."  # no 1999 there


async def ask(settings, backend):
    events = [e async for e in build_pipeline(settings, backend=backend).run(AskRequest(query=QUESTION))]
    deltas = "".join(e.text for e in events if e.type == EventType.DELTA)
    cites = next(e for e in events if e.type == EventType.CITATIONS)
    done = next(e for e in events if e.type == EventType.DONE)
    routes = [e.message for e in events if e.type == EventType.STATUS and e.stage == "route"]
    return deltas, cites, done, routes


async def test_a_supported_local_answer_stays_local(settings, fake_backend_cls):
    local, strong = fake_backend_cls([SUPPORTED]), fake_backend_cls(["never"])
    deltas, cites, done, routes = await ask(settings, RouterBackend(local, strong))
    assert deltas == SUPPORTED and cites.answer_support == "supported"
    assert done.route == "local" and done.route_reason is None and routes == []
    assert strong.calls == []


async def test_an_unsupported_local_answer_goes_to_the_strong_model(settings, fake_backend_cls):
    local, strong = fake_backend_cls([UNSUPPORTED]), fake_backend_cls([SUPPORTED])
    deltas, cites, done, routes = await ask(settings, RouterBackend(local, strong))
    assert deltas == SUPPORTED  # the local answer was held back, never streamed
    assert cites.answer == SUPPORTED and cites.answer_support == "supported"
    assert done.route == "strong" and "not_supported" in done.route_reason
    assert routes and "stronger model" in routes[0]
    assert len(local.calls) == 1 and len(strong.calls) == 1
    assert strong.calls[0][-1].content == local.calls[0][-1].content  # same sources, same question


async def test_a_failing_strong_model_falls_back_to_the_local_answer(settings, fake_backend_cls):
    local, strong = fake_backend_cls([UNSUPPORTED]), fake_backend_cls(["x"], fail_after=0)
    deltas, cites, done, routes = await ask(settings, RouterBackend(local, strong))
    assert deltas == UNSUPPORTED and cites.answer_support == "not_supported"  # the local answer, as verified
    assert done.route == "local" and "stronger model failed" in done.route_reason
    assert "giving the local model's answer" in routes[-1]
    assert done.timings.prompt_tokens > 0


async def test_escalation_after_verification_can_be_turned_off(settings, fake_backend_cls):
    settings.router.escalate_unsupported = False
    local, strong = fake_backend_cls([UNSUPPORTED]), fake_backend_cls([SUPPORTED])
    deltas, cites, done, _ = await ask(settings, RouterBackend(local, strong))
    assert deltas == UNSUPPORTED and done.route == "local" and strong.calls == []


def test_low_retrieval_confidence_routes_before_generating(settings):
    settings.router.escalate_below_relevance = 0.5
    state = RunState(request=AskRequest(query=QUESTION))
    state.relevance = 0.41
    assert "0.41" in route.before(state, settings)
    state.relevance = 0.62
    assert route.before(state, settings) is None
    settings.router.escalate_below_relevance = 0.0
    state.relevance = 0.1
    assert route.before(state, settings) is None


async def test_without_a_router_nothing_changes(settings, fake_backend_cls):
    deltas, _, done, routes = await ask(settings, fake_backend_cls([UNSUPPORTED]))
    assert deltas == UNSUPPORTED and done.route is None and routes == []


def test_create_backend_builds_both_sides(tmp_path, test_model_path):
    settings = load_settings(
        data_dir=tmp_path,
        generation={"backend": "router", "model": str(test_model_path)},
        router={"strong": {"backend": "extractive"}},
    )
    backend = create_backend(settings)
    assert isinstance(backend, RouterBackend)
    assert (
        backend.info()["local"]["backend"] == "llamacpp"
        and backend.info()["strong"]["backend"] == "extractive"
    )
    with pytest.raises(BackendError, match="router.strong"):
        create_backend(load_settings(data_dir=tmp_path, generation={"backend": "router"}))
    with pytest.raises(BackendError, match="of its own"):
        create_backend(
            load_settings(
                data_dir=tmp_path, generation={"backend": "router"}, router={"strong": {"model": "x"}}
            )
        )


async def test_a_strong_backend_that_cannot_start_is_reported(fake_backend_cls):
    class Down(fake_backend_cls):
        async def start(self):
            raise BackendError("model server at http://127.0.0.1:9 is not reachable")

    router = RouterBackend(fake_backend_cls(), Down())
    await router.start()  # the local model still serves
    assert "not reachable" in router.info()["strong_error"]
