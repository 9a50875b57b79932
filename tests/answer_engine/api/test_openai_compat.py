"""The official openai client, sync and async, stream and non-stream, against a real uvicorn on
127.0.0.1 serving the real pipeline with a scripted backend."""

import httpx
import openai
import pytest

from answer_engine.api.app import create_app
from answer_engine.components import build_pipeline

ANSWER = ["Maria Skłodowska-Curie was the first female recipient", " of the Nobel Prize [", "1", "]."]
QUESTION = "What was Maria Curie the first female recipient of?"


@pytest.fixture
def backend(fake_backend_cls):
    return fake_backend_cls(ANSWER)


@pytest.fixture
def base_url(settings, backend, serve):
    return serve(create_app(settings, pipeline=build_pipeline(settings, backend=backend)))


@pytest.fixture
def client(base_url):
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key="x", max_retries=0, timeout=30)


def test_models(client):
    ids = [m.id for m in client.models.list()]
    assert ids == ["qwen2.5-coder-1.5b-instruct-q4_k_m", "answer-engine"]


def test_non_stream(client, backend):
    r = client.chat.completions.create(
        model="answer-engine",
        messages=[{"role": "user", "content": QUESTION}],
        max_tokens=64,
        temperature=0.1,
    )
    assert r.object == "chat.completion" and r.id.startswith("chatcmpl-")
    assert r.choices[0].message.role == "assistant"
    assert (
        r.choices[0].message.content
        == "Maria Skłodowska-Curie was the first female recipient of the Nobel Prize [1]."
    )
    assert r.choices[0].finish_reason == "stop"
    extra = r.model_extra
    assert extra["citations"][0] == "https://en.wikipedia.org/wiki/Warsaw"
    result = extra["search_results"][0]
    assert set(result) == {"title", "url", "date", "last_updated", "snippet", "source"}
    assert result["url"] == extra["citations"][0] and result["title"] == "Warsaw"
    assert "related_questions" not in extra
    # the verifier's outcome, a top-level field beside citations, with the per-sentence evidence
    assert extra["answer_support"] == "supported"
    (sentence,) = extra["answer_sentences"]
    assert sentence["supported"] is True and sentence["citations"] == [1]
    assert "first female recipient of the Nobel Prize" in sentence["evidence"]
    usage = r.usage.model_dump()
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["num_search_queries"] == 1 and usage["search_context_size"] == "medium"
    assert backend.params[0].max_tokens == 64 and backend.params[0].temperature == 0.1


def test_stream_sync(client):
    stream = client.chat.completions.create(
        model="answer-engine",
        messages=[{"role": "user", "content": QUESTION}],
        stream=True,
    )
    chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    first, last = chunks[0], chunks[-1]
    assert first.choices[0].delta.role == "assistant"
    for c in (first, last):  # citations and search_results on the first chunk and again on the last
        assert c.model_extra["citations"][0] == "https://en.wikipedia.org/wiki/Warsaw"
        assert c.model_extra["search_results"][0]["url"] == "https://en.wikipedia.org/wiki/Warsaw"
    assert last.choices[0].finish_reason == "stop"
    assert last.model_extra["answer_support"] == "supported" and last.model_extra["answer_sentences"]
    assert last.usage is not None and last.usage.completion_tokens > 0
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == "Maria Skłodowska-Curie was the first female recipient of the Nobel Prize [1]."


async def test_stream_and_non_stream_async(base_url):
    client = openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key="x", max_retries=0, timeout=30)
    r = await client.chat.completions.create(
        model="answer-engine", messages=[{"role": "user", "content": QUESTION}]
    )
    assert "Nobel Prize" in r.choices[0].message.content
    parts = []
    async for chunk in await client.chat.completions.create(
        model="answer-engine",
        messages=[{"role": "user", "content": QUESTION}],
        stream=True,
    ):
        parts.append(chunk.choices[0].delta.content or "")
    assert "".join(parts) == r.choices[0].message.content


def test_multi_turn_system_and_search_options(client, backend):
    client.chat.completions.create(
        model="answer-engine",
        messages=[
            {"role": "system", "content": "Answer in English."},
            {"role": "user", "content": "Tell me about Warsaw."},
            {"role": "assistant", "content": "Warsaw is the capital of Poland [1]."},
            {"role": "user", "content": [{"type": "text", "text": QUESTION}]},
        ],
        extra_body={"web_search_options": {"search_context_size": "low"}, "some_unknown_field": 1},
    )
    sent = backend.calls[0]
    assert "Answer in English." in sent[0].content
    assert [m.role for m in sent] == ["system", "user", "assistant", "user"]
    assert sent[-1].content.count("Source [") == 1  # low context: fewer passages


def test_search_type_pro_and_fast(client, backend):
    backend.plans = ["Rhine river"]
    r = client.chat.completions.create(
        model="answer-engine",
        messages=[{"role": "user", "content": QUESTION}],
        extra_body={"web_search_options": {"search_type": "pro"}},
    )
    usage = r.usage.model_dump()
    assert usage["search_type"] == "pro" and usage["num_search_queries"] == 2
    assert usage["search_queries"] == [QUESTION, "Rhine river"]
    assert "https://en.wikipedia.org/wiki/Rhine" in r.model_extra["citations"]  # one numbering for both
    chunks = list(
        client.chat.completions.create(
            model="answer-engine",
            messages=[{"role": "user", "content": QUESTION}],
            stream=True,
            extra_body={"web_search_options": {"search_type": "fast"}},
        )
    )
    last = chunks[-1].model_dump()
    assert last["usage"]["search_type"] == "fast" and last["usage"]["num_search_queries"] == 1


