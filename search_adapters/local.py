"""The embedded default search: a BM25 full-text index (bm25s) over a local page store.

Sources of pages:
- the shipped corpus (48 Wikipedia articles rendered as HTML, answer_engine/corpus/wikipedia);
- folders a user registers with ``answer-engine index PATH`` (.html/.htm/.md/.txt files);
- JSONL files of {"url", "title", "text"} registered the same way.

The index lives under ``<data_dir>/index/local``. It is built on first use (or by
``answer-engine index``) and rebuilt whenever the fingerprint of its sources (paths, sizes,
modification times, settings) changes. A build is written to a temporary folder and swapped in,
so a crash never leaves a half-written index. Results are shaped like web search results, and
the page store answers ``fetch(url)`` with the stored page, the same interface web fetching uses.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from answer_engine.embeddings import Embedder, passage_input, passage_key
from answer_engine.extract import ExtractionError, extract_page
from answer_engine.fetch import FetchedPage, FetchError
from answer_engine.passages import chunk_text
from answer_engine.text import bm25s, pack_words, terms, truncate_words
from search_adapters.base import SearchError, SearchResult
from search_adapters.filters import SearchFilters

log = logging.getLogger(__name__)

INDEX_FORMAT = 1
SHIPPED_CORPUS = Path(__file__).resolve().parent.parent / "answer_engine" / "corpus" / "wikipedia"
FILE_TYPES = {".html": "text/html", ".htm": "text/html", ".md": "text/markdown", ".txt": "text/plain"}
CHUNK_WORDS = 150  # index granularity: paragraphs merged up to this many words
SNIPPET_CHARS = 300
CANDIDATE_CHUNKS = 64


class StoredPage(BaseModel):
    url: str
    title: str
    content_type: str
    path: str | None = None  # read from this file on fetch...
    text: str | None = None  # ...or stored inline (JSONL sources)
    date: str | None = None


class IndexInfo(BaseModel):
    pages: int
    chunks: int
    sources: list[str]
    fingerprint: str
    path: str


# ----------------------------------------------------------------------------- sources


def registry_path(data_dir: Path) -> Path:
    return data_dir / "corpora.json"


def registered_sources(data_dir: Path) -> list[Path]:
    path = registry_path(data_dir)
    if not path.exists():
        return []
    return [Path(p) for p in json.loads(path.read_text(encoding="utf-8"))]


def _write_json_atomic(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1)
    os.replace(tmp, path)


def register_source(data_dir: Path, source: Path) -> None:
    source = source.resolve()
    if not source.exists():
        raise SearchError(f"no such file or folder: {source}")
    if source.is_file() and source.suffix != ".jsonl":
        raise SearchError(f"{source}: a single file must be a .jsonl of {{url, title, text}}; or give a folder")
    sources = [p for p in registered_sources(data_dir) if p != source]
    _write_json_atomic(registry_path(data_dir), [str(p) for p in [*sources, source]])


def unregister_source(data_dir: Path, source: Path) -> bool:
    source = source.resolve()
    sources = registered_sources(data_dir)
    if source not in sources:
        return False
    _write_json_atomic(registry_path(data_dir), [str(p) for p in sources if p != source])
    return True


def _source_files(source: Path) -> list[Path]:
    if source.is_file():
        return [source]
    if source.is_dir():
        return sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in FILE_TYPES | {".jsonl": ""})
    raise SearchError(f"indexed source is gone: {source} (remove it with `answer-engine index --remove {source}`)")


def fingerprint(sources: list[Path], extra: str = "") -> str:
    h = hashlib.sha256(f"format={INDEX_FORMAT};chunk={CHUNK_WORDS};{extra}".encode())
    for source in sources:
        for f in _source_files(source):
            st = f.stat()
            h.update(f"{f}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _pages_from_source(source: Path) -> Iterator[StoredPage]:
    if source == SHIPPED_CORPUS:
        for line in (source / "manifest.jsonl").read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            yield StoredPage(url=entry["url"], title=entry["title"], content_type="text/html", path=str(source / entry["file"]))
        return
    for f in _source_files(source):
        if f.suffix == ".jsonl":
            for lineno, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    yield StoredPage(
                        url=str(row["url"]), title=str(row.get("title") or row["url"]), content_type="text/plain",
                        text=str(row["text"]), date=row.get("date"),
                    )
                except (ValueError, KeyError, TypeError) as exc:
                    raise SearchError(f"{f}:{lineno}: expected a JSON object with url, title, text ({exc})") from exc
        else:
            yield StoredPage(url=f.as_uri(), title=f.stem.replace("_", " "), content_type=FILE_TYPES[f.suffix.lower()], path=str(f))


def _read_page(page: StoredPage) -> FetchedPage:
    if page.text is not None:
        return FetchedPage(url=page.url, content_type=page.content_type, text=page.text)
    assert page.path is not None
    try:
        raw = Path(page.path).read_bytes()
    except OSError as exc:
        raise FetchError(f"{page.url}: {exc.strerror or exc}") from exc
    return FetchedPage(url=page.url, content_type=page.content_type, text=raw.decode("utf-8", errors="replace"))


def _chunks(text: str, max_words: int = CHUNK_WORDS) -> list[str]:
    """Paragraphs, with short neighbours merged, for index granularity."""
    return pack_words([p.strip() for p in text.split("\n") if p.strip()], max_words)


# ----------------------------------------------------------------------------- index


class LocalIndex:
    """A BM25 index over the local page store, built lazily, rebuilt when its sources change."""

    name = "local"

    def __init__(
        self, data_dir: Path, *, include_default_corpus: bool = True, embedder: Embedder | None = None,
        passage_words: int = 90,
    ) -> None:
        """``embedder``: also embed every passage (as the pipeline will chunk pages, ``passage_words``)
        at build time, so that hybrid ranking needs only the question's embedding at query time."""
        self.data_dir = data_dir
        self.include_default_corpus = include_default_corpus
        self.embedder = embedder
        self.passage_words = passage_words
        self._embeddings: Any = None
        self._embedding_rows: dict[str, int] = {}
        self.path = data_dir / "index" / "local"
        self._lock = threading.Lock()
        self._loaded_fp: str | None = None
        self._retriever = None
        self._pages: list[StoredPage] = []
        self._by_url: dict[str, StoredPage] = {}
        self._chunk_doc: list[int] = []
        self._chunk_text: list[str] = []

    def sources(self) -> list[Path]:
        base = [SHIPPED_CORPUS] if self.include_default_corpus else []
        return base + registered_sources(self.data_dir)

    # -- build / load (blocking; call in a thread from async code)

    def ensure(self, *, force: bool = False) -> IndexInfo:
        with self._lock:
            sources = self.sources()
            if not sources:
                raise SearchError("nothing to index: the default corpus is off and no folder is registered")
            fp = fingerprint(sources)
            if force or self._loaded_fp != fp:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with open(self.path.parent / ".lock", "w") as lock:
                    fcntl.flock(lock, fcntl.LOCK_EX)  # one builder at a time across processes
                    meta = self._stored_meta()
                    # An index with embeddings serves a caller that needs none; not the other way round.
                    lacks_embeddings = self.embedder is not None and meta.get("embedded_passage_words") != self.passage_words
                    if force or meta.get("fingerprint") != fp or lacks_embeddings:
                        self._build(sources, fp)
                    self._load(fp)
            return IndexInfo(
                pages=len(self._pages), chunks=len(self._chunk_text), sources=[str(s) for s in sources],
                fingerprint=fp, path=str(self.path),
            )

    def _stored_meta(self) -> dict[str, Any]:
        meta = self.path / "meta.json"
        if not meta.exists():
            return {}
        try:
            return dict(json.loads(meta.read_text(encoding="utf-8")))
        except ValueError:
            return {}  # unreadable: rebuild

    def _build(self, sources: list[Path], fp: str) -> None:
        log.info("building the local index from %d source(s)", len(sources))
        pages: list[StoredPage] = []
        chunk_doc: list[int] = []
        chunk_text_: list[str] = []
        seen: set[str] = set()
        embed_keys: list[str] = []
        embed_inputs: list[str] = []
        for source in sources:
            for page in _pages_from_source(source):
                if page.url in seen:
                    continue
                try:
                    extracted = extract_page(_read_page(page))
                except (ExtractionError, FetchError) as exc:
                    log.warning("skipping %s: %s", page.url, exc)
                    continue
                seen.add(page.url)
                if extracted.title and page.content_type != "text/plain":
                    page.title = page.title or extracted.title
                page.date = page.date or extracted.date
                doc = len(pages)
                pages.append(page)
                if self.embedder is not None:
                    for passage in chunk_text(extracted.text, self.passage_words):
                        embed_keys.append(passage_key(page.url, passage))
                        embed_inputs.append(passage_input(page.title, passage))
                for chunk in _chunks(extracted.text):
                    chunk_doc.append(doc)
                    chunk_text_.append(chunk)
        if not chunk_text_:
            raise SearchError("no indexable text found in the sources")
        retriever = bm25s().BM25()
        retriever.index([terms(f"{pages[d].title}\n{t}") for d, t in zip(chunk_doc, chunk_text_)], show_progress=False)

        tmp = Path(tempfile.mkdtemp(dir=self.path.parent, prefix="local.build."))
        try:
            retriever.save(str(tmp / "bm25"), show_progress=False)
            if self.embedder is not None:
                import numpy as np

                log.info("embedding %d passages", len(embed_inputs))
                np.save(tmp / "embeddings.npy", self.embedder.encode(embed_inputs))
                (tmp / "embedding_keys.json").write_text(json.dumps(embed_keys), encoding="utf-8")
            with (tmp / "pages.jsonl").open("w", encoding="utf-8") as fh:
                for page in pages:
                    fh.write(page.model_dump_json() + "\n")
            with (tmp / "chunks.jsonl").open("w", encoding="utf-8") as fh:
                for d, t in zip(chunk_doc, chunk_text_):
                    fh.write(json.dumps({"doc": d, "text": t}, ensure_ascii=False) + "\n")
            (tmp / "meta.json").write_text(
                json.dumps({"fingerprint": fp, "format": INDEX_FORMAT, "sources": [str(s) for s in sources],
                            "embedded_passage_words": self.passage_words if self.embedder is not None else None}),
                encoding="utf-8",
            )
            old = self.path.with_name("local.old")
            shutil.rmtree(old, ignore_errors=True)
            if self.path.exists():
                os.replace(self.path, old)
            os.replace(tmp, self.path)
            shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _load(self, fp: str) -> None:
        try:
            self._retriever = bm25s().BM25.load(str(self.path / "bm25"), show_progress=False)
            self._pages = [StoredPage.model_validate_json(line) for line in (self.path / "pages.jsonl").open(encoding="utf-8")]
            rows = [json.loads(line) for line in (self.path / "chunks.jsonl").open(encoding="utf-8")]
        except (OSError, ValueError) as exc:
            raise SearchError(f"the local index at {self.path} is unreadable ({exc}); run `answer-engine index`") from exc
        emb = self.path / "embeddings.npy"
        if self.embedder is not None and emb.exists():
            import numpy as np

            self._embeddings = np.load(emb)
            keys = json.loads((self.path / "embedding_keys.json").read_text(encoding="utf-8"))
            self._embedding_rows = {k: i for i, k in enumerate(keys)}
        self._chunk_doc = [r["doc"] for r in rows]
        self._chunk_text = [r["text"] for r in rows]
        self._by_url = {p.url: p for p in self._pages}
        self._loaded_fp = fp

    # -- queries

    def search_sync(self, query: str, max_results: int) -> list[SearchResult]:
        self.ensure()
        q = terms(query)
        if not q or self._retriever is None:
            return []
        k = min(CANDIDATE_CHUNKS, len(self._chunk_text))
        docs, scores = self._retriever.retrieve([q], k=k, show_progress=False)
        best: dict[int, tuple[float, int]] = {}
        for chunk, score in zip(docs[0].tolist(), scores[0].tolist()):
            if score <= 0:
                continue
            doc = self._chunk_doc[chunk]
            if doc not in best or score > best[doc][0]:
                best[doc] = (score, chunk)
        ranked = sorted(best.items(), key=lambda kv: -kv[1][0])[:max_results]
        return [
            SearchResult(
                url=self._pages[doc].url,
                title=self._pages[doc].title,
                snippet=truncate_words(self._chunk_text[chunk], SNIPPET_CHARS),
                date=self._pages[doc].date,
                provider=self.name,
                score=round(score, 4),
            )
            for doc, (score, chunk) in ranked
        ]

    async def search(self, query: str, *, max_results: int, filters: SearchFilters | None = None) -> list[SearchResult]:
        return await asyncio.to_thread(self.search_sync, query, max_results)

    def has_page(self, url: str) -> bool:
        self.ensure()
        return url in self._by_url

    # -- the page store: the same fetch interface the web fetcher offers

    async def fetch(self, url: str) -> FetchedPage:
        await asyncio.to_thread(self.ensure)
        page = self._by_url.get(url)
        if page is None:
            raise FetchError(f"not in the local page store: {url}")
        return await asyncio.to_thread(_read_page, page)

    def stored_embedding(self, url: str, passage: str) -> Any:
        """The passage's embedding computed at build time, or None."""
        row = self._embedding_rows.get(passage_key(url, passage))
        return None if row is None else self._embeddings[row]

    def info(self) -> IndexInfo:
        return self.ensure()
