"""POST /search (Perplexity's Search API shape) against a real uvicorn on 127.0.0.1: the real
search, read and passage ranking over the shipped corpus, and no generation at all."""

import httpx
import pytest

from answer_engine.api.access import hash_key
from answer_engine.api.app import create_app
from answer_engine.components import build_pipeline
from answer_engine.config import load_settings

KEYS = {"title", "url", "snippet", "date", "last_updated"}


@pytest.fixture
def backend(fake_backend_cls):
    return fake_backend_cls(["never used"])


@pytest.fixture
def base_url(settings, backend, serve):
    return serve(create_app(settings, pipeline=build_pipeline(settings, backend=backend)))


def post(base_url, body, **kw):
    return httpx.post(f"{base_url}/search", json=body, timeout=20, **kw)


def test_one_query(base_url, backend):
    r = post(base_url, {"query": "Where was Marie Curie born?", "max_results": 3})
    assert r.status_code == 200
    body = r.json()
    assert body["id"] and len(body["results"]) == 3
    first = body["results"][0]
    assert set(first) == KEYS
    assert first["url"] == "https://en.wikipedia.org/wiki/Warsaw" or "Curie" in first["title"]
    # the snippet is page text that matches the query, not just the page's opening
    assert any("Curie" in r["snippet"] for r in body["results"])
    assert backend.calls == []  # no generation


def test_several_queries_one_list_each(base_url):
    r = post(base_url, {"query": ["Nikola Tesla inventions", "Warsaw history"], "max_results": 2})
    assert r.status_code == 200
    first, second = r.json()["results"]
    assert 1 <= len(first) <= 2 and 1 <= len(second) <= 2
    assert "Tesla" in first[0]["title"] and "Warsaw" in second[0]["title"]


def test_snippet_budget(base_url):
    short = post(base_url, {"query": "Warsaw", "max_results": 1, "max_tokens_per_page": 20}).json()
    long = post(base_url, {"query": "Warsaw", "max_results": 1, "max_tokens_per_page": 1000}).json()
    assert len(short["results"][0]["snippet"].split()) <= 16
    assert len(long["results"][0]["snippet"].split()) > 3 * len(short["results"][0]["snippet"].split())


def test_domain_filter(base_url):
    r = post(base_url, {"query": "Warsaw", "search_domain_filter": ["-wikipedia.org"]})
    assert r.status_code == 200 and r.json()["results"] == []


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"query": ""}, "query"),
        ({"query": ["a", "b", "c", "d", "e", "f"]}, "query"),
        ({"query": "x", "max_results": 21}, "max_results"),
        ({"query": "x", "search_after_date_filter": "2024-01-01"}, "search_after_date_filter"),
    ],
)
def test_bad_requests_are_400(base_url, body, param):
    r = post(base_url, body)
    assert r.status_code == 400 and r.json()["error"]["param"] == param


def test_behind_the_api_key(tmp_path, settings, backend, serve):
    keyed = load_settings(
        data_dir=settings.data_dir,
        retrieval={"dense_weight": 0.0},
        server={"api_key_hashes": [hash_key("k1")]},
    )
    url = serve(create_app(keyed, pipeline=build_pipeline(keyed, backend=backend)))
    assert post(url, {"query": "Warsaw"}).status_code == 401
    r = post(url, {"query": "Warsaw"}, headers={"Authorization": "Bearer k1"})
    assert r.status_code == 200 and r.json()["results"]
