"""End to end on the embedded default with a real model: real index, page store, extraction,
passage selection, llama.cpp (SmolLM2-135M), a real uvicorn on 127.0.0.1, and the CLI."""

import json
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

pytestmark = pytest.mark.model

QUESTION = "What was Maria Curie the first female recipient of?"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def env(settings, test_model_path):
    return {
        **os.environ,
        "AE_DATA_DIR": str(settings.data_dir),
        "AE_GENERATION__MODEL": str(test_model_path),
        "AE_GENERATION__MAX_TOKENS": "48",
        "AE_RETRIEVAL__DENSE_WEIGHT": "0",  # the session's index has no embeddings (tests/test_hybrid.py has)
    }


@pytest.fixture
def server(env):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "answer_engine.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited: {proc.stdout.read()}")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("server did not start within 60 s")
    yield base
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_sse_answer_streams_from_a_real_server(server):
    events = []
    arrival = []
    with httpx.stream("POST", f"{server}/api/ask", json={"query": QUESTION}, timeout=120) as r:
        assert r.status_code == 200
        name = None
        for line in r.iter_lines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                events.append((name, json.loads(line[5:])))
                arrival.append(time.monotonic())
    names = [n for n, _ in events]
    assert "error" not in names, events
    assert names[-3:] == ["citations", "related", "done"]
    sources = next(d for n, d in events if n == "sources")["sources"]
    assert sources[0]["url"] == "https://en.wikipedia.org/wiki/Warsaw"
    deltas = [i for i, n in enumerate(names) if n == "delta"]
    assert len(deltas) > 1
    # streamed for real: the first delta arrived well before the end
    assert arrival[deltas[0]] < arrival[-1]
    cited = next(d for n, d in events if n == "citations")
    assert {c["url"] for c in cited["citations"]} <= {s["url"] for s in sources}
    timings = events[-1][1]["timings"]
    assert timings["prompt_tokens"] > 0 and timings["completion_tokens"] > 0 and timings["ttft_ms"] > 0


def ask_json(env, *args):
    """`answer-engine ask --json ARGS...` in a subprocess: its JSON object."""
    proc = subprocess.run(
        [sys.executable, "-m", "answer_engine.cli", "ask", "--json", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_cli_ask_json(env):
    out = ask_json(env, QUESTION)
    assert set(out) == {
        "answer",
        "citations",
        "sources",
        "timings",
        "answer_support",
        "sentences",
        "search_type",
        "queries",
    }
    assert out["search_type"] == "fast" and out["queries"] == [QUESTION]  # auto: a one-hop question
    assert out["answer_support"] in ("supported", "partly_supported", "not_supported", None)
    assert out["answer"]
    assert out["sources"][0] == {
        **out["sources"][0],
        "n": 1,
        "url": "https://en.wikipedia.org/wiki/Warsaw",
        "title": "Warsaw",
    }
    assert set(out["sources"][0]) == {"n", "url", "title", "snippet"}
    assert all(set(c) == {"n", "url", "title", "evidence"} for c in out["citations"])
    assert all({"text", "citations", "supported", "evidence"} == set(s) for s in out["sentences"])
    for key in (
        "search_ms",
        "fetch_ms",
        "extract_ms",
        "select_ms",
        "prompt_tokens",
        "ttft_ms",
        "generation_ms",
        "tokens_per_s",
    ):
        assert key in out["timings"]


def test_cli_ask_mode_pro_lets_the_real_model_plan(env):
    out = ask_json(env, "--mode", "pro", QUESTION)
    assert out["search_type"] == "pro" and out["queries"][0] == QUESTION
    t = out["timings"]
    assert t["plan_calls"] >= 1 and t["plan_prompt_tokens"] > 0 and t["plan_ms"] > 0
    assert 1 <= len(out["queries"]) <= 3  # the configured budget of searches
    assert out["answer"]


def test_cli_errors_are_one_line_and_non_zero(env, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "answer_engine.cli", "ask", "--model", str(tmp_path / "none.gguf"), "hello"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "neither a file nor a known model" in proc.stderr


def test_openai_client_streams_from_the_real_model(server):
    import openai

    client = openai.OpenAI(base_url=f"{server}/v1", api_key="x", max_retries=0, timeout=120)
    model = client.models.list().data[0].id
    chunks = list(
        client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": QUESTION}],
            stream=True,
            max_tokens=32,
        )
    )
    assert chunks[0].model_extra["citations"][0] == "https://en.wikipedia.org/wiki/Warsaw"
    assert chunks[0].model_extra["search_results"][0]["title"] == "Warsaw"
    assert chunks[-1].model_extra["citations"] == chunks[0].model_extra["citations"]
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
    assert "".join(c.choices[0].delta.content or "" for c in chunks).strip()
