"""Building the local index (answer_engine/ingest.py): sources, the one chunker, embeddings by id,
rebuilds when sources change, nothing half-written."""

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from answer_engine.extract import extract_page
from answer_engine.ingest import (
    SHIPPED_CORPUS,
    Ingestor,
    pages_from_source,
    read_source_page,
    register_source,
    registered_sources,
    unregister_source,
)
from answer_engine.passages import chunk_text
from answer_engine.text import terms
from search_adapters.base import SearchError
from search_adapters.local import LocalIndex


def index_of(ingestor: Ingestor) -> LocalIndex:
    return LocalIndex(ingestor.path, analyzer=terms, refresh=ingestor.ensure)


def test_index_covers_all_shipped_pages(shared_data_dir):
    info = Ingestor(shared_data_dir).ensure()
    assert info.pages == 48
    assert len((SHIPPED_CORPUS / "manifest.jsonl").read_text().splitlines()) == 48
    assert info.passages > 48


def test_stored_passages_are_the_one_chunkers_output(shared_data_dir):
    """The index stores exactly what passages.chunk_text makes of the extracted page, in order, so
    the engine never cuts a local page again at question time."""
    page = next(p for p in pages_from_source(SHIPPED_CORPUS) if p.url.endswith("/Warsaw"))
    expected = chunk_text(extract_page(read_source_page(page)).text, 90)
    stored = index_of(Ingestor(shared_data_dir)).page_passages(page.url)
    assert [p.text for p in stored] == expected
    assert [p.order for p in stored] == list(range(len(expected)))
    assert len({p.id for p in stored}) == len(stored)


def _user_folder(root: Path) -> Path:
    folder = root / "notes"
    folder.mkdir()
    (folder / "zorblax.md").write_text(
        "# Zorblax engines\n\nThe zorblax engine was invented by Quentin Marlowe in 1911 "
        "to pump water out of tin mines in Cornwall.\n"
    )
    (folder / "plain.txt").write_text(
        "Frobnicating widgets requires a torque of exactly 42 newton metres, "
        "according to the maintenance handbook."
    )
    (folder / "page.html").write_text(
        "<html><head><title>Glimmer lakes</title></head><body><nav>Home | About</nav>"
        "<main><h1>Glimmer lakes</h1><p>Glimmer lakes glow at night because of "
        "bioluminescent plankton that bloom in late summer.</p></main></body></html>"
    )
    (folder / "ignored.bin").write_bytes(b"\x00\x01")
    return folder


async def test_user_folder_is_indexed_and_rebuilt_on_change(tmp_path):
    data = tmp_path / "data"
    folder = _user_folder(tmp_path)
    register_source(data, folder)
    ingestor = Ingestor(data, include_default_corpus=False)
    assert ingestor.ensure().pages == 3
    index = index_of(ingestor)

    hits = await index.search("who invented the zorblax engine", max_results=3)
    assert hits[0].url == (folder / "zorblax.md").as_uri()
    assert hits[0].title == "zorblax"
    hits = await index.search("why do glimmer lakes glow", max_results=3)
    assert hits[0].url.endswith("page.html")

    # A new file changes the fingerprint: the next query sees it without an explicit rebuild.
    new = folder / "new.txt"
    new.write_text("Quasiflux capacitors store charge in a lattice of frozen helium, engineers say.")
    assert (await index.search("quasiflux capacitors", max_results=1))[0].url == new.as_uri()
    # The index on disk was swapped in whole, with no build folder left behind.
    assert sorted(p.name for p in (data / "index").iterdir()) == [".lock", "local"]


def _jsonl_source(tmp_path: Path, rows: list[dict]) -> Path:
    """A registered JSONL source of these pages; returns the data dir."""
    data = tmp_path / "data"
    f = tmp_path / "docs.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    register_source(data, f)
    return data


async def test_jsonl_source(tmp_path):
    rows = [
        {
            "url": "https://intranet.example/a",
            "title": "Holiday policy",
            "text": "Staff get 30 days of paid leave.",
        },
        {
            "url": "https://intranet.example/b",
            "title": "Parking",
            "text": "Parking permits are issued by facilities.",
        },
    ]
    index = index_of(Ingestor(_jsonl_source(tmp_path, rows), include_default_corpus=False))
    hits = await index.search("how many days of paid leave", max_results=2)
    assert hits[0].url == "https://intranet.example/a" and hits[0].title == "Holiday policy"
    assert [p.text for p in index.page_passages("https://intranet.example/a")] == [rows[0]["text"]]


async def test_a_name_searched_without_its_accents_finds_the_page(tmp_path):
    rows = [
        {
            "url": "https://x.example/gospic",
            "title": "Gospić",
            "text": "Tesla was returned to Gospić in 1879.",
        },
        {
            "url": "https://x.example/karlovac",
            "title": "Karlovac",
            "text": "Tesla studied in Karlovac in 1873.",
        },
    ]
    index = index_of(Ingestor(_jsonl_source(tmp_path, rows), include_default_corpus=False))
    hits = await index.search("Where is Gospic?", max_results=2)
    assert [h.url for h in hits] == ["https://x.example/gospic"]


