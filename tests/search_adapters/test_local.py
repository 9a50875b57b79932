import json
import os
import time
from pathlib import Path

import pytest

from answer_engine.fetch import FetchError
from search_adapters.base import SearchError, SearchProvider
from search_adapters.local import SHIPPED_CORPUS, LocalIndex, register_source, registered_sources, unregister_source


def test_is_a_search_provider(shared_data_dir):
    assert isinstance(LocalIndex(shared_data_dir), SearchProvider)


async def test_search_returns_web_shaped_results(shared_data_dir):
    index = LocalIndex(shared_data_dir)
    results = await index.search("What was Maria Curie the first female recipient of?", max_results=4)
    assert results[0].url == "https://en.wikipedia.org/wiki/Warsaw"
    assert results[0].title == "Warsaw"
    assert "Nobel Prize" in results[0].snippet
    assert results[0].provider == "local"
    assert len(results) <= 4
    assert len({r.url for r in results}) == len(results)
    assert [r.score for r in results] == sorted((r.score for r in results), reverse=True)


async def test_query_of_stop_words_or_unknown_terms_returns_nothing(shared_data_dir):
    index = LocalIndex(shared_data_dir)
    assert await index.search("the of and", max_results=3) == []
    assert await index.search("zzyzxqwv", max_results=3) == []


def test_index_covers_all_shipped_pages(shared_data_dir):
    info = LocalIndex(shared_data_dir).ensure()
    assert info.pages == 48
    manifest = (SHIPPED_CORPUS / "manifest.jsonl").read_text().splitlines()
    assert len(manifest) == 48


async def test_fetch_returns_the_stored_html_page(shared_data_dir):
    index = LocalIndex(shared_data_dir)
    page = await index.fetch("https://en.wikipedia.org/wiki/Oxygen")
    assert page.content_type == "text/html"
    assert "<footer" in page.text and "Oxygen" in page.text
    with pytest.raises(FetchError):
        await index.fetch("https://example.com/not-here")


def _user_folder(root: Path) -> Path:
    folder = root / "notes"
    folder.mkdir()
    (folder / "zorblax.md").write_text("# Zorblax engines\n\nThe zorblax engine was invented by Quentin Marlowe in 1911 "
                                        "to pump water out of tin mines in Cornwall.\n")
    (folder / "plain.txt").write_text("Frobnicating widgets requires a torque of exactly 42 newton metres, "
                                       "according to the maintenance handbook.")
    (folder / "page.html").write_text("<html><head><title>Glimmer lakes</title></head><body><nav>Home | About</nav>"
                                       "<main><h1>Glimmer lakes</h1><p>Glimmer lakes glow at night because of "
                                       "bioluminescent plankton that bloom in late summer.</p></main></body></html>")
    (folder / "ignored.bin").write_bytes(b"\x00\x01")
    return folder


async def test_user_folder_is_indexed_and_rebuilt_on_change(tmp_path):
    data = tmp_path / "data"
    folder = _user_folder(tmp_path)
    register_source(data, folder)
    index = LocalIndex(data, include_default_corpus=False)
    info = index.ensure()
    assert info.pages == 3

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


async def test_jsonl_source(tmp_path):
    data = tmp_path / "data"
    f = tmp_path / "docs.jsonl"
    rows = [{"url": "https://intranet.example/a", "title": "Holiday policy", "text": "Staff get 30 days of paid leave."},
            {"url": "https://intranet.example/b", "title": "Parking", "text": "Parking permits are issued by facilities."}]
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    register_source(data, f)
    index = LocalIndex(data, include_default_corpus=False)
    hits = await index.search("how many days of paid leave", max_results=2)
    assert hits[0].url == "https://intranet.example/a" and hits[0].title == "Holiday policy"
    page = await index.fetch("https://intranet.example/a")
    assert page.text == "Staff get 30 days of paid leave."


def test_bad_jsonl_line_is_a_clear_error(tmp_path):
    data = tmp_path / "data"
    f = tmp_path / "bad.jsonl"
    f.write_text('{"url": "https://x.example", "title": "t", "text": "fine text here"}\n{"title": "no url"}\n')
    register_source(data, f)
    with pytest.raises(SearchError, match=r"bad.jsonl:2"):
        LocalIndex(data, include_default_corpus=False).ensure()
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
    LocalIndex(shared_data_dir).ensure()  # a fresh instance loads, it does not rebuild
    assert os.stat(meta).st_mtime_ns == before


def test_index_with_embeddings_serves_callers_without_them(tmp_path):
    """Building without an embedder must not throw away an index built with one (a minute of work)."""

    class CountingEmbedder:
        calls = 0

        def encode(self, texts):
            import numpy as np

            CountingEmbedder.calls += 1
            return np.ones((len(texts), 4), dtype=np.float32)

    data = tmp_path / "data"
    f = tmp_path / "docs.jsonl"
    f.write_text(json.dumps({"url": "https://x.example/a", "title": "A", "text": "Alpha beta gamma delta epsilon zeta eta."}) + "\n")
    register_source(data, f)
    LocalIndex(data, include_default_corpus=False, embedder=CountingEmbedder()).ensure()
    assert CountingEmbedder.calls == 1
    meta = data / "index" / "local" / "meta.json"
    before = os.stat(meta).st_mtime_ns
    LocalIndex(data, include_default_corpus=False).ensure()  # no embedder: loads, no rebuild
    assert os.stat(meta).st_mtime_ns == before
    LocalIndex(data, include_default_corpus=False, embedder=CountingEmbedder()).ensure()  # still embedded: no rebuild
    assert CountingEmbedder.calls == 1