def test_domain_filter_and_disable_search(client, backend):
    r = client.chat.completions.create(
        model="answer-engine",
        messages=[{"role": "user", "content": QUESTION}],
        extra_body={"search_domain_filter": ["-wikipedia.org"]},
    )
    assert r.model_extra["citations"] == [] and backend.calls == []
    r = client.chat.completions.create(
        model="answer-engine",
        messages=[{"role": "user", "content": QUESTION}],
        extra_body={"disable_search": True},
    )
    assert r.model_extra["citations"] == [] and r.usage.model_dump()["num_search_queries"] == 0
    assert "Source [" not in backend.calls[0][-1].content


def test_related_questions(client, fake_backend_cls, backend):
    backend.pieces = ANSWER
    r = client.chat.completions.create(
        model="answer-engine",
        messages=[{"role": "user", "content": QUESTION}],
        extra_body={"return_related_questions": True},
    )
    # The scripted backend answers the related-questions prompt with the same text: no questions in it.
    assert r.model_extra["related_questions"] == []
    assert len(backend.calls) == 2 and "follow-up questions" in backend.calls[1][0].content


@pytest.mark.parametrize(
    "body,status,param",
    [
        ({"model": "answer-engine", "messages": []}, 400, "messages"),
        (
            {"model": "answer-engine", "messages": [{"role": "user", "content": QUESTION}], "temperature": 3},
            400,
            "temperature",
        ),
        (
            {
                "model": "answer-engine",
                "messages": [{"role": "user", "content": QUESTION}],
                "search_recency_filter": "decade",
            },
            400,
            "search_recency_filter",
        ),
        (
            {
                "model": "answer-engine",
                "messages": [{"role": "user", "content": QUESTION}],
                "search_after_date_filter": "2025-03-01",
            },
            400,
            "search_after_date_filter",
        ),
        (
            {
                "model": "answer-engine",
                "messages": [{"role": "user", "content": QUESTION}],
                "web_search_options": {"search_context_size": "huge"},
            },
            400,
            "web_search_options.search_context_size",
        ),
        (
            {
                "model": "answer-engine",
                "messages": [{"role": "user", "content": QUESTION}],
                "web_search_options": {"search_type": "deep"},
            },
            400,
            "web_search_options.search_type",
        ),
        (
            {
                "model": "answer-engine",
                "messages": [{"role": "user", "content": QUESTION}],
                "max_tokens": 100000,
            },
            400,
            "max_tokens",
        ),
        ({"model": "answer-engine", "messages": [{"role": "assistant", "content": "hi"}]}, 400, "messages"),
        ({"model": "gpt-4o", "messages": [{"role": "user", "content": QUESTION}]}, 404, "model"),
    ],
)
def test_errors_in_openai_format(base_url, body, status, param):
    r = httpx.post(f"{base_url}/v1/chat/completions", json=body, timeout=30)
    assert r.status_code == status
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["param"] == param, err
    assert err["type"] == ("not_found_error" if status == 404 else "invalid_request_error")


def test_openai_client_raises_typed_errors(client):
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model="answer-engine", messages=[{"role": "user", "content": "hi"}], temperature=5
        )


def test_body_too_large_is_413(base_url):
    r = httpx.post(
        f"{base_url}/v1/chat/completions",
        content=b"x" * 2_000_000,
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"


def test_error_after_stream_began_is_a_final_error_chunk(settings, fake_backend_cls, serve):
    backend = fake_backend_cls(["The Nobel", " Prize", " again"], fail_after=2)
    url = serve(create_app(settings, pipeline=build_pipeline(settings, backend=backend)))
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
    got = []
    with pytest.raises(openai.APIError, match="model crashed"):
        for chunk in client.chat.completions.create(
            model="answer-engine", messages=[{"role": "user", "content": QUESTION}], stream=True
        ):
            got.append(chunk)
    assert got and got[0].choices[0].delta.role == "assistant"
    raw = httpx.post(
        f"{url}/v1/chat/completions",
        timeout=30,
        json={"model": "answer-engine", "messages": [{"role": "user", "content": QUESTION}], "stream": True},
    )
    data = [line[5:].strip() for line in raw.text.splitlines() if line.startswith("data:")]
    assert '"error"' in data[-2] and data[-1] == "[DONE]"


def test_unsupported_answer_is_replaced_and_said_so(settings, fake_backend_cls, serve):
    backend = fake_backend_cls(
        ["Maria Curie was born in Warsaw and won the Nobel Prize twice [1]."]  # "twice": on no page
    )
    url = serve(create_app(settings, pipeline=build_pipeline(settings, backend=backend)))
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=30)
    r = client.chat.completions.create(
        model="answer-engine", messages=[{"role": "user", "content": QUESTION}]
    )
    assert r.choices[0].message.content.startswith("The sources found do not answer this question.")
    assert r.model_extra["answer_support"] == "not_supported"
    assert r.model_extra["answer_sentences"][0]["supported"] is False
