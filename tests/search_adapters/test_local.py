"""The local search provider: it only reads an index (built in these tests by answer_engine.ingest,
the one builder) and answers searches and passage look-ups from it."""

import json
import shutil

import pytest

from answer_engine.ingest import Ingestor, register_source
from answer_engine.text import terms
from search_adapters.base import PassageStore, SearchError, SearchProvider
from search_adapters.local import LocalIndex


@pytest.fixture
def index(shared_data_dir):
    return LocalIndex(shared_data_dir / "index" / "local", analyzer=terms)


def test_is_a_search_provider_and_a_passage_store(index):
    assert isinstance(index, SearchProvider) and isinstance(index, PassageStore)


async def test_search_returns_web_shaped_results(index):
    results = await index.search("What was Maria Curie the first female recipient of?", max_results=4)
    assert results[0].url == "https://en.wikipedia.org/wiki/Warsaw"
    assert results[0].title == "Warsaw"
    assert "Nobel Prize" in results[0].snippet
    assert results[0].provider == "local"
    assert len(results) <= 4
    assert len({r.url for r in results}) == len(results)
    assert [r.score for r in results] == sorted((r.score for r in results), reverse=True)


async def test_query_of_stop_words_or_unknown_terms_returns_nothing(index):
    assert await index.search("the of and", max_results=3) == []
    assert await index.search("zzyzxqwv", max_results=3) == []


def test_passages_of_a_stored_page_and_none_for_others(index):
    passages = index.page_passages("https://en.wikipedia.org/wiki/Oxygen")
    assert passages and [p.order for p in passages] == list(range(len(passages)))
    assert any("oxygen" in p.text.lower() for p in passages)
    assert index.page_passages("https://example.com/not-here") is None
    assert index.vectors([passages[0].id]) == [None]  # built without embeddings


def test_a_missing_or_foreign_index_is_a_clear_error(tmp_path):
    with pytest.raises(SearchError, match="answer-engine index"):
        LocalIndex(tmp_path / "nothing", analyzer=terms).prepare()
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "meta.json").write_text(json.dumps({"format": 1}))
    with pytest.raises(SearchError, match="format"):
        LocalIndex(tmp_path / "old", analyzer=terms).prepare()


async def test_a_new_build_is_picked_up_without_a_restart(tmp_path):
    data = tmp_path / "data"
    f = tmp_path / "docs.jsonl"
    f.write_text(
        json.dumps({"url": "https://x.example/a", "title": "A", "text": "Zebras graze on the savanna grass."})
        + "\n"
    )
    register_source(data, f)
    ingestor = Ingestor(data, include_default_corpus=False)
    ingestor.ensure()
    index = LocalIndex(ingestor.path, analyzer=terms)  # no refresh hook: it only watches the index
    assert (await index.search("zebras", max_results=1))[0].url == "https://x.example/a"
    f.write_text(
        json.dumps({"url": "https://x.example/b", "title": "B", "text": "Okapis live in the rainforest."})
        + "\n"
    )
    ingestor.ensure()  # another process (answer-engine index) rebuilt it
    assert (await index.search("okapis", max_results=1))[0].url == "https://x.example/b"
    assert index.page_passages("https://x.example/a") is None


def test_copied_index_reads_the_same(index, shared_data_dir, tmp_path):
    shutil.copytree(shared_data_dir / "index" / "local", tmp_path / "copy")
    assert LocalIndex(tmp_path / "copy", analyzer=terms).counts() == index.counts()
