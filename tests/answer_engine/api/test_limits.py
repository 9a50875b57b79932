"""Backpressure on a real server: beyond max_in_flight answers, a 503 with Retry-After at once."""

import threading
import time

import httpx

from answer_engine.api.app import create_app
from answer_engine.components import build_pipeline

QUESTION = "What was Maria Curie the first female recipient of?"


def test_full_server_answers_503_with_retry_after_then_recovers(settings, fake_backend_cls, serve):
    settings.server.max_in_flight = 2
    backend = fake_backend_cls(["Nobel "] * 30, delay=0.05)
    app = create_app(settings, pipeline=build_pipeline(settings, backend=backend))
    url = serve(app)
    results = []

    def stream():
        with httpx.stream("POST", f"{url}/api/ask", json={"query": QUESTION}, timeout=30) as r:
            results.append((r.status_code, r.read()))

    threads = [threading.Thread(target=stream) for _ in range(2)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while app.state.backpressure.in_flight < 2 and time.monotonic() < deadline:
        time.sleep(0.01)

    r = httpx.post(
        f"{url}/v1/chat/completions",
        timeout=30,
        json={"model": "answer-engine", "messages": [{"role": "user", "content": QUESTION}]},
    )
    assert r.status_code == 503  # refused, not queued behind the two
    assert r.headers["Retry-After"] == "10"
    assert r.json()["error"]["type"] == "overloaded_error" and r.json()["error"]["code"] == "overloaded"
    r = httpx.post(f"{url}/api/ask", json={"query": QUESTION}, timeout=30)
    assert r.status_code == 503

    for t in threads:
        t.join(30)
    assert [status for status, _ in results] == [200, 200]
    assert app.state.backpressure.in_flight == 0  # every slot released
    r = httpx.post(
        f"{url}/v1/chat/completions",
        timeout=30,
        json={"model": "answer-engine", "messages": [{"role": "user", "content": QUESTION}]},
    )
    assert r.status_code == 200


def test_client_that_goes_away_frees_its_slot(settings, fake_backend_cls, serve):
    settings.server.max_in_flight = 1
    backend = fake_backend_cls(["word "] * 500, delay=0.02)
    app = create_app(settings, pipeline=build_pipeline(settings, backend=backend))
    url = serve(app)
    with httpx.stream("POST", f"{url}/api/ask", json={"query": QUESTION}, timeout=30) as r:
        for line in r.iter_lines():
            if line.startswith("event: delta"):
                break  # leave mid-answer
    deadline = time.monotonic() + 5
    while app.state.backpressure.in_flight and time.monotonic() < deadline:
        time.sleep(0.02)
    assert app.state.backpressure.in_flight == 0
    assert backend.closed == 1 and backend.emitted < 500  # generation stopped too


async def test_slot_released_when_client_disconnects_before_the_stream_starts(settings, fake_backend_cls):
    """A client gone before the first frame: the generator may never run its finally; the slot still frees."""
    import json as _json

    settings.server.max_in_flight = 1
    app = create_app(settings, pipeline=build_pipeline(settings, backend=fake_backend_cls(["x"], hang=True)))
    body = _json.dumps({"query": QUESTION}).encode()
    sent_body = False

    async def receive():
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message):
        pass

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/ask",
        "raw_path": b"/api/ask",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 1),
        "server": ("test", 80),
    }
    await app(scope, receive, send)
    assert app.state.backpressure.in_flight == 0


def test_slot_release_counts_once():
    from answer_engine.api.limits import Backpressure

    gate = Backpressure(2, 5)
    slot = gate.acquire()
    gate.acquire()
    slot.release()
    slot.release()
    assert gate.in_flight == 1
