"""Building the local index: read the sources, extract each page's main text, cut it into passages
with the one chunker (``passages.chunk_text``), embed them, and write it all once, in the layout
``search_adapters/local.py`` reads.

Sources of pages:
- the shipped corpus (48 Wikipedia articles rendered as HTML, answer_engine/corpus/wikipedia);
- folders a user registers with ``answer-engine index PATH`` (.html/.htm/.md/.txt/.pdf files);
- JSONL files of {"url", "title", "text"} registered the same way;
- folders with a ``manifest.jsonl`` of {"url", "title", "file"}, like the shipped corpus.

The index lives under ``<data_dir>/index/local``. It is built on first use (or by ``answer-engine
index``) and rebuilt whenever the fingerprint of its sources (paths, sizes, modification times,
passage size) changes. A build is written to a temporary folder and swapped in whole, so a crash
never leaves a half-written index, and one builder at a time holds a file lock.
"""

from __future__ import annotations

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

from answer_engine.embeddings import Embedder, passage_input
from answer_engine.extract import ExtractionError, extract_page
from answer_engine.fetch import FetchedPage
from answer_engine.passages import chunk_text
from answer_engine.text import ANALYZER_VERSION, terms
from search_adapters import local
from search_adapters.base import SearchError
from search_adapters.local import StoredPage
from search_adapters.textutil import bm25s

log = logging.getLogger(__name__)

SHIPPED_CORPUS = Path(__file__).resolve().parent / "corpus" / "wikipedia"
FILE_TYPES = {
    ".html": "text/html",
    ".htm": "text/html",
    ".md": "text/markdown",
    ".txt": "text/plain",
    ".pdf": "application/pdf",
}
DEFAULT_PASSAGE_WORDS = 90  # retrieval.chunk_words


class IndexInfo(BaseModel):
    pages: int
    passages: int
    sources: list[str]
    fingerprint: str
    path: str


class SourcePage(BaseModel):
    """A page to index: read from ``path``, or given inline as ``text`` (JSONL sources)."""

    url: str
    title: str
    content_type: str
    path: str | None = None
    text: str | None = None
    date: str | None = None


# ----------------------------------------------------------------------------- registered sources


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
        raise SearchError(
            f"{source}: a single file must be a .jsonl of {{url, title, text}}; or give a folder"
        )
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
        return sorted(
            p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in FILE_TYPES | {".jsonl": ""}
        )
    raise SearchError(
        f"indexed source is gone: {source} (remove it with `answer-engine index --remove {source}`)"
    )


