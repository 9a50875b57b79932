"""The service through httpx.ASGITransport (buffers the body: fine for checking a finished stream)."""

import json

import httpx
import pytest

from answer_engine.api.app import create_app
from answer_engine.components import build_pipeline
from answer_engine.events import parse_event


def parse_sse(body: str) -> list[tuple[str, dict]]:
    frames = []
    for block in body.replace("\r\n", "\n").split("\n\n"):
        name, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip())
        if data:
            frames.append((name, json.loads("\n".join(data))))
    return frames


@pytest.fixture
async def client(settings, fake_backend_cls):
    backend = fake_backend_cls(
        ["Maria Skłodowska-Curie was the first female recipient of the Nobel Prize", " [1]."]
    )
    app = create_app(settings, pipeline=build_pipeline(settings, backend=backend))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
            yield c


async def test_health(client):
    r = await client.get("/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"


async def test_ask_streams_named_sse_events(client):
    r = await client.post("/api/ask", json={"query": "What was Maria Curie the first female recipient of?"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    frames = parse_sse(r.text)
    names = [n for n, _ in frames]
    assert names[0] == "status" and names[-3:] == ["citations", "related", "done"]
    for name, data in frames:  # every frame is named, and named after its own type
        assert name == data["type"]
        parse_event(json.dumps(data))
    citations = next(d for n, d in frames if n == "citations")
    assert citations["citations"][0]["url"] == "https://en.wikipedia.org/wiki/Warsaw"
    assert "".join(d["text"] for n, d in frames if n == "delta") == citations["answer"]


@pytest.mark.parametrize(
    "body,status,fragment",
    [
        ({"query": "   "}, 400, "empty"),
        ({}, 400, "query"),
        ({"query": 5}, 400, "query"),
        ({"query": "q", "history": [{"role": "robot", "content": "x"}]}, 400, "history"),
        ({"query": "q", "options": {"search_type": "deep"}}, 400, "search_type"),
    ],
)
async def test_bad_requests_get_json_errors_before_any_stream(client, body, status, fragment):
    r = await client.post("/api/ask", json=body)
    assert r.status_code == status
    assert fragment in r.json()["error"]["message"]


async def test_web_ui_is_served(client):
    r = await client.get("/")
    assert r.status_code == 200 and "<form" in r.text
    assert (await client.get("/app.js")).status_code == 200


async def test_request_id_in_header_and_in_every_log_line(client, caplog):
    import logging

    from answer_engine.logs import JsonFormatter, RequestIdFilter

    caplog.handler.addFilter(RequestIdFilter())
    with caplog.at_level(logging.INFO):
        logging.getLogger("answer_engine.pipeline").info("outside any request")
        r = await client.post(
            "/api/ask",
            json={"query": "What was Maria Curie the first female recipient of?"},
            headers={"X-Request-ID": "trace-123"},
        )
    assert r.headers["X-Request-ID"] == "trace-123"
    r2 = await client.get("/health", headers={"X-Request-ID": "bad id with spaces\n"})
    assert len(r2.headers["X-Request-ID"]) == 32  # replaced by a fresh one
    ids = {rec.request_id for rec in caplog.records}
    assert "-" in ids and "trace-123" in ids  # the pipeline's "answered in" line carries the request's id
    line = json.loads(JsonFormatter().format(caplog.records[0]))
    assert set(line) >= {"ts", "level", "logger", "request_id", "message"}


async def test_metrics_count_answers_stages_errors_and_cache(client):
    q = {"query": "What was Maria Curie the first female recipient of?"}
    await client.post("/api/ask", json=q)
    await client.post("/api/ask", json=q)
    await client.post("/api/ask", json={"query": "   "})
    r = await client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'ae_requests_total{route="/api/ask",status="200"} 2.0' in text
    assert 'ae_requests_total{route="/api/ask",status="400"} 1.0' in text
    assert "ae_answers_total 2.0" in text
    assert 'ae_stage_seconds_count{stage="search"} 2.0' in text
    assert 'ae_stage_seconds_count{stage="total"} 2.0' in text
    assert "ae_answers_in_flight 0.0" in text
    # Local pages come from the index's passage store, never through the page cache (nothing is
    # fetched); the web test (tests/test_web_search.py) counts page-cache hits.
    counters = {
        line.split()[0]: float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith(("ae_page_cache_hits_total", "ae_page_cache_misses_total"))
    }
    assert counters == {"ae_page_cache_hits_total": 0.0, "ae_page_cache_misses_total": 0.0}


async def test_metrics_count_errors_by_stage(settings, fake_backend_cls):
    backend = fake_backend_cls(["a", "b"], fail_after=1)
    app = create_app(settings, pipeline=build_pipeline(settings, backend=backend))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
        await c.post("/api/ask", json={"query": "What was Maria Curie the first female recipient of?"})
        assert 'ae_errors_total{stage="generate"} 1.0' in (await c.get("/metrics")).text


@pytest.mark.parametrize("search_type, searches", [("fast", 1), ("pro", 2), ("auto", 1)])
async def test_search_type_option_on_the_native_api(settings, fake_backend_cls, search_type, searches):
    backend = fake_backend_cls(["Nobel Prize [1]."], plans=["Rhine river"])
    app = create_app(settings, pipeline=build_pipeline(settings, backend=backend))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
            body = {"query": "What was Maria Curie the first female recipient of?"}
            r = await c.post("/api/ask", json={**body, "options": {"search_type": search_type}})
    frames = parse_sse(r.text)
    done = frames[-1][1]
    assert done["search_type"] == ("pro" if search_type == "pro" else "fast")
    assert len(done["queries"]) == done["search_queries"] == searches
    said = [d["message"] for n, d in frames if n == "status" and d["stage"] == "search"]
    assert said == [f"Searching for: {q}" for q in done["queries"]]
