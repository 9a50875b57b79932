"""Documents users add to the index from the UI or the API (``/v1/documents``): a file (.html, .htm,
.md, .txt, .pdf) or a web page by URL, listed and deleted again. Answers cite them like any page.

Two stores behind one shape, following ``search.providers``:
- ``LocalDocuments`` (the on-disk index): files kept under ``<data_dir>/uploads`` with a manifest of
  their URLs and titles, a source of the index like any registered folder; adding or deleting one
  rebuilds the index (passages already embedded keep their embeddings, so only the new document is
  embedded), written aside and swapped in whole.
- ``PgDocuments`` (the shared index in PostgreSQL): each upload one document of the index, written
  in one transaction; every replica serves it at once.

Checks before anything is written: the size limit, the file type by name *and* content (a PDF starts
with %PDF-, text must decode), and text left after extraction. A failed add leaves nothing behind.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import tempfile
import threading
import uuid
from pathlib import Path, PurePath
from typing import Protocol

from pydantic import BaseModel, Field

from answer_engine.extract import ExtractionError, extract_page
from answer_engine.fetch import FetchedPage
from answer_engine.ingest import FILE_TYPES, Ingestor, SourcePage, read_source_page, register_source
from search_adapters.base import SearchError

UPLOAD_SCHEME = "upload://"


class DocumentError(ValueError):
    """The document cannot be added: wrong type, unreadable, empty. ``status`` is the HTTP status."""

    def __init__(self, message: str, *, status: int = 400, code: str = "invalid_document") -> None:
        super().__init__(message)
        self.status, self.code = status, code


class DocumentInfo(BaseModel):
    id: str
    title: str
    url: str = Field(description="What answers cite it by: the page's URL, or upload://<id>/<file name>.")
    filename: str | None = None
    content_type: str
    bytes: int
    created_at: str


def content_type_of(filename: str, data: bytes) -> str:
    """The media type of an upload, by its name, checked against its content."""
    suffix = PurePath(filename).suffix.lower()
    kind = FILE_TYPES.get(suffix)
    if kind is None:
        allowed = ", ".join(sorted(FILE_TYPES))
        raise DocumentError(
            f"{filename!r}: unsupported file type; allowed: {allowed}", status=415, code="unsupported_type"
        )
    if kind == "application/pdf":
        if not data.startswith(b"%PDF-"):
            raise DocumentError(
                f"{filename!r} is named .pdf but is not a PDF", status=415, code="unsupported_type"
            )
        return kind
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise DocumentError(f"{filename!r} is not UTF-8 text", status=415, code="unsupported_type") from None
    if b"\x00" in data:
        raise DocumentError(f"{filename!r} holds binary data", status=415, code="unsupported_type")
    return kind


def check_extractable(page: SourcePage) -> str:
    """The page's main text must not be empty (what is not indexed could never be cited)."""
    try:
        extracted = extract_page(read_source_page(page))
    except ExtractionError as exc:
        raise DocumentError(f"no text could be read from it: {exc}") from exc
    if len(extracted.text.split()) < 3:
        raise DocumentError("no text could be read from it")
    return extracted.title


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _safe_name(filename: str) -> str:
    name = PurePath(filename.replace("\\", "/")).name
    return "".join(c if c.isalnum() or c in "._- " else "_" for c in name)[:120] or "document"


def describe(
    path: Path,
    filename: str,
    data: bytes,
    *,
    kind: str,
    doc_id: str,
    title: str | None,
    url: str | None,
) -> DocumentInfo:
    """The document an upload at ``path`` (of media type ``kind``, from ``content_type_of``) becomes:
    checked (text left after extraction) and titled (the caller's title, else the page's own, else
    the file name)."""
    name = _safe_name(filename)
    found = check_extractable(SourcePage(url=url or "", title=title or "", content_type=kind, path=str(path)))
    return DocumentInfo(
        id=doc_id,
        title=(title or found or PurePath(name).stem).strip()[:200],
        url=url or f"{UPLOAD_SCHEME}{doc_id}/{name}",
        filename=name,
        content_type=kind,
        bytes=len(data),
        created_at=_now(),
    )


def new_id() -> str:
    return uuid.uuid4().hex[:16]


class DocumentStore(Protocol):
    def add(
        self, filename: str, data: bytes, *, title: str | None = None, url: str | None = None
    ) -> DocumentInfo:
        """Add a file (``url``: the page it was read from; else it is cited as upload://…)."""
        ...

    def list(self) -> list[DocumentInfo]: ...

    def delete(self, doc_id: str) -> bool: ...