def fingerprint(sources: list[Path], passage_words: int) -> str:
    h = hashlib.sha256(
        f"format={local.INDEX_FORMAT};analyzer={ANALYZER_VERSION};passage_words={passage_words}".encode()
    )
    for source in sources:
        for f in _source_files(source):
            st = f.stat()
            h.update(f"{f}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def pages_from_source(source: Path) -> Iterator[SourcePage]:
    """The pages of a source. A folder with a ``manifest.jsonl`` of {"url", "title", "file"} and
    optionally "content_type" (the shipped corpus, or a copy of it; the uploads folder) is read by its
    manifest, so its pages keep their real URLs."""
    if source.is_dir() and (source / "manifest.jsonl").is_file():
        for line in (source / "manifest.jsonl").read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            yield SourcePage(
                url=entry["url"],
                title=entry["title"],
                # the media type alone: the shipped manifest says "text/html; charset=utf-8"
                content_type=str(entry.get("content_type") or "text/html").split(";")[0].strip(),
                path=str(source / entry["file"]),
            )
        return
    for f in _source_files(source):
        if f.suffix == ".jsonl":
            for lineno, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    yield SourcePage(
                        url=str(row["url"]),
                        title=str(row.get("title") or row["url"]),
                        content_type="text/plain",
                        text=str(row["text"]),
                        date=row.get("date"),
                    )
                except (ValueError, KeyError, TypeError) as exc:
                    raise SearchError(
                        f"{f}:{lineno}: expected a JSON object with url, title, text ({exc})"
                    ) from exc
        else:
            yield SourcePage(
                url=f.as_uri(),
                title=f.stem.replace("_", " "),
                content_type=FILE_TYPES[f.suffix.lower()],
                path=str(f),
            )


def read_source_page(page: SourcePage) -> FetchedPage:
    if page.text is not None:
        return FetchedPage(url=page.url, content_type=page.content_type, text=page.text)
    assert page.path is not None
    try:
        raw = Path(page.path).read_bytes()
    except OSError as exc:
        raise ExtractionError(f"{page.url}: {exc.strerror or exc}") from exc
    if page.content_type == "application/pdf":
        from answer_engine.fetch import FetchError
        from answer_engine.webfetch import pdf_text

        try:
            return FetchedPage(url=page.url, content_type="text/plain", text=pdf_text(raw))
        except FetchError as exc:
            raise ExtractionError(f"{page.url}: {exc}") from exc
    return FetchedPage(
        url=page.url, content_type=page.content_type, text=raw.decode("utf-8", errors="replace")
    )


# ----------------------------------------------------------------------------- the builder


class Ingestor:
    """Keeps ``<data_dir>/index/local`` built from the configured sources (blocking: use a thread)."""

    def __init__(
        self,
        data_dir: Path,
        *,
        include_default_corpus: bool = True,
        embedder: Embedder | None = None,
        passage_words: int = DEFAULT_PASSAGE_WORDS,
    ) -> None:
        """``embedder``: also embed every passage at build time, so that hybrid ranking needs only
        the question's embedding at question time."""
        self.data_dir = data_dir
        self.include_default_corpus = include_default_corpus
        self.embedder = embedder
        self.passage_words = passage_words
        self.path = data_dir / "index" / "local"
        self._lock = threading.Lock()
        self._checked: str | None = None

    def sources(self) -> list[Path]:
        base = [SHIPPED_CORPUS] if self.include_default_corpus else []
        return base + registered_sources(self.data_dir)

    def ensure(self, *, force: bool = False) -> IndexInfo:
        """Build the index if its sources changed (or it lacks the embeddings this caller needs)."""
        with self._lock:
            sources = self.sources()
            if not sources:
                raise SearchError("nothing to index: the default corpus is off and no folder is registered")
            fp = fingerprint(sources, self.passage_words)
            if force or self._checked != fp:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with open(self.path.parent / ".lock", "w") as lock:
                    fcntl.flock(lock, fcntl.LOCK_EX)  # one builder at a time across processes
                    meta = self._stored_meta()
                    # An index with embeddings serves a caller that needs none; not the other way round.
                    lacks_embeddings = self.embedder is not None and not meta.get("embedded")
                    if force or meta.get("fingerprint") != fp or lacks_embeddings:
                        self._build(sources, fp)
                        meta = self._stored_meta()
                self._checked = fp
            else:
                meta = self._stored_meta()
            return IndexInfo(
                pages=meta.get("pages", 0),
                passages=meta.get("passages", 0),
                sources=[str(s) for s in sources],
                fingerprint=fp,
                path=str(self.path),
            )

    def _stored_meta(self) -> dict[str, Any]:
        meta = self.path / local.META
        if not meta.exists():
            return {}
        try:
            return dict(json.loads(meta.read_text(encoding="utf-8")))
        except ValueError:
            return {}  # unreadable: rebuild

    def _previous_embeddings(self) -> dict[str, Any]:
        """The current build's embeddings by their input text, so a rebuild (a document added or
        removed) embeds only the passages that are new."""
        import numpy as np

        meta = self._stored_meta()
        if not meta.get("embedded") or meta.get("passage_words") != self.passage_words:
            return {}
        try:
            with (self.path / local.PAGES).open(encoding="utf-8") as fh:
                titles = [json.loads(line)["title"] for line in fh]
            with (self.path / local.PASSAGES).open(encoding="utf-8") as fh:
                rows = [json.loads(line) for line in fh]
            matrix = np.load(self.path / local.EMBEDDINGS)
        except (OSError, ValueError, KeyError):
            return {}
        if len(matrix) != len(rows):
            return {}
        return {passage_input(titles[r["page"]], r["text"]): matrix[i] for i, r in enumerate(rows)}

    def _embed(self, inputs: list[str]) -> Any:
        import numpy as np

        assert self.embedder is not None
        known = self._previous_embeddings()
        new = [t for t in dict.fromkeys(inputs) if t not in known]
        log.info("embedding %d passages (%d kept from the previous build)", len(new), len(inputs) - len(new))
        if new:
            known.update(zip(new, self.embedder.encode(new)))
        return np.stack([np.asarray(known[t], dtype=np.float32) for t in inputs])

    def _build(self, sources: list[Path], fp: str) -> None:
        log.info("building the local index from %d source(s)", len(sources))
        pages: list[StoredPage] = []
        rows: list[dict[str, Any]] = []  # one per passage: its id is its position
        seen: set[str] = set()
        for source in sources:
            for page in pages_from_source(source):
                if page.url in seen:
                    continue
                try:
                    extracted = extract_page(read_source_page(page))
                except ExtractionError as exc:
                    log.warning("skipping %s: %s", page.url, exc)
                    continue
                seen.add(page.url)
                title = page.title or extracted.title
                for order, text in enumerate(chunk_text(extracted.text, self.passage_words)):
                    rows.append({"page": len(pages), "order": order, "text": text})
                pages.append(StoredPage(url=page.url, title=title, date=page.date or extracted.date))
        if not rows:
            raise SearchError("no indexable text found in the sources")
        retriever = bm25s().BM25()
        retriever.index([terms(f"{pages[r['page']].title}\n{r['text']}") for r in rows], show_progress=False)

        tmp = Path(tempfile.mkdtemp(dir=self.path.parent, prefix="local.build."))
        try:
            retriever.save(str(tmp / local.BM25_DIR), show_progress=False)
            if self.embedder is not None:
                import numpy as np

                inputs = [passage_input(pages[r["page"]].title, r["text"]) for r in rows]
                np.save(tmp / local.EMBEDDINGS, self._embed(inputs))
            with (tmp / local.PAGES).open("w", encoding="utf-8") as fh:
                fh.writelines(page.model_dump_json() + "\n" for page in pages)
            with (tmp / local.PASSAGES).open("w", encoding="utf-8") as fh:
                fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
            (tmp / local.META).write_text(
                json.dumps(
                    {
                        "fingerprint": fp,
                        "format": local.INDEX_FORMAT,
                        "sources": [str(s) for s in sources],
                        "passage_words": self.passage_words,
                        "embedded": self.embedder is not None,
                        "pages": len(pages),
                        "passages": len(rows),
                    }
                ),
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
