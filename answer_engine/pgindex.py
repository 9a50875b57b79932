"""Writing the shared index in PostgreSQL (``answer-engine index --to postgres PATH…``), in the layout
``search_adapters/postgres.py`` reads.

- The schema is created and migrated by the tool (``MIGRATIONS``, one advisory lock for all writers).
- Incremental: each source file is a document with a fingerprint (size, modification time, passage
  size); only new or changed files are read, extracted, cut and embedded again; files gone from a
  path given again are removed.
- Transactional: the slow part (extraction, embedding) happens before the transaction; then one
  transaction deletes the changed documents, writes their new pages, passages and embeddings,
  and refreshes the term statistics. A failure anywhere rolls it all back, and every replica goes on
  serving the previous index; readers never see half a batch.
- Analysed by one analyzer: ``meta.analyzer`` is the ``text.ANALYZER_VERSION`` its terms were made
  by; a write to an index made by another version first analyses every stored passage again (from
  its page title and text, as written) in the same transaction, so the whole index is always one
  version's (readers refuse another: ``PostgresIndex(analyzer_version=...)``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from answer_engine.embeddings import Embedder, passage_input
from answer_engine.extract import ExtractionError, extract_page
from answer_engine.ingest import (
    SHIPPED_CORPUS,
    SourcePage,
    _source_files,
    pages_from_source,
    read_source_page,
)
from answer_engine.passages import chunk_text
from answer_engine.text import ANALYZER_VERSION, terms
from search_adapters import postgres as layout
from search_adapters.base import SearchError

log = logging.getLogger(__name__)

LOCK_KEY = 0x61652D7067  # pg_advisory lock id shared by every writer ("ae-pg")


@dataclass
class Document:
    """One source file (or upload): its pages, and the fingerprint that says whether it changed."""

    source: str
    fingerprint: str
    pages: list[SourcePage] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)  # an upload's file name, size, type, time


def under(source: str, roots: list[str]) -> bool:
    """``source`` is one of ``roots``, or a file below one of them."""
    return any(source == r or source.startswith(r.rstrip("/") + "/") for r in roots)


def passage_terms(title: str, text: str) -> list[str]:
    """A passage's indexed terms: its page's title and its text, by the engine's analyzer."""
    return terms(f"{title}\n{text}")


class PgIndexReport(BaseModel):
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    pages: int = 0
    passages: int = 0
    reanalysed: int = 0  # stored passages whose terms were made again (another analyzer version)
    schema_name: str = ""


def documents_of(source: Path, passage_words: int) -> list[Document]:
    """The documents under a path: each file one document; a folder with a ``manifest.jsonl`` (the
    shipped corpus) one document per manifest entry's file."""
    source = source.resolve()
    if source.is_dir() and (source / "manifest.jsonl").is_file():
        docs: dict[str, Document] = {}
        for page in pages_from_source(source):
            assert page.path is not None
            st = Path(page.path).stat()
            doc = docs.setdefault(
                page.path, Document(page.path, f"{st.st_size}:{st.st_mtime_ns}:{passage_words}")
            )
            doc.pages.append(page)
        return list(docs.values())
    out = []
    for f in _source_files(source):
        st = f.stat()
        out.append(
            Document(str(f), f"{st.st_size}:{st.st_mtime_ns}:{passage_words}", list(pages_from_source(f)))
        )
    return out


def Jsonb(value: dict[str, Any]) -> Any:  # noqa: N802 (psycopg's adapter, imported late)
    from psycopg.types.json import Jsonb as adapter

    return adapter(value)


def connect(url: str, timeout_s: float) -> Any:
    import psycopg

    if not url:
        raise SearchError("no PostgreSQL URL: set search.postgres_url or DATABASE_URL")
    try:
        # autocommit: each conn.transaction() block is a real transaction, not a savepoint in an implicit one
        return psycopg.connect(url, connect_timeout=max(int(timeout_s), 1), autocommit=True)
    except psycopg.Error as exc:
        raise SearchError(f"PostgreSQL is not reachable: {exc}") from exc


def migrate(conn: Any, schema: str) -> int:
    """Create the schema or bring it to ``layout.SCHEMA_VERSION``; returns the version it was at."""
    q = layout.quoted_schema(schema)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {q}")
        before = layout.schema_version(conn, schema)
        if before > layout.SCHEMA_VERSION:
            raise SearchError(
                f"schema {schema!r} is at version {before}, newer than this engine's {layout.SCHEMA_VERSION}"
            )
        for version in range(before, layout.SCHEMA_VERSION):
            conn.execute(layout.MIGRATIONS[version].format(s=q))
            conn.execute(
                f"INSERT INTO {q}.meta (key, value) VALUES ('schema_version', %s) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(version + 1),),
            )
        if before == 0:  # a new index: its (no) terms are this analyzer's
            conn.execute(
                f"INSERT INTO {q}.meta (key, value) VALUES ('analyzer', %s) ON CONFLICT (key) DO NOTHING",
                (str(ANALYZER_VERSION),),
            )
    return before


