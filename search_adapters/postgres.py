"""A shared index in PostgreSQL: every replica reads the same pages, passages and embeddings.

This module owns the layout (``MIGRATIONS``) and *reads* it; ``answer_engine/pgindex.py`` writes it
(``answer-engine index --to postgres``), as ``local.py`` / ``ingest.py`` split the on-disk index. The
tokenizer the passages were indexed with is handed in as ``analyzer``, so a query is analysed exactly
as they were.

Layout, in one schema (``search.postgres_schema``):
- ``meta``: key/value: ``schema_version``, ``generation`` (counts the writes), ``passages`` and
  ``avg_terms`` (for BM25), ``embedded``, ``analyzer`` (the version of the analyzer its terms were
  made by: a query analysed by another would miss them, so a reader given ``analyzer_version``
  refuses an index of another one);
- ``documents``: one source file (or upload) per row, with the fingerprint that says it changed and
  ``info`` (an upload's file name, size, type, time);
- ``pages``: url (unique), title, date, the document it came from (deleted with it);
- ``passages``: page, order, text, ``terms`` (a tsvector of the analyzer's terms with positions,
  GIN-indexed), ``n_terms``, ``embedding`` (float32 bytes; pgvector is not assumed);
- ``term_stats``: document frequency of every term, refreshed in the writer's transaction.

A query: PostgreSQL's full-text search finds the candidates (an OR of the query's terms, its most
common ones left out, and on a large corpus only its rarest ones up to ``MAX_MATCHES`` passages,
ranked by ``ts_rank_cd``), then the candidates are scored by BM25 with the
corpus-wide document frequencies from ``term_stats`` and the term frequencies their tsvectors'
positions give, and pages are ranked by their best passage, as the on-disk index ranks them. The
result pages' passages and embeddings come back in one more query (binary, so embeddings cross as
bytes) and serve the engine's ``PassageStore`` calls without another.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from search_adapters.base import (
    IndexedPassage,
    PassageStore,
    SearchError,
    SearchProvider,
    SearchResult,
    bm25_idf,
)
from search_adapters.filters import SearchFilters
from search_adapters.textutil import truncate_words

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
SNIPPET_CHARS = 300
CANDIDATES = 256  # passages PostgreSQL ranks for us to score
MAX_QUERY_TERMS = 16
COMMON_SHARE = 0.05  # a query term in more passages than this share is left out of the candidate search...
MIN_QUERY_TERMS = 3  # ... unless fewer than this many would be left
# PostgreSQL ranks every passage matching one of the candidate terms: on a large corpus the rarest
# terms are kept only while the passages they match (by term_stats) stay under this many
MAX_MATCHES = 20_000
BM25_K1, BM25_B = 1.5, 0.75
CACHED_PAGES = 512  # result pages whose passages stay in memory for the PassageStore calls
SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
TERM_RE = re.compile(r"^\w+$")

Analyzer = Callable[[str], list[str]]

# Each entry takes the schema from version i to i + 1 ({s} is the schema's quoted name).
MIGRATIONS: list[str] = [
    """
    CREATE TABLE IF NOT EXISTS {s}.meta (key text PRIMARY KEY, value text NOT NULL);
    CREATE TABLE {s}.documents (
        id bigserial PRIMARY KEY,
        source text NOT NULL UNIQUE,
        fingerprint text NOT NULL,
        indexed_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE {s}.pages (
        id bigserial PRIMARY KEY,
        document_id bigint NOT NULL REFERENCES {s}.documents(id) ON DELETE CASCADE,
        url text NOT NULL UNIQUE,
        title text NOT NULL,
        date text
    );
    CREATE INDEX ON {s}.pages (document_id);
    CREATE TABLE {s}.passages (
        id bigserial PRIMARY KEY,
        page_id bigint NOT NULL REFERENCES {s}.pages(id) ON DELETE CASCADE,
        ord integer NOT NULL,
        body text NOT NULL,
        terms tsvector NOT NULL,
        n_terms integer NOT NULL,
        embedding bytea
    );
    CREATE INDEX ON {s}.passages USING gin (terms);
    CREATE INDEX ON {s}.passages (page_id, ord);
    CREATE TABLE {s}.term_stats (term text PRIMARY KEY, df integer NOT NULL);
    """,
    # 2: what the library view shows of an uploaded document (file name, size, type, when)
    """
    ALTER TABLE {s}.documents ADD COLUMN info jsonb NOT NULL DEFAULT '{{}}'::jsonb;
    """,
]


def quoted_schema(schema: str) -> str:
    if not SCHEMA_RE.match(schema):
        raise SearchError(f"invalid PostgreSQL schema name {schema!r}", provider="postgres")
    return f'"{schema}"'


def tsvector_literal(words: list[str]) -> str:
    """The analyzer's terms as a tsvector with positions (PostgreSQL's own parser would split them
    differently; our terms are \\w+ so they need no escaping, and positions stop at 16383)."""
    return " ".join(f"'{w}':{min(i + 1, 16383)}" for i, w in enumerate(words) if TERM_RE.match(w))


def connect_pool(url: str, *, size: int, timeout_s: float) -> Any:
    from psycopg_pool import ConnectionPool

    pool = ConnectionPool(
        url,
        min_size=1,
        max_size=size,
        timeout=timeout_s,
        open=False,
        kwargs={
            "connect_timeout": max(int(timeout_s), 1),
            "options": f"-c statement_timeout={int(timeout_s * 1000)}",
        },
    )
    pool.open(wait=True, timeout=timeout_s)
    return pool


# An index written before ``meta.analyzer`` was kept was made by the first analyzer.
UNSTAMPED_ANALYZER = 1


def analyzer_version(conn: Any, schema: str) -> int:
    """The version of the analyzer the index's terms were made by (``meta.analyzer``)."""
    row = conn.execute(f"SELECT value FROM {quoted_schema(schema)}.meta WHERE key = 'analyzer'").fetchone()
    return int(row[0]) if row else UNSTAMPED_ANALYZER


