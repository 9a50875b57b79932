"""Structured answers (response_format / text.format): schema checks before streaming, the finished
output validated, citations still beside it; and the real small model decoding under llama.cpp's
grammar for the schema, through the official openai client against a real uvicorn on 127.0.0.1."""

import json

import httpx
import jsonschema
import openai
import pytest

from answer_engine.api.app import create_app
from answer_engine.backends.llamacpp import LlamaCppBackend
from answer_engine.components import build_pipeline

QUESTION = "What was Maria Curie the first female recipient of?"
SCHEMA = {
    "type": "object",
    "properties": {
        "answer": {"type": "string", "maxLength": 80},
        "sure": {"type": "boolean"},
    },
    "required": ["answer", "sure"],
    "additionalProperties": False,
}
FORMAT = {"type": "json_schema", "json_schema": {"name": "fact", "schema": SCHEMA, "strict": True}}


@pytest.fixture
def schema_backend_cls(fake_backend_cls):
    class SchemaBackend(fake_backend_cls):
        """The scripted backend, declaring it can decode under a schema (it writes its script)."""

        def schema_problem(self, schema):
            return None

    return SchemaBackend


def serve_with(settings, serve, backend):
    return serve(create_app(settings, pipeline=build_pipeline(settings, backend=backend)))


def test_json_answer_with_citations_beside_it(settings, serve, schema_backend_cls):
    backend = schema_backend_cls(['{"answer": "the Nobel Prize [1]",', ' "sure": true}'])
    url = serve_with(settings, serve, backend)
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=30)
    r = client.chat.completions.create(
        model="answer-engine", messages=[{"role": "user", "content": QUESTION}], response_format=FORMAT
    )
    value = json.loads(r.choices[0].message.content)
    assert value == {"answer": "the Nobel Prize [1]", "sure": True}
    assert r.model_extra["citations"][0] == "https://en.wikipedia.org/wiki/Warsaw"
    # the schema went to the backend and into the prompt; prose stop strings did not
    assert backend.params[0].json_schema == SCHEMA
    assert backend.params[0].min_chars == 0  # JSON is decoded under its grammar, no prose floor
    assert "\nSources:" not in backend.params[0].stop
    assert '"sure"' in backend.calls[0][0].content and "Source [1]" in backend.calls[0][-1].content


def test_output_off_the_schema_is_an_error_not_an_answer(settings, serve, schema_backend_cls):
    url = serve_with(settings, serve, schema_backend_cls(['{"answer": 3}']))
    r = httpx.post(
        f"{url}/v1/chat/completions",
        json={
            "model": "answer-engine",
            "messages": [{"role": "user", "content": QUESTION}],
            "response_format": FORMAT,
        },
        timeout=20,
    )
    assert r.status_code == 500
    assert "does not match the schema" in r.json()["error"]["message"]


def test_json_object_and_responses_text_format(settings, serve, schema_backend_cls):
    url = serve_with(settings, serve, schema_backend_cls(['{"answer": "Nobel Prize"}']))
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=30)
    r = client.chat.completions.create(
        model="answer-engine",
        messages=[{"role": "user", "content": QUESTION}],
        response_format={"type": "json_object"},
    )
    assert json.loads(r.choices[0].message.content) == {"answer": "Nobel Prize"}
    r = client.responses.create(
        model="answer-engine",
        input=QUESTION,
        text={"format": {"type": "json_schema", "name": "fact", "schema": {"type": "object"}}},
    )
    assert json.loads(r.output_text) == {"answer": "Nobel Prize"}


@pytest.mark.parametrize(
    ("fmt", "code"),
    [
        ({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "nope"}}}, "invalid_schema"),
        ({"type": "json_schema", "json_schema": {"name": "x"}}, "invalid_value"),
    ],
)
def test_unusable_schema_is_400_before_streaming(settings, serve, schema_backend_cls, fmt, code):
    backend = schema_backend_cls(["{}"])
    url = serve_with(settings, serve, backend)
    body = {
        "model": "answer-engine",
        "messages": [{"role": "user", "content": QUESTION}],
        "response_format": fmt,
    }
    r = httpx.post(f"{url}/v1/chat/completions", json={**body, "stream": True}, timeout=20)
    assert r.status_code == 400 and r.json()["error"]["code"] == code
    assert r.json()["error"]["param"] == "response_format"
    assert backend.calls == []


def test_a_backend_that_cannot_constrain_says_so(settings, serve, fake_backend_cls):
    url = serve_with(settings, serve, fake_backend_cls(["{}"]))
    r = httpx.post(
        f"{url}/v1/responses",
        json={"model": "answer-engine", "input": QUESTION, "text": {"format": {"type": "json_object"}}},
        timeout=20,
    )
    assert r.status_code == 400
    assert (
        r.json()["error"]["code"] == "unsupported_schema"
        and "cannot constrain" in r.json()["error"]["message"]
    )


@pytest.mark.model
def test_real_model_returns_schema_valid_json(settings, serve, test_model_path):
    backend = LlamaCppBackend(test_model_path, n_ctx=2048, prefix_states=0)
    url = serve_with(settings, serve, backend)
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=120)
    r = client.chat.completions.create(
        model="answer-engine",
        messages=[{"role": "user", "content": QUESTION}],
        response_format=FORMAT,
        max_tokens=96,
    )
    value = json.loads(r.choices[0].message.content)
    jsonschema.validate(value, SCHEMA)
    assert r.model_extra["citations"]  # the sources it read, beside the JSON
    r = client.responses.create(
        model="answer-engine",
        input=QUESTION,
        max_output_tokens=96,
        text={"format": {"type": "json_schema", "name": "fact", "schema": SCHEMA}},
    )
    jsonschema.validate(json.loads(r.output_text), SCHEMA)


def test_llamacpp_refuses_what_its_grammar_cannot_express(test_model_path):
    backend = LlamaCppBackend(test_model_path)
    assert backend.schema_problem(SCHEMA) is None
    assert "grammar" in backend.schema_problem({"type": "object", "properties": {"a": {"$ref": "#/nowhere"}}})


def test_json_answer_when_nothing_is_found(settings, serve, schema_backend_cls):
    """The engine's own 'no sources' prose would not match the schema: the model answers (its
    prompt says to leave what the sources do not state empty), with no citations."""
    backend = schema_backend_cls(['{"answer": "", "sure": false}'])
    url = serve_with(settings, serve, backend)
    r = httpx.post(
        f"{url}/v1/chat/completions",
        json={
            "model": "answer-engine",
            "messages": [{"role": "user", "content": QUESTION}],
            "response_format": FORMAT,
            "search_domain_filter": ["-wikipedia.org"],
        },
        timeout=20,
    ).json()
    assert json.loads(r["choices"][0]["message"]["content"]) == {"answer": "", "sure": False}
    assert r["citations"] == [] and "Source [1]" not in backend.calls[0][-1].content
