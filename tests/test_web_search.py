"""The engine answering from the web: a SearXNG-format provider and its pages served by a real
server on 127.0.0.1 (exempted from the SSRF guard), through the pipeline, POST /api/ask and the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import httpx
import pytest

from answer_engine.api.app import create_app
from answer_engine.components import build_pipeline, provider_statuses
from answer_engine.config import ConfigError, load_settings
from answer_engine.events import EventType
from answer_engine.request import AskOptions, AskRequest
from search_adapters.filters import SearchFilters

QUESTION = "What causes tides on Earth?"


def web_settings(tmp_path, base, **search):
    return load_settings(
        data_dir=tmp_path / "data",
        retrieval={"dense_weight": 0.0},
        search={"providers": ["searxng"], "searxng_url": base, "max_results": 5, **search},
        fetch={"allow_networks": ["127.0.0.1/32"], "timeout_s": 3.0},
    )


async def run(pipeline, query=QUESTION, **options):
    try:
        return [e async for e in pipeline.run(AskRequest(query=query, options=AskOptions(**options)))]
    finally:
        await pipeline.aclose()


async def test_answers_from_fetched_pages_with_citations(tmp_path, little_web, fake_backend_cls):
    base, app = little_web
    backend = fake_backend_cls(["Tides are caused by the gravitational pull of the Moon and the Sun [1]."])
    events = await run(build_pipeline(web_settings(tmp_path, base), backend=backend))
    assert EventType.ERROR not in [e.type for e in events]
    sources = next(e for e in events if e.type == EventType.SOURCES).sources
    assert sources[0].url == f"{base}/page/tides" and sources[0].provider == "searxng"
    assert not sources[0].from_snippet  # the page itself was read, not the provider's snippet
    assert "Source [1]: Tides and the Moon" in backend.calls[0][-1].content
    assert "Copyright the little web" not in backend.calls[0][-1].content  # page chrome extracted away
    citations = next(e for e in events if e.type == EventType.CITATIONS)
    assert [c.url for c in citations.citations] == [f"{base}/page/tides"]
    timings = events[-1].timings
    assert timings.search_ms > 0 and timings.fetch_ms > 0 and timings.extract_ms > 0


async def test_dead_pages_fall_back_to_snippets_marked_as_such(tmp_path, little_web, fake_backend_cls):
    base, app = little_web
    app.state.search_mode = "dead"
    events = await run(build_pipeline(web_settings(tmp_path, base), backend=fake_backend_cls(["Tides [1]."])))
    sources = next(e for e in events if e.type == EventType.SOURCES).sources
    assert sources and all(s.from_snippet for s in sources)


async def test_search_results_are_cached(tmp_path, little_web, fake_backend_cls):
    base, app = little_web
    pipeline = build_pipeline(web_settings(tmp_path, base), backend=fake_backend_cls(["Tides [1]."]))
    for _ in range(2):
        events = [e async for e in pipeline.run(AskRequest(query=QUESTION))]
        assert events[-1].type == EventType.DONE
    await pipeline.aclose()
    assert app.state.search_calls == 1  # the second search came from the cache
    assert (
        pipeline.reader.cache_hits >= 1 and pipeline.reader.cache_misses >= 1
    )  # pages too, after the first read


async def test_filters_enforced_after_retrieval(tmp_path, little_web, fake_backend_cls):
    base, _ = little_web
    events = await run(
        build_pipeline(web_settings(tmp_path, base), backend=fake_backend_cls()),
        filters=SearchFilters(domains=["-127.0.0.1"]),
    )
    assert next(e for e in events if e.type == EventType.SOURCES).sources == []
    events = await run(
        build_pipeline(web_settings(tmp_path, base), backend=fake_backend_cls()),
        filters=SearchFilters(before="2020-01-01"),
    )
    assert next(e for e in events if e.type == EventType.SOURCES).sources == []


async def test_stalled_provider_gives_an_error_event_within_the_deadline(
    tmp_path, little_web, fake_backend_cls
):
    base, app = little_web
    app.state.search_mode = "stall"
    pipeline = build_pipeline(web_settings(tmp_path, base, deadline_s=0.5), backend=fake_backend_cls())
    async with asyncio.timeout(10):
        events = await run(pipeline)
    assert events[-1].type == EventType.ERROR and events[-1].stage == "search"
    assert "no answer within 0.5s" in events[-1].message
    assert EventType.DELTA not in [e.type for e in events]  # never an answer from nothing


async def test_rate_limited_provider_is_an_error_event_unless_search_is_off(
    tmp_path, little_web, fake_backend_cls
):
    base, app = little_web
    app.state.search_mode = "429"
    events = await run(build_pipeline(web_settings(tmp_path, base), backend=fake_backend_cls()))
    assert events[-1].type == EventType.ERROR and "HTTP 429" in events[-1].message
    events = await run(
        build_pipeline(web_settings(tmp_path, base), backend=fake_backend_cls(["Hi."])), disable_search=True
    )
    assert events[-1].type == EventType.DONE


async def test_api_ask_answers_from_the_web(tmp_path, little_web, fake_backend_cls, serve):
    base, _ = little_web
    settings = web_settings(tmp_path, base)
    backend = fake_backend_cls(["Auroras are caused by charged particles from the solar wind [1]."])
    url = serve(create_app(settings, pipeline=build_pipeline(settings, backend=backend)))
    async with httpx.AsyncClient(timeout=30) as client:
        r = await client.post(f"{url}/api/ask", json={"query": "What causes an aurora?"})
    events = [json.loads(line[5:]) for line in r.text.splitlines() if line.startswith("data:")]
    citations = next(e for e in events if e["type"] == "citations")
    assert [c["url"] for c in citations["citations"]] == [f"{base}/page/aurora"]


def test_cli_ask_answers_from_the_web(tmp_path, little_web):
    base, _ = little_web
    env = {
        **os.environ,
        "AE_DATA_DIR": str(tmp_path / "data"),
        "AE_SEARCH__PROVIDERS": '["searxng"]',
        "AE_SEARCH__SEARXNG_URL": base,
        "AE_FETCH__ALLOW_NETWORKS": '["127.0.0.1/32"]',
        "AE_GENERATION__BACKEND": "extractive",
        "AE_RETRIEVAL__DENSE_WEIGHT": "0",
    }
    out = subprocess.run(
        [sys.executable, "-m", "answer_engine.cli", "ask", "--json", "How large is Mauna Loa?"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    assert answer["sources"][0]["url"] == f"{base}/page/volcano"
    assert answer["citations"] and all(c["url"].startswith(base) for c in answer["citations"])


def test_providers_command_and_statuses(tmp_path, monkeypatch, capsys):
    from answer_engine.cli import main

    for var in ("BRAVE_API_KEY", "TAVILY_API_KEY", "GOOGLE_API_KEY", "GOOGLE_CSE_ID", "SEARXNG_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AE_SEARCH__PROVIDERS", '["brave", "tavily", "ddgs"]')
    monkeypatch.setenv("TAVILY_API_KEY", "tvly-x")
    assert main(["providers", "--json"]) == 0
    status = {s["name"]: s for s in json.loads(capsys.readouterr().out)}
    assert status["tavily"]["enabled"] and status["ddgs"]["enabled"] and status["local"]["enabled"] is False
    assert not status["brave"]["enabled"] and "BRAVE_API_KEY" in status["brave"]["why"]
    assert "not in search.providers" in status["searxng"]["why"]


def test_no_provider_enabled_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("BRAVE_API_KEY", raising=False)
    settings = load_settings(data_dir=tmp_path, search={"providers": ["brave"]})
    assert not any(s.enabled for s in provider_statuses(settings))
    with pytest.raises(ConfigError, match="no search provider is enabled.*brave: no API key"):
        build_pipeline(settings, backend=object())
