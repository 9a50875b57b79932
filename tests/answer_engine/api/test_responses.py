"""POST /v1/responses through the official openai client's ``responses.create``, stream and
non-stream, against a real uvicorn on 127.0.0.1 serving the real pipeline with a scripted backend."""

import httpx
import openai
import pytest

from answer_engine.api.app import create_app
from answer_engine.components import build_pipeline

ANSWER = ["Maria Skłodowska-Curie was the first female recipient", " of the Nobel Prize [", "1", "]."]
QUESTION = "What was Maria Curie the first female recipient of?"
FINAL = "Maria Skłodowska-Curie was the first female recipient of the Nobel Prize [1]."


@pytest.fixture
def backend(fake_backend_cls):
    return fake_backend_cls(ANSWER)


@pytest.fixture
def base_url(settings, backend, serve):
    return serve(create_app(settings, pipeline=build_pipeline(settings, backend=backend)))


@pytest.fixture
def client(base_url):
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key="x", max_retries=0, timeout=30)


def test_non_stream(client, backend):
    r = client.responses.create(
        model="answer-engine", input=QUESTION, instructions="Be brief.", max_output_tokens=64
    )
    assert r.object == "response" and r.id.startswith("resp_") and r.status == "completed"
    assert r.output_text == FINAL
    (message,) = r.output
    assert message.type == "message" and message.role == "assistant" and message.status == "completed"
    (part,) = message.content
    (note,) = part.annotations
    # a url_citation spanning the [1] marker, the shape OpenAI's web-search tool gives
    assert note.type == "url_citation" and note.url == "https://en.wikipedia.org/wiki/Warsaw"
    assert FINAL[note.start_index : note.end_index] == "[1]" and note.title == "Warsaw"
    extra = r.model_extra
    assert extra["citations"][0] == note.url
    assert extra["search_results"][0]["url"] == note.url
    assert extra["answer_support"] == "supported"
    assert r.usage.input_tokens > 0 and r.usage.output_tokens > 0
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens
    # instructions reach the system prompt; max_output_tokens the backend
    assert "Be brief." in backend.calls[0][0].content
    assert backend.params[0].max_tokens == 64


def test_stream_events_in_openai_order(client):
    events = list(client.responses.create(model="answer-engine", input=QUESTION, stream=True))
    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-5:] == [
        "response.output_text.annotation.added",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == FINAL
    done = events[-1].response
    assert done.status == "completed" and done.output_text == FINAL
    assert done.output[0].content[0].annotations[0].url == "https://en.wikipedia.org/wiki/Warsaw"
    assert done.model_extra["citations"] == [s["url"] for s in done.model_extra["search_results"]]
    assert events[0].response.id == done.id and events[0].response.status == "in_progress"


async def test_async_client_stream(base_url):
    client = openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key="x", max_retries=0, timeout=30)
    text = ""
    async with await client.responses.create(model="answer-engine", input=QUESTION, stream=True) as stream:
        async for event in stream:
            if event.type == "response.output_text.done":
                text = event.text
    assert text == FINAL


def test_messages_input_and_previous_response_id(client, backend):
    first = client.responses.create(
        model="answer-engine", input=[{"role": "user", "content": [{"type": "input_text", "text": QUESTION}]}]
    )
    client.responses.create(model="answer-engine", input="Where was she born?", previous_response_id=first.id)
    prompt = [m for m in backend.calls if "follow-up questions" not in m[-1].content][-1]
    assert [m.role for m in prompt][:3] == ["system", "user", "assistant"]
    assert prompt[1].content == QUESTION and "Nobel Prize" in prompt[2].content
    assert "Where was she born?" in prompt[-1].content


def test_store_false_keeps_nothing(client):
    r = client.responses.create(model="answer-engine", input=QUESTION, store=False)
    with pytest.raises(openai.NotFoundError) as err:
        client.responses.create(model="answer-engine", input="and then?", previous_response_id=r.id)
    assert err.value.body["param"] == "previous_response_id"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "answer-engine", "input": ""}, "input"),
        ({"model": "answer-engine", "input": [{"role": "assistant", "content": "hi"}]}, "input"),
        ({"model": "answer-engine", "input": "q", "max_output_tokens": 0}, "max_output_tokens"),
        ({"model": "answer-engine", "input": "q", "tools": [{"type": "function", "name": "f"}]}, "tools"),
    ],
)
def test_bad_requests_are_400_in_openai_format(base_url, body, param):
    r = httpx.post(f"{base_url}/v1/responses", json=body, timeout=10)
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param and error["message"]


def test_unknown_model_404(client):
    with pytest.raises(openai.NotFoundError) as err:
        client.responses.create(model="gpt-4o", input=QUESTION)
    assert err.value.body["code"] == "model_not_found"


def test_web_search_tool_is_accepted(client):
    r = client.responses.create(model="answer-engine", input=QUESTION, tools=[{"type": "web_search"}])
    assert r.output_text == FINAL


def test_failure_mid_stream_is_response_failed(settings, serve, fake_backend_cls):
    backend = fake_backend_cls(["Partial answer", " and then", " more"], fail_after=1)
    url = serve(create_app(settings, pipeline=build_pipeline(settings, backend=backend)))
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=30)
    events = list(client.responses.create(model="answer-engine", input=QUESTION, stream=True))
    assert events[-1].type == "response.failed"
    assert events[-1].response.status == "failed"
    assert "model crashed" in events[-1].response.error.message


def test_in_openapi(base_url):
    spec = httpx.get(f"{base_url}/openapi.json", timeout=10).json()
    assert "/v1/responses" in spec["paths"] and "/search" in spec["paths"]


def test_cut_off_at_max_output_tokens_is_incomplete(settings, serve, fake_backend_cls):
    backend = fake_backend_cls(["one two three four five six seven eight"])
    url = serve(create_app(settings, pipeline=build_pipeline(settings, backend=backend)))
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=30)
    r = client.responses.create(model="answer-engine", input=QUESTION, max_output_tokens=4)
    assert r.status == "incomplete" and r.incomplete_details.reason == "max_output_tokens"
    events = list(
        client.responses.create(model="answer-engine", input=QUESTION, max_output_tokens=4, stream=True)
    )
    assert events[-1].type == "response.incomplete"
