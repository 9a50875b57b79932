"""The document library (/v1/documents) against a real uvicorn on 127.0.0.1: files and URLs added
to the index and cited in answers, listed, deleted; limits and checks; and two app instances
answering from one shared index in the real PostgreSQL."""

import httpx
import pytest

from answer_engine.api.access import hash_key
from answer_engine.api.app import create_app
from answer_engine.components import build_pipeline
from answer_engine.config import load_settings
from answer_engine.evaluation.littleweb import minimal_pdf
from answer_engine.pgindex import PostgresIngestor

NOTE = (
    "# Project Zephyr\n\nProject Zephyr is the internal codename for the Bluebird weather balloon. "
    "The Bluebird balloon was launched from Tromsø in March 2026 and reached 31 kilometres.\n"
)
QUESTION = "What is Project Zephyr the codename for?"
ANSWER = ["Project Zephyr is the internal codename for the Bluebird weather balloon [1]."]


def chat(url, question=QUESTION, **kw):
    body = {"model": "answer-engine", "messages": [{"role": "user", "content": question}]}
    return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=30, **kw).json()


def upload(url, name, data, **kw):
    return httpx.post(f"{url}/v1/documents", files={"file": (name, data)}, timeout=60, **kw)


@pytest.fixture
def base_url(settings, fake_backend_cls, serve):
    backend = fake_backend_cls(ANSWER)
    return serve(create_app(settings, pipeline=build_pipeline(settings, backend=backend)))


def test_upload_is_cited_listed_and_deleted(base_url):
    r = upload(base_url, "zephyr-notes.md", NOTE.encode())
    assert r.status_code == 201, r.text
    doc = r.json()
    assert doc["url"] == f"upload://{doc['id']}/zephyr-notes.md" and doc["content_type"] == "text/markdown"
    assert doc["title"] == "Project Zephyr" and doc["bytes"] == len(NOTE.encode())

    answer = chat(base_url)
    assert answer["citations"][0] == doc["url"]  # the answer cites the uploaded document as [1]
    assert "Bluebird" in answer["search_results"][0]["snippet"]
    assert answer["answer_support"] == "supported"

    listed = httpx.get(f"{base_url}/v1/documents", timeout=10).json()
    assert listed["object"] == "list" and [d["id"] for d in listed["data"]] == [doc["id"]]

    r = httpx.delete(f"{base_url}/v1/documents/{doc['id']}", timeout=60)
    assert r.status_code == 200 and r.json() == {"id": doc["id"], "object": "document", "deleted": True}
    assert httpx.get(f"{base_url}/v1/documents", timeout=10).json()["data"] == []
    assert doc["url"] not in chat(base_url)["citations"]
    assert httpx.delete(f"{base_url}/v1/documents/{doc['id']}", timeout=10).status_code == 404


def test_pdf_upload(base_url):
    r = upload(base_url, "balloon.pdf", minimal_pdf("The Bluebird weather balloon reached 31 kilometres."))
    assert r.status_code == 201, r.text
    assert r.json()["content_type"] == "application/pdf"
    hits = httpx.post(f"{base_url}/search", json={"query": "Bluebird weather balloon"}, timeout=20).json()
    assert hits["results"][0]["url"] == r.json()["url"]
    assert "31 kilometres" in hits["results"][0]["snippet"]


@pytest.mark.parametrize(
    ("name", "data", "status"),
    [
        ("tool.exe", b"MZ\x90\x00", 415),
        ("fake.pdf", b"<html>not a pdf</html>", 415),
        ("binary.txt", b"\xff\xfe\x00\x01", 415),
        ("empty.md", b"", 400),
        ("blank.md", b"   \n\n", 400),
    ],
)
def test_bad_files_are_refused_and_leave_nothing(base_url, settings, name, data, status):
    r = upload(base_url, name, data)
    assert r.status_code == status and r.json()["error"]["message"]
    assert httpx.get(f"{base_url}/v1/documents", timeout=10).json()["data"] == []
    uploads = settings.data_dir / "uploads"
    assert not uploads.exists() or {p.name for p in uploads.iterdir()} <= {".lock", "manifest.jsonl"}


