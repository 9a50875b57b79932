"""The shared index in PostgreSQL, against the real server on 127.0.0.1:5432 (a schema per test):
written by the engine's writer, read by the provider; incremental, transactional, migrated."""

import json
import time

import psycopg
import pytest

from answer_engine.pgindex import PostgresIngestor, migrate
from answer_engine.text import terms
from search_adapters import postgres as layout
from search_adapters.base import SearchError, bm25_idf
from search_adapters.postgres import PostgresIndex

PAGES = {
    "tides.md": "# Tides\n\nThe Moon pulls the oceans and makes the tides rise and fall twice a day. "
    "Spring tides happen when the Sun and the Moon line up.",
    "glaciers.txt": "Glaciers are rivers of ice that move slowly downhill under their own weight. "
    "The Aletsch Glacier is the largest glacier in the Alps.",
    "paris.html": "<html><head><title>Paris</title></head><body><main><h1>Paris</h1>"
    "<p>Paris is the capital of France and sits on the river Seine. The Eiffel Tower was "
    "completed in 1889 for the World's Fair.</p></main></body></html>",
}


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "docs"
    d.mkdir()
    for name, text in PAGES.items():
        (d / name).write_text(text, encoding="utf-8")
    return d


@pytest.fixture
def writer(pg_url, pg_schema):
    return PostgresIngestor(pg_url, schema=pg_schema, passage_words=40)


@pytest.fixture
def index(pg_url, pg_schema):
    idx = PostgresIndex(pg_url, analyzer=terms, schema=pg_schema, pool_size=2)
    yield idx
    idx.close()


def test_written_then_searched_with_its_passages(folder, writer, index):
    report = writer.sync([folder])
    assert (report.added, report.updated, report.unchanged, report.removed) == (3, 0, 0, 0)
    assert report.pages == 3 and report.passages >= 3
    results = index.search_sync("When was the Eiffel Tower completed?", 3)
    assert results[0].title == "paris" and results[0].provider == "postgres"  # titled by file name
    assert results[0].url == (folder / "paris.html").as_uri()
    assert index.search_sync("largest glacier in the Alps", 1)[0].url.endswith("glaciers.txt")
    # the PassageStore: the stored passages, with ids, in page order; no embeddings were written
    stored = index.page_passages(results[0].url)
    assert stored and "1889" in " ".join(p.text for p in stored)
    assert [p.order for p in stored] == list(range(len(stored)))
    assert index.vectors([p.id for p in stored]) == [None] * len(stored)
    assert index.page_passages("https://example.org/not-indexed") is None
    assert index.search_sync("zebra quantum", 3) == []
    assert index.counts() == (3, report.passages)
    # term rarity for the answerability gate, from the corpus-wide term_stats
    idf = index.idf(["eiffel", "zebra"])
    assert idf["zebra"] == pytest.approx(bm25_idf(report.passages, 0)) and idf["zebra"] > idf["eiffel"] > 0


def test_only_changed_files_are_written_again(folder, writer, index):
    writer.sync([folder])
    assert writer.sync([folder]).unchanged == 3
    time.sleep(0.01)
    (folder / "tides.md").write_text(
        "# Tides\n\nNeap tides are the weakest tides of the month.", encoding="utf-8"
    )
    (folder / "glaciers.txt").unlink()
    report = writer.sync([folder])
    assert (report.added, report.updated, report.unchanged, report.removed) == (0, 1, 1, 1)
    assert index.search_sync("Neap tides weakest", 1)[0].url.endswith("tides.md")
    assert index.search_sync("Aletsch Glacier", 3) == []
    assert index.counts()[0] == 2


def test_a_failed_batch_leaves_the_previous_index_serving(tmp_path, folder, writer, index):
    writer.sync([folder])
    before = index.search_sync("Eiffel Tower", 3)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "ok.txt").write_text("Volcanoes erupt molten rock called lava onto the surface.", encoding="utf-8")
    # PostgreSQL refuses a NUL character in text: the write fails inside the transaction
    (bad / "pages.jsonl").write_text(
        json.dumps(
            {"url": "https://example.org/nul", "title": "Nul", "text": "Lava\u0000flows are hot and slow."}
        )
        + "\n",
        encoding="utf-8",
    )
    with pytest.raises(SearchError, match="nothing was changed"):
        writer.sync([folder, bad])
    assert index.search_sync("Eiffel Tower", 3) == before
    assert index.search_sync("volcanoes lava molten", 3) == []
    assert writer.sync([folder]).unchanged == 3  # the previous batch's record is intact


def test_embeddings_are_stored_beside_the_passages(folder, pg_url, pg_schema, index):
    class Embedder:  # the embedding model's edge: deterministic vectors from the text
        def encode(self, texts):
            import numpy as np

            return np.array([[len(t) % 7, len(t) % 5, 1.0] for t in texts], dtype=np.float32)

    PostgresIngestor(pg_url, schema=pg_schema, passage_words=40, embedder=Embedder()).sync([folder])
    result = index.search_sync("Eiffel Tower", 1)[0]
    stored = index.page_passages(result.url)
    (vec, *_) = index.vectors([stored[0].id])
    assert vec.dtype.name == "float32" and vec.shape == (3,) and vec[2] == 1.0