def schema_version(conn: Any, schema: str) -> int:
    q = quoted_schema(schema)
    exists = conn.execute("SELECT to_regclass(%s)", (f"{q}.meta",)).fetchone()[0]
    if exists is None:
        return 0
    row = conn.execute(f"SELECT value FROM {q}.meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else 0


class PostgresIndex(SearchProvider, PassageStore):
    """Queries the index in ``schema`` at ``url`` through a small connection pool."""

    name = "postgres"

    def __init__(
        self,
        url: str,
        *,
        analyzer: Analyzer,
        analyzer_version: int | None = None,
        schema: str = "answer_engine",
        pool_size: int = 4,
        timeout_s: float = 5.0,
    ) -> None:
        if not url:
            raise SearchError("no PostgreSQL URL (search.postgres_url or DATABASE_URL)", provider="postgres")
        self.url, self.schema, self.q = url, schema, quoted_schema(schema)
        self.analyzer, self.analyzer_version = analyzer, analyzer_version
        self.pool_size, self.timeout_s = pool_size, timeout_s
        self._pool: Any = None
        self._lock = threading.Lock()
        self._pages: OrderedDict[str, list[IndexedPassage]] = OrderedDict()
        self._vectors: dict[int, Any] = {}
        self._generation: str | None = None

    # -- connections (blocking; call in a thread from async code)

    def prepare(self) -> None:
        with self._lock:
            if self._pool is not None:
                return
            try:
                pool = connect_pool(self.url, size=self.pool_size, timeout_s=self.timeout_s)
            except Exception as exc:
                raise SearchError(f"PostgreSQL is not reachable: {exc}", provider="postgres") from exc
            with pool.connection() as conn:
                version = schema_version(conn, self.schema)
                analysed = analyzer_version(conn, self.schema) if version else None
            problem = None
            if version != SCHEMA_VERSION:
                problem = f"is at version {version}, expected {SCHEMA_VERSION}"
            elif self.analyzer_version is not None and analysed != self.analyzer_version:
                problem = (
                    f"was analysed by analyzer version {analysed}, this engine's is {self.analyzer_version}"
                )
            if problem:
                pool.close()
                raise SearchError(
                    f"the PostgreSQL index in schema {self.schema!r} {problem}: run `answer-engine index "
                    "--to postgres`",
                    provider="postgres",
                )
            self._pool = pool

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None

    def _query(
        self, sql: str, params: tuple[Any, ...] = (), *, binary: bool = False
    ) -> list[tuple[Any, ...]]:
        """Rows of one query. ``binary``: results in PostgreSQL's binary format (embeddings cross as
        their bytes, not as hex text twice their size)."""
        self.prepare()
        try:
            with self._pool.connection() as conn:
                return conn.execute(sql, params, binary=binary).fetchall()
        except SearchError:
            raise
        except Exception as exc:
            raise SearchError(
                f"PostgreSQL query failed: {type(exc).__name__}: {exc}", provider="postgres"
            ) from exc

    # -- SearchProvider

    def search_sync(self, query: str, max_results: int) -> list[SearchResult]:
        words = list(dict.fromkeys(w for w in self.analyzer(query) if TERM_RE.match(w)))[:MAX_QUERY_TERMS]
        if not words:
            return []
        q = self.q
        n_passages, avg_terms, df = self._term_stats(words)
        present = [w for w in words if df.get(w)]
        if not present or not n_passages:
            return []
        rare = [w for w in present if df[w] <= COMMON_SHARE * n_passages]
        if len(rare) < MIN_QUERY_TERMS:
            rare = sorted(present, key=lambda w: df[w])[:MIN_QUERY_TERMS]
        kept, matches = [], 0
        for w in sorted(rare, key=lambda w: df[w]):
            if kept and matches + df[w] > MAX_MATCHES:
                break
            kept.append(w)
            matches += df[w]
        rare = kept
        tsquery = " | ".join(f"'{w}'" for w in rare)
        # the candidates' term frequencies come from their tsvectors (a lexeme's positions), so no
        # passage text crosses the wire or is tokenised again here
        rows = self._query(
            f"WITH c AS (SELECT id, page_id, n_terms, terms FROM {q}.passages WHERE terms @@ %s::tsquery "
            f"ORDER BY ts_rank_cd(terms, %s::tsquery) DESC, id LIMIT {CANDIDATES}) "
            "SELECT c.id, c.page_id, c.n_terms, u.lexeme, array_length(u.positions, 1) "
            "FROM c, unnest(c.terms) u WHERE u.lexeme = ANY(%s)",
            (tsquery, tsquery, present),
        )
        idf = {w: bm25_idf(n_passages, df[w]) for w in present}
        scores: dict[int, float] = {}
        page_of: dict[int, int] = {}
        for pid, page, n_terms, word, tf in rows:
            norm = BM25_K1 * (1 - BM25_B + BM25_B * n_terms / avg_terms)
            scores[pid] = scores.get(pid, 0.0) + idf[word] * tf * (BM25_K1 + 1) / (tf + norm)
            page_of[pid] = page
        best: dict[int, tuple[float, int]] = {}  # page -> (its best passage's score, that passage)
        for pid, score in scores.items():
            page = page_of[pid]
            if score > 0 and (
                page not in best or score > best[page][0] or (score == best[page][0] and pid < best[page][1])
            ):
                best[page] = (score, pid)
        ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[0]))[:max_results]
        if not ranked:
            return []
        pages, bodies = self._load_pages([page for page, _ in ranked])
        return [
            SearchResult(
                url=pages[page][0],
                title=pages[page][1],
                date=pages[page][2],
                snippet=truncate_words(bodies[pid], SNIPPET_CHARS),
                provider=self.name,
                score=round(score, 4),
            )
            for page, (score, pid) in ranked
        ]

    def _load_pages(
        self, page_ids: list[int]
    ) -> tuple[dict[int, tuple[str, str, str | None]], dict[int, str]]:
        """Url/title/date of these pages and their passages' texts by id; all their passages and
        embeddings go into the cache the PassageStore calls read."""
        q = self.q
        rows = self._query(
            f"SELECT g.id, g.url, g.title, g.date, p.id, p.ord, p.body, p.embedding FROM {q}.pages g "
            f"JOIN {q}.passages p ON p.page_id = g.id WHERE g.id = ANY(%s) ORDER BY g.id, p.ord",
            (page_ids,),
            binary=True,
        )
        return self._remember(rows), {r[4]: r[6] for r in rows}

    def _remember(self, rows: list[tuple[Any, ...]]) -> dict[int, tuple[str, str, str | None]]:
        import numpy as np

        pages: dict[int, tuple[str, str, str | None]] = {}
        passages: dict[str, list[IndexedPassage]] = {}
        with self._lock:
            for gid, url, title, date, pid, order, body, emb in rows:
                pages[gid] = (url, title, date)
                passages.setdefault(url, []).append(IndexedPassage(id=pid, order=order, text=body))
                if emb is not None:
                    self._vectors[pid] = np.frombuffer(bytes(emb), dtype=np.float32)
            for url, stored in passages.items():
                self._pages[url] = stored
                self._pages.move_to_end(url)
            while len(self._pages) > CACHED_PAGES:
                _, dropped = self._pages.popitem(last=False)
                for p in dropped:
                    self._vectors.pop(p.id, None)
        return pages

    async def search(
        self, query: str, *, max_results: int, filters: SearchFilters | None = None
    ) -> list[SearchResult]:
        return await asyncio.to_thread(self.search_sync, query, max_results)

    def generation_sync(self) -> str:
        """The index's write counter; a new one also empties the cached passages (their page may
        have been re-indexed under new passage ids)."""
        rows = self._query(f"SELECT value FROM {self.q}.meta WHERE key = 'generation'")
        value = rows[0][0] if rows else "0"
        with self._lock:
            if value != self._generation:
                self._pages.clear()
                self._vectors.clear()
                self._generation = value
        return f"postgres:{self.schema}:{value}"

    async def generation(self) -> str:
        return await asyncio.to_thread(self.generation_sync)

    # -- PassageStore

    def page_passages(self, url: str) -> list[IndexedPassage] | None:
        with self._lock:
            if url in self._pages:
                return self._pages[url]
        q = self.q
        rows = self._query(
            f"SELECT g.id, g.url, g.title, g.date, p.id, p.ord, p.body, p.embedding FROM {q}.pages g "
            f"JOIN {q}.passages p ON p.page_id = g.id WHERE g.url = %s ORDER BY p.ord",
            (url,),
        )
        if not rows:
            return None
        self._remember(rows)
        with self._lock:
            return self._pages.get(url)

    def vectors(self, ids: list[int]) -> list[Any]:
        with self._lock:
            return [self._vectors.get(i) for i in ids]

    def idf(self, words: list[str]) -> dict[str, float] | None:
        words = list(dict.fromkeys(words))[:MAX_QUERY_TERMS]
        n_passages, _, df = self._term_stats(words)
        if not n_passages:
            return None
        return {w: bm25_idf(n_passages, int(df.get(w, 0))) for w in words}

    def _term_stats(self, words: list[str]) -> tuple[int, float, dict[str, int]]:
        """(passages in the index, their mean number of terms, the document frequency of each of
        ``words`` the index holds), in one round trip."""
        q = self.q
        n_passages, avg_terms, df = self._query(
            f"SELECT (SELECT value FROM {q}.meta WHERE key = 'passages'), "
            f"(SELECT value FROM {q}.meta WHERE key = 'avg_terms'), "
            f"(SELECT coalesce(json_object_agg(term, df), '{{}}') FROM {q}.term_stats WHERE term = ANY(%s))",
            (words,),
        )[0]
        return int(n_passages or 0), float(avg_terms or 1.0), df or {}

    def counts(self) -> tuple[int, int]:
        """(pages, passages) in the index."""
        q = self.q
        row = self._query(f"SELECT (SELECT count(*) FROM {q}.pages), (SELECT count(*) FROM {q}.passages)")[0]
        return int(row[0]), int(row[1])