def test_an_index_made_by_another_analyzer_is_rebuilt(tmp_path, monkeypatch):
    import answer_engine.ingest as ingest

    data = tmp_path / "data"
    f = tmp_path / "docs.jsonl"
    f.write_text(
        json.dumps({"url": "https://x.example/a", "title": "A", "text": "Gears and widgets."}) + "\n"
    )
    register_source(data, f)
    meta = data / "index" / "local" / "meta.json"
    Ingestor(data, include_default_corpus=False).ensure()
    before = json.loads(meta.read_text())["fingerprint"]
    monkeypatch.setattr(ingest, "ANALYZER_VERSION", ingest.ANALYZER_VERSION + 1)
    Ingestor(data, include_default_corpus=False).ensure()
    assert json.loads(meta.read_text())["fingerprint"] != before


def test_bad_jsonl_line_is_a_clear_error(tmp_path):
    data = tmp_path / "data"
    f = tmp_path / "bad.jsonl"
    f.write_text(
        '{"url": "https://x.example", "title": "t", "text": "fine text here"}\n{"title": "no url"}\n'
    )
    register_source(data, f)
    with pytest.raises(SearchError, match=r"bad.jsonl:2"):
        Ingestor(data, include_default_corpus=False).ensure()
    assert not (data / "index" / "local").exists()  # nothing half-written


def test_register_and_unregister(tmp_path):
    data = tmp_path / "data"
    with pytest.raises(SearchError):
        register_source(data, tmp_path / "missing")
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(SearchError, match="jsonl"):
        register_source(data, tmp_path / "x.txt")
    register_source(data, tmp_path)
    register_source(data, tmp_path)  # idempotent
    assert registered_sources(data) == [tmp_path.resolve()]
    assert unregister_source(data, tmp_path)
    assert not unregister_source(data, tmp_path)
    assert registered_sources(data) == []


def test_rebuild_is_skipped_when_nothing_changed(shared_data_dir):
    meta = shared_data_dir / "index" / "local" / "meta.json"
    before = os.stat(meta).st_mtime_ns
    time.sleep(0.01)
    Ingestor(shared_data_dir).ensure()  # a fresh instance checks, it does not rebuild
    assert os.stat(meta).st_mtime_ns == before


def test_a_new_passage_size_rebuilds(tmp_path):
    data = tmp_path / "data"
    f = tmp_path / "docs.jsonl"
    text = " ".join(f"Sentence number {i} says something about widgets and gears." for i in range(40))
    f.write_text(json.dumps({"url": "https://x.example/a", "title": "A", "text": text}) + "\n")
    register_source(data, f)
    assert Ingestor(data, include_default_corpus=False, passage_words=90).ensure().passages == len(
        chunk_text(text, 90)
    )
    assert Ingestor(data, include_default_corpus=False, passage_words=30).ensure().passages == len(
        chunk_text(text, 30)
    )


class CountingEmbedder:
    """Stands in for MiniLM: a vector per text that encodes its position, to check ids line up."""

    calls = 0

    def encode(self, texts):
        CountingEmbedder.calls += 1
        return np.array([[float(len(t)), 1.0, 0.0, 0.0] for t in texts], dtype=np.float32)


def test_embeddings_are_stored_by_passage_id_and_serve_callers_without_them(tmp_path):
    """Building without an embedder must not throw away an index built with one (a minute of work)."""
    CountingEmbedder.calls = 0
    data = tmp_path / "data"
    f = tmp_path / "docs.jsonl"
    rows = [
        {
            "url": f"https://x.example/{i}",
            "title": t,
            "text": f"{t} beta gamma delta epsilon zeta eta theta {'x ' * i}",
        }
        for i, t in enumerate(["Alpha", "Bravo", "Charlie"])
    ]
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    register_source(data, f)
    ingestor = Ingestor(data, include_default_corpus=False, embedder=CountingEmbedder())
    ingestor.ensure()
    assert CountingEmbedder.calls == 1
    index = index_of(ingestor)
    for row in rows:
        (passage,) = index.page_passages(row["url"])
        (vector,) = index.vectors([passage.id])
        assert vector[0] == len(f"{row['title']}. {passage.text}")  # the row of this passage's id
    meta = data / "index" / "local" / "meta.json"
    before = os.stat(meta).st_mtime_ns
    Ingestor(data, include_default_corpus=False).ensure()  # no embedder: no rebuild
    assert os.stat(meta).st_mtime_ns == before
    Ingestor(
        data, include_default_corpus=False, embedder=CountingEmbedder()
    ).ensure()  # still embedded: no rebuild
    assert CountingEmbedder.calls == 1


def test_manifest_content_type_with_parameters_is_still_html(shared_data_dir):
    """The shipped manifest says "text/html; charset=utf-8": its pages are extracted as HTML, so no
    passage holds markup (a manifest's content_type used to be taken whole, and the pages as text)."""
    rows = (shared_data_dir / "index" / "local" / "passages.jsonl").read_text(encoding="utf-8")
    assert "<p>" not in rows and "</a>" not in rows and "Nobel Prize" in rows