def test_schema_is_created_and_migrated(pg_url, pg_schema, folder):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{pg_schema}"')
        conn.execute(layout.MIGRATIONS[0].format(s=f'"{pg_schema}"'))
        conn.execute(f"""INSERT INTO "{pg_schema}".meta VALUES ('schema_version', '1')""")
        reader = PostgresIndex(pg_url, analyzer=terms, schema=pg_schema)
        with pytest.raises(SearchError, match="version 1, expected 2"):
            reader.prepare()
        assert migrate(conn, pg_schema) == 1
        assert layout.schema_version(conn, pg_schema) == layout.SCHEMA_VERSION
        cols = {
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = 'documents'",
                (pg_schema,),
            )
        }
        assert "info" in cols
        assert migrate(conn, pg_schema) == layout.SCHEMA_VERSION  # idempotent


def _unfolded_terms(text):
    """The analyzer before version 2: accents kept ("gospić" and "gospic" two terms)."""
    import Stemmer

    from answer_engine.text import TOKEN_RE, stopwords

    words = [w for w in TOKEN_RE.findall(text.lower()) if w not in stopwords()]
    return Stemmer.Stemmer("english").stemWords(words)


def test_an_index_made_by_another_analyzer_is_refused_then_analysed_again(
    pg_url, pg_schema, folder, writer, monkeypatch
):
    import answer_engine.pgindex as pgindex
    from answer_engine.text import ANALYZER_VERSION

    (folder / "tesla-return.md").write_text(
        "# Gospić\n\nTesla was returned to Gospić in 1879.", encoding="utf-8"
    )
    with monkeypatch.context() as old:  # written by the version-1 analyzer, as an older engine did
        old.setattr(pgindex, "terms", _unfolded_terms)
        old.setattr(pgindex, "ANALYZER_VERSION", 1)
        assert writer.sync([folder]).reanalysed == 0
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert layout.analyzer_version(conn, pg_schema) == 1
    current = PostgresIndex(pg_url, analyzer=terms, analyzer_version=ANALYZER_VERSION, schema=pg_schema)
    with pytest.raises(SearchError, match="analyzer version 1, this engine's is 2: run `answer-engine index"):
        current.prepare()
    unchecked = PostgresIndex(pg_url, analyzer=terms, schema=pg_schema)
    assert unchecked.search_sync("Where is Gospic?", 3) == []  # what the check is for
    unchecked.close()
    # any write analyses every stored passage again, in its transaction; nothing else is re-read
    report = writer.sync([folder])
    assert report.unchanged == 4 and report.reanalysed >= 4
    hits = current.search_sync("Where is Gospic?", 3)
    assert [h.url for h in hits] == [(folder / "tesla-return.md").as_uri()]
    assert current.search_sync("When was the Eiffel Tower completed?", 1)[0].title == "paris"
    assert writer.sync([folder]).reanalysed == 0  # once
    current.close()


def test_a_new_index_is_stamped_with_the_analyzer(pg_url, pg_schema):
    from answer_engine.text import ANALYZER_VERSION

    with psycopg.connect(pg_url, autocommit=True) as conn:
        migrate(conn, pg_schema)
        assert layout.analyzer_version(conn, pg_schema) == ANALYZER_VERSION
    empty = PostgresIndex(pg_url, analyzer=terms, analyzer_version=ANALYZER_VERSION, schema=pg_schema)
    assert empty.search_sync("anything at all", 3) == []
    empty.close()


def test_unreachable_database_is_a_clear_error():
    idx = PostgresIndex("postgresql://postgres@127.0.0.1:1/none", analyzer=terms, timeout_s=1)
    with pytest.raises(SearchError, match="not reachable"):
        idx.prepare()


def test_invalid_schema_name_is_refused(pg_url):
    with pytest.raises(SearchError, match="invalid PostgreSQL schema"):
        PostgresIndex(pg_url, analyzer=terms, schema='x"; DROP TABLE y; --')


def test_provider_needs_a_url(monkeypatch, pg_url):
    from answer_engine.components import provider_statuses
    from answer_engine.config import load_settings

    monkeypatch.delenv("DATABASE_URL", raising=False)
    (pg,) = [
        p
        for p in provider_statuses(load_settings(search={"providers": ["postgres"]}))
        if p.name == "postgres"
    ]
    assert not pg.enabled and "DATABASE_URL" in pg.why
    monkeypatch.setenv("DATABASE_URL", pg_url)  # the usual name works too
    (pg,) = [
        p
        for p in provider_statuses(load_settings(search={"providers": ["postgres"]}))
        if p.name == "postgres"
    ]
    assert pg.enabled