class PostgresIngestor:
    """Writes documents into the index in ``schema`` (blocking: call it in a thread from async code)."""

    def __init__(
        self,
        url: str,
        *,
        schema: str = "answer_engine",
        embedder: Embedder | None = None,
        passage_words: int = 90,
        timeout_s: float = 30.0,
    ) -> None:
        self.url, self.schema, self.q = url, schema, layout.quoted_schema(schema)
        self.embedder = embedder
        self.passage_words = passage_words
        self.timeout_s = timeout_s

    def sync(self, sources: list[Path]) -> PgIndexReport:
        """Index these paths: new and changed files written, unchanged ones left, files that are gone
        from under them removed. ``[]``: the shipped corpus."""
        sources = [Path(s).resolve() for s in sources] or [SHIPPED_CORPUS]
        for s in sources:
            if not s.exists():
                raise SearchError(f"no such file or folder: {s}")
        wanted = [d for s in sources for d in documents_of(s, self.passage_words)]
        roots = [str(s) for s in sources]
        with connect(self.url, self.timeout_s) as conn:
            migrate(conn, self.schema)
            stored = {
                src: fp
                for src, fp in conn.execute(f"SELECT source, fingerprint FROM {self.q}.documents").fetchall()
                if under(src, roots)
            }
            changed = [d for d in wanted if stored.get(d.source) != d.fingerprint]
            gone = sorted(set(stored) - {d.source for d in wanted})
            report = self._write(conn, changed, gone)
        report.unchanged = len(wanted) - len(changed)
        report.added = sum(d.source not in stored for d in changed)
        report.updated = len(changed) - report.added
        return report

    def remove(self, sources: list[str]) -> PgIndexReport:
        """Remove documents by source (a path, or everything under a folder, or an upload's id)."""
        with connect(self.url, self.timeout_s) as conn:
            migrate(conn, self.schema)
            stored = [r[0] for r in conn.execute(f"SELECT source FROM {self.q}.documents").fetchall()]
            gone = [s for s in stored if under(s, sources)]
            return self._write(conn, [], gone)

    def put(self, documents: list[Document]) -> PgIndexReport:
        """Write these documents whatever their fingerprint (uploads), replacing ones of the same source."""
        with connect(self.url, self.timeout_s) as conn:
            migrate(conn, self.schema)
            return self._write(conn, documents, [])

    # -- the one write path

    def _prepare(self, doc: Document) -> list[tuple[SourcePage, str, list[str]]]:
        """(page, title, passages) of a document: extracted and cut, outside any transaction."""
        out = []
        for page in doc.pages:
            try:
                extracted = extract_page(read_source_page(page))
            except ExtractionError as exc:
                log.warning("skipping %s: %s", page.url, exc)
                continue
            texts = chunk_text(extracted.text, self.passage_words)
            if texts:
                page.date = page.date or extracted.date
                out.append((page, page.title or extracted.title, texts))
        return out

    def _write(self, conn: Any, docs: list[Document], gone: list[str]) -> PgIndexReport:
        prepared = [(d, self._prepare(d)) for d in docs]
        rows = [
            (d, page, title, text) for d, pages in prepared for page, title, texts in pages for text in texts
        ]
        vectors: list[bytes | None] = [None] * len(rows)
        if self.embedder is not None and rows:
            import numpy as np

            log.info("embedding %d passages", len(rows))
            matrix = self.embedder.encode([passage_input(title, text) for _, _, title, text in rows])
            vectors = [np.asarray(v, dtype=np.float32).tobytes() for v in matrix]
        import psycopg

        try:
            return self._commit(conn, prepared, rows, vectors, gone)
        except psycopg.Error as exc:
            raise SearchError(f"writing the PostgreSQL index failed, nothing was changed: {exc}") from exc

    def _commit(
        self,
        conn: Any,
        prepared: list[tuple[Document, list[tuple[SourcePage, str, list[str]]]]],
        rows: list[tuple[Document, SourcePage, str, str]],
        vectors: list[bytes | None],
        gone: list[str],
    ) -> PgIndexReport:
        """One transaction: the changed documents replaced, the gone ones deleted, the stats refreshed."""
        q = self.q
        report = PgIndexReport(schema_name=self.schema, removed=len(gone))
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            report.reanalysed = self._reanalyse(conn)
            sources = gone + [d.source for d, _ in prepared]
            if sources:
                conn.execute(f"DELETE FROM {q}.documents WHERE source = ANY(%s)", (sources,))
            page_ids: dict[tuple[str, str], int | None] = {}
            for doc, pages in prepared:
                (doc_id,) = conn.execute(
                    f"INSERT INTO {q}.documents (source, fingerprint, info) VALUES (%s, %s, %s) RETURNING id",
                    (doc.source, doc.fingerprint, Jsonb(doc.info)),
                ).fetchone()
                for page, title, _ in pages:
                    got = conn.execute(
                        f"INSERT INTO {q}.pages (document_id, url, title, date) VALUES (%s, %s, %s, %s) "
                        "ON CONFLICT (url) DO NOTHING RETURNING id",
                        (doc_id, page.url, title, page.date),
                    ).fetchone()
                    if got is None:
                        log.warning("%s is already indexed from another document; kept that one", page.url)
                    page_ids[(doc.source, page.url)] = got[0] if got else None
            orders: dict[int, int] = {}
            with conn.cursor().copy(
                f"COPY {q}.passages (page_id, ord, body, terms, n_terms, embedding) FROM STDIN"
            ) as copy:
                for (doc, page, title, text), vector in zip(rows, vectors):
                    pid = page_ids.get((doc.source, page.url))
                    if pid is None:
                        continue
                    words = passage_terms(title, text)
                    order = orders.get(pid, 0)
                    orders[pid] = order + 1
                    copy.write_row((pid, order, text, layout.tsvector_literal(words), len(words), vector))
                    report.passages += 1
            report.pages = sum(1 for v in page_ids.values() if v is not None)
            conn.execute(f"DELETE FROM {q}.term_stats")
            conn.execute(
                f"INSERT INTO {q}.term_stats (term, df) SELECT word, ndoc FROM ts_stat(%s)",
                (f"SELECT terms FROM {q}.passages",),
            )
            total, avg = conn.execute(
                f"SELECT count(*), coalesce(avg(n_terms), 1) FROM {q}.passages"
            ).fetchone()
            for key, value in (
                ("passages", total),
                ("avg_terms", float(avg)),
                ("embedded", self.embedder is not None),
                ("analyzer", ANALYZER_VERSION),
            ):
                conn.execute(
                    f"INSERT INTO {q}.meta (key, value) VALUES (%s, %s) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (key, str(value)),
                )
            conn.execute(  # every replica's search cache keys on it: no stale hits after this write
                f"INSERT INTO {q}.meta (key, value) VALUES ('generation', '1') ON CONFLICT (key) "
                "DO UPDATE SET value = (meta.value::bigint + 1)::text"
            )
        return report

    def _reanalyse(self, conn: Any) -> int:
        """Inside the write's transaction: when the stored terms were made by another analyzer
        version, every passage's terms made again from its page title and text (``passage_terms``,
        as ``_commit`` makes them). Returns how many passages were analysed again (0 when the index
        is current)."""
        q = self.q
        if layout.analyzer_version(conn, self.schema) == ANALYZER_VERSION:
            return 0
        stored = conn.execute(
            f"SELECT p.id, g.title, p.body FROM {q}.passages p JOIN {q}.pages g ON g.id = p.page_id"
        ).fetchall()
        if not stored:
            return 0
        log.info("analysing %d stored passages again (analyzer version %s)", len(stored), ANALYZER_VERSION)
        conn.execute(
            "CREATE TEMP TABLE reanalysed (id bigint, terms tsvector, n_terms integer) ON COMMIT DROP"
        )
        with conn.cursor().copy("COPY reanalysed (id, terms, n_terms) FROM STDIN") as copy:
            for pid, title, body in stored:
                words = passage_terms(title, body)
                copy.write_row((pid, layout.tsvector_literal(words), len(words)))
        conn.execute(
            f"UPDATE {q}.passages p SET terms = r.terms, n_terms = r.n_terms "
            "FROM reanalysed r WHERE p.id = r.id"
        )
        return len(stored)

    def documents(self, prefix: str = "") -> list[dict[str, Any]]:
        """What the index holds (sources starting with ``prefix``): each document's source, info,
        pages and passages, newest first."""
        q = self.q
        with connect(self.url, self.timeout_s) as conn:
            migrate(conn, self.schema)
            rows = conn.execute(
                "SELECT d.source, d.info, d.indexed_at, count(DISTINCT g.id), count(p.id), min(g.title), "
                f"min(g.url) FROM {q}.documents d LEFT JOIN {q}.pages g ON g.document_id = d.id "
                f"LEFT JOIN {q}.passages p ON p.page_id = g.id WHERE starts_with(d.source, %s) "
                "GROUP BY d.id ORDER BY d.indexed_at DESC",
                (prefix,),
            ).fetchall()
        return [
            {
                "source": s,
                "info": info,
                "indexed_at": at.isoformat(),
                "pages": n,
                "passages": m,
                "title": t,
                "url": u,
            }
            for s, info, at, n, m, t, u in rows
        ]