class LocalDocuments(DocumentStore):
    """Uploads as a folder of the on-disk index (blocking: call it in a thread from async code)."""

    def __init__(self, ingestor: Ingestor) -> None:
        self.ingestor = ingestor
        self.folder = ingestor.data_dir / "uploads"
        self.manifest = self.folder / "manifest.jsonl"
        self._lock = threading.Lock()

    def _entries(self) -> list[dict[str, object]]:
        if not self.manifest.exists():
            return []
        return [
            json.loads(line)
            for line in self.manifest.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]

    def _write_entries(self, entries: list[dict[str, object]]) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".manifest", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(e, ensure_ascii=False) + "\n" for e in entries)
        os.replace(tmp, self.manifest)

    def _locked(self):  # type: ignore[no-untyped-def]
        """One writer at a time, across threads and processes sharing the data dir."""
        self.folder.mkdir(parents=True, exist_ok=True)
        handle = open(self.folder / ".lock", "w")  # noqa: SIM115 (closed by the context below)
        fcntl.flock(handle, fcntl.LOCK_EX)
        return handle

    def add(
        self, filename: str, data: bytes, *, title: str | None = None, url: str | None = None
    ) -> DocumentInfo:
        kind = content_type_of(filename, data)  # refuse a wrong type before writing anything
        doc_id = new_id()
        stored = f"{doc_id}{PurePath(_safe_name(filename)).suffix.lower()}"
        with self._lock, self._locked():
            path = self.folder / stored
            path.write_bytes(data)
            try:
                info = describe(path, filename, data, kind=kind, doc_id=doc_id, title=title, url=url)
                entries = [e for e in self._entries() if e.get("url") != info.url]
                self._write_entries([*entries, {**info.model_dump(), "file": stored}])
                register_source(self.ingestor.data_dir, self.folder)
                self.ingestor.ensure()
            except BaseException:
                path.unlink(missing_ok=True)
                self._write_entries([e for e in self._entries() if e.get("id") != doc_id])
                raise
        return info

    def list(self) -> list[DocumentInfo]:
        return [DocumentInfo.model_validate(e) for e in reversed(self._entries())]

    def delete(self, doc_id: str) -> bool:
        with self._lock, self._locked():
            entries = self._entries()
            gone = [e for e in entries if e.get("id") == doc_id]
            if not gone:
                return False
            self._write_entries([e for e in entries if e.get("id") != doc_id])
            for e in gone:
                (self.folder / str(e["file"])).unlink(missing_ok=True)
            self.ingestor.ensure()
        return True


class PgDocuments(DocumentStore):
    """Uploads as documents of the shared index in PostgreSQL (blocking: call it in a thread)."""

    def __init__(self, writer: object) -> None:
        from answer_engine.pgindex import PostgresIngestor

        assert isinstance(writer, PostgresIngestor)
        self.writer = writer

    def add(
        self, filename: str, data: bytes, *, title: str | None = None, url: str | None = None
    ) -> DocumentInfo:
        from answer_engine.pgindex import Document

        kind = content_type_of(filename, data)
        doc_id = new_id()
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"upload{PurePath(_safe_name(filename)).suffix.lower()}"
            path.write_bytes(data)
            info = describe(path, filename, data, kind=kind, doc_id=doc_id, title=title, url=url)
            page = SourcePage(url=info.url, title=info.title, content_type=info.content_type, path=str(path))
            text = read_source_page(page)
            page = page.model_copy(
                update={"path": None, "text": text.text, "content_type": text.content_type}
            )
            try:
                self.writer.put([Document(f"upload:{doc_id}", doc_id, [page], info=info.model_dump())])
            except SearchError as exc:
                raise DocumentError(str(exc), status=503, code="index_unavailable") from exc
        return info

    def list(self) -> list[DocumentInfo]:
        return [DocumentInfo.model_validate(d["info"]) for d in self.writer.documents("upload:") if d["info"]]

    def delete(self, doc_id: str) -> bool:
        return bool(self.writer.remove([f"upload:{doc_id}"]).removed)


def page_from_fetch(page: FetchedPage) -> tuple[str, bytes]:
    """A page read from the web as an upload: (file name, bytes) of its HTML or text."""
    suffix = ".html" if page.content_type in ("text/html", "application/xhtml+xml") else ".txt"
    host = page.url.split("//", 1)[-1].split("/", 1)[0]
    return f"{host}{suffix}", page.text.encode("utf-8")