def test_size_limit(settings, fake_backend_cls, serve):
    small = load_settings(
        data_dir=settings.data_dir, retrieval={"dense_weight": 0.0}, server={"max_upload_bytes": 2048}
    )
    url = serve(create_app(small, pipeline=build_pipeline(small, backend=fake_backend_cls(ANSWER))))
    r = upload(url, "big.txt", b"word " * 1000)
    assert r.status_code == 413


def test_url_is_read_through_the_ssrf_guard(settings, fake_backend_cls, serve, little_web):
    web, _ = little_web
    guarded = serve(create_app(settings, pipeline=build_pipeline(settings, backend=fake_backend_cls(ANSWER))))
    r = httpx.post(f"{guarded}/v1/documents", json={"url": f"{web}/page/tides"}, timeout=30)
    assert r.status_code == 400 and "non-public address" in r.json()["error"]["message"]

    trusting = load_settings(
        data_dir=settings.data_dir,
        retrieval={"dense_weight": 0.0},
        fetch={"allow_networks": ["127.0.0.1/32"]},
    )
    url = serve(create_app(trusting, pipeline=build_pipeline(trusting, backend=fake_backend_cls(ANSWER))))
    r = httpx.post(f"{url}/v1/documents", json={"url": f"{web}/page/tides", "title": "Tides"}, timeout=30)
    assert r.status_code == 201, r.text
    assert r.json()["url"] == f"{web}/page/tides" and r.json()["title"] == "Tides"
    hits = httpx.post(f"{url}/search", json={"query": "spring tides new and full moon"}, timeout=20).json()
    assert hits["results"][0]["url"] == f"{web}/page/tides"


def test_behind_the_api_key_and_switchable(settings, fake_backend_cls, serve):
    keyed = load_settings(
        data_dir=settings.data_dir,
        retrieval={"dense_weight": 0.0},
        server={"api_key_hashes": [hash_key("k")]},
    )
    url = serve(create_app(keyed, pipeline=build_pipeline(keyed, backend=fake_backend_cls(ANSWER))))
    assert upload(url, "n.md", NOTE.encode()).status_code == 401
    assert httpx.get(f"{url}/v1/documents", timeout=10).status_code == 401
    off = load_settings(
        data_dir=settings.data_dir, retrieval={"dense_weight": 0.0}, server={"uploads": False}
    )
    url = serve(create_app(off, pipeline=build_pipeline(off, backend=fake_backend_cls(ANSWER))))
    assert upload(url, "n.md", NOTE.encode()).status_code == 403
    assert httpx.get(f"{url}/v1/documents", timeout=10).status_code == 200  # listing stays open


def test_two_replicas_answer_from_one_postgres_index(tmp_path, pg_url, pg_schema, fake_backend_cls, serve):
    """Two app instances, each with its own data dir, share one index: what is indexed once, or
    uploaded through one of them, both find and cite."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "glaciers.txt").write_text(
        "Glaciers are rivers of ice. The Aletsch Glacier is the largest glacier in the Alps.",
        encoding="utf-8",
    )
    PostgresIngestor(pg_url, schema=pg_schema).sync([corpus])

    def replica(name):
        s = load_settings(
            data_dir=tmp_path / name,
            retrieval={"dense_weight": 0.0},
            search={"providers": ["postgres"], "postgres_url": pg_url, "postgres_schema": pg_schema},
        )
        return serve(create_app(s, pipeline=build_pipeline(s, backend=fake_backend_cls(ANSWER))))

    a, b = replica("a"), replica("b")
    for url in (a, b):
        found = chat(url, "Which is the largest glacier in the Alps?")
        assert found["citations"] == [(corpus / "glaciers.txt").as_uri()]
    doc = upload(a, "zephyr.md", NOTE.encode()).json()
    assert doc["url"].startswith("upload://")
    answer = chat(b)  # the other replica: the upload is already in the shared index
    assert answer["citations"][0] == doc["url"] and answer["answer_support"] == "supported"
    assert [d["id"] for d in httpx.get(f"{b}/v1/documents", timeout=10).json()["data"]] == [doc["id"]]
    assert httpx.delete(f"{b}/v1/documents/{doc['id']}", timeout=30).status_code == 200
    assert doc["url"] not in chat(a)["citations"]
