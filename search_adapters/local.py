"""The embedded default search: a BM25 full-text index (bm25s) over locally stored passages.

This module only *reads* an index. Building one (reading files, extracting main text, cutting it
into passages, embedding them) is the engine's job (``answer_engine/ingest.py``), which writes
the layout below; the tokenizer the index was built with is handed in as ``analyzer``, so a
query is analysed exactly as the passages were.

Layout of an index folder (format 2):
- ``meta.json``: fingerprint, format, sources, passage size, whether passages are embedded;
- ``pages.jsonl``: one {"url", "title", "date"} per page;
- ``passages.jsonl``: one {"page", "order", "text"} per passage; a passage's id is its line number;
- ``bm25/``: the bm25s index over "title + passage", one document per passage;
- ``embeddings.npy`` (optional): row ``id`` is the embedding of passage ``id``.

Besides searching, the index is a :class:`~search_adapters.base.PassageStore`: the engine takes a
local page's passages and their stored embeddings from it, by id, instead of reading the page again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from search_adapters.base import (
    IndexedPassage,
    PassageStore,
    SearchError,
    SearchProvider,
    SearchResult,
    bm25_idf,
)
from search_adapters.filters import SearchFilters
from search_adapters.textutil import bm25s, truncate_words

log = logging.getLogger(__name__)

INDEX_FORMAT = 2
SNIPPET_CHARS = 300
CANDIDATE_PASSAGES = 64
META, PAGES, PASSAGES, BM25_DIR, EMBEDDINGS = (
    "meta.json",
    "pages.jsonl",
    "passages.jsonl",
    "bm25",
    "embeddings.npy",
)

Analyzer = Callable[[str], list[str]]


class StoredPage(BaseModel):
    url: str
    title: str
    date: str | None = None


class LocalIndex(SearchProvider, PassageStore):
    """Queries the index at ``path``; reloads it when a new build has been swapped in.

    ``refresh`` (optional) is called before each query and at ``prepare``: the engine passes its
    builder's ``ensure``, so a changed source folder is re-indexed before it is searched."""

    name = "local"

    def __init__(
        self, path: Path, *, analyzer: Analyzer, refresh: Callable[[], object] | None = None
    ) -> None:
        self.path = Path(path)
        self.analyzer = analyzer
        self.refresh = refresh
        self._lock = threading.Lock()
        self._loaded: int | None = None  # meta.json's mtime when loaded
        self._retriever: Any = None
        self._pages: list[StoredPage] = []
        self._passage_page: list[int] = []
        self._passages: list[IndexedPassage] = []
        self._by_url: dict[str, list[IndexedPassage]] = {}
        self._embeddings: Any = None
        self._df: Counter[str] | None = None  # document frequency of each term, counted when first asked

    # -- loading (blocking; call in a thread from async code)

    def prepare(self) -> None:
        if self.refresh is not None:
            self.refresh()
        with self._lock:
            try:
                stamp = (self.path / META).stat().st_mtime_ns
            except OSError as exc:
                raise SearchError(f"no local index at {self.path}; run `answer-engine index`") from exc
            if stamp != self._loaded:
                self._load(stamp)

    def _load(self, stamp: int) -> None:
        try:
            meta = json.loads((self.path / META).read_text(encoding="utf-8"))
            if meta.get("format") != INDEX_FORMAT:
                raise ValueError(f"index format {meta.get('format')}, expected {INDEX_FORMAT}")
            retriever = bm25s().BM25.load(str(self.path / BM25_DIR), show_progress=False)
            with (self.path / PAGES).open(encoding="utf-8") as fh:
                pages = [StoredPage.model_validate_json(line) for line in fh]
            rows = [json.loads(line) for line in (self.path / PASSAGES).open(encoding="utf-8")]
        except (OSError, ValueError) as exc:
            raise SearchError(
                f"the local index at {self.path} is unreadable ({exc}); run `answer-engine index`"
            ) from exc
        passages = [IndexedPassage(id=i, order=r["order"], text=r["text"]) for i, r in enumerate(rows)]
        by_url: dict[str, list[IndexedPassage]] = {}
        for row, passage in zip(rows, passages):
            by_url.setdefault(pages[row["page"]].url, []).append(passage)
        embeddings = None
        if (self.path / EMBEDDINGS).exists():
            import numpy as np

            embeddings = np.load(self.path / EMBEDDINGS, mmap_mode="r")
        self._retriever, self._pages, self._passages, self._by_url = retriever, pages, passages, by_url
        self._passage_page = [r["page"] for r in rows]
        self._embeddings = embeddings
        self._df = None
        self._loaded = stamp

    # -- SearchProvider

    def search_sync(self, query: str, max_results: int) -> list[SearchResult]:
        self.prepare()
        q = self.analyzer(query)
        if not q or self._retriever is None or not self._passages:
            return []
        k = min(CANDIDATE_PASSAGES, len(self._passages))
        docs, scores = self._retriever.retrieve([q], k=k, show_progress=False)
        best: dict[int, tuple[float, int]] = {}  # page -> (its best passage's score, that passage)
        for pid, score in zip(docs[0].tolist(), scores[0].tolist()):
            if score <= 0:
                continue
            page = self._passage_page[pid]
            if page not in best or score > best[page][0]:
                best[page] = (score, pid)
        ranked = sorted(best.items(), key=lambda kv: -kv[1][0])[:max_results]
        return [
            SearchResult(
                url=self._pages[page].url,
                title=self._pages[page].title,
                date=self._pages[page].date,
                snippet=truncate_words(self._passages[pid].text, SNIPPET_CHARS),
                provider=self.name,
                score=round(score, 4),
            )
            for page, (score, pid) in ranked
        ]

    async def search(
        self, query: str, *, max_results: int, filters: SearchFilters | None = None
    ) -> list[SearchResult]:
        return await asyncio.to_thread(self.search_sync, query, max_results)

    async def generation(self) -> str:
        await asyncio.to_thread(self.prepare)  # re-indexes first if a source changed
        return f"local:{self._loaded}"

    # -- PassageStore

    def page_passages(self, url: str) -> list[IndexedPassage] | None:
        if self._loaded is None:
            self.prepare()
        return self._by_url.get(url)

    def vectors(self, ids: list[int]) -> list[Any]:
        emb = self._embeddings
        if emb is None:
            return [None] * len(ids)
        return [emb[i] if 0 <= i < len(emb) else None for i in ids]

    def idf(self, words: list[str]) -> dict[str, float] | None:
        if self._loaded is None:
            self.prepare()
        with self._lock:
            passages = self._passages
            if self._df is None:  # once per loaded index (~0.4 s for the shipped corpus's 3,266 passages)
                self._df = Counter(w for p in passages for w in set(self.analyzer(p.text)))
            df = self._df
        if not passages:
            return None
        return {w: bm25_idf(len(passages), df.get(w, 0)) for w in words}

    def counts(self) -> tuple[int, int]:
        """(pages, passages) of the loaded index."""
        if self._loaded is None:
            self.prepare()
        return len(self._pages), len(self._passages)
