"""The document library: POST /v1/documents (a file upload, or {"url"} of a page to read), GET to list,
DELETE /v1/documents/{id}. Behind the API key and rate limits like every /v1 route; the body limit is
``server.max_upload_bytes``; URLs are read through the same SSRF guard as every web page."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from answer_engine.api.errors import ERROR_RESPONSES, APIError
from answer_engine.documents import DocumentError, DocumentInfo, page_from_fetch
from answer_engine.fetch import FetchError
from answer_engine.pipeline import Pipeline

router = APIRouter(prefix="/v1", tags=["documents"])


class DocumentURL(BaseModel):
    model_config = ConfigDict(extra="ignore")
    url: str = Field(
        min_length=8, max_length=2048, pattern=r"^https?://", description="A page to read and index."
    )
    title: str | None = Field(None, max_length=200)


class DocumentList(BaseModel):
    object: Literal["list"] = "list"
    data: list[DocumentInfo]


class Deleted(BaseModel):
    id: str
    object: Literal["document"] = "document"
    deleted: bool = True


UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": ".html .htm .md .txt .pdf",
                        },
                        "title": {"type": "string"},
                    },
                    "required": ["file"],
                }
            },
            "application/json": {"schema": DocumentURL.model_json_schema()},
        },
    }
}


def _store(request: Request, *, adding: bool = False) -> Any:
    if adding and not request.app.state.settings.server.uploads:
        raise APIError(403, "adding documents is turned off (server.uploads)", code="uploads_disabled")
    pipeline: Pipeline = request.app.state.pipeline
    if pipeline.documents is None:
        raise APIError(
            400, "the configured search providers hold no index to add documents to", code="no_index"
        )
    return pipeline.documents


async def _read_url(request: Request, body: DocumentURL) -> tuple[str, bytes]:
    from answer_engine.urlguard import UrlGuard
    from answer_engine.webfetch import WebFetcher

    f = request.app.state.settings.fetch
    fetcher = WebFetcher(
        guard=UrlGuard(allow_networks=f.allow_networks),
        timeout_s=f.timeout_s,
        connect_timeout_s=f.connect_timeout_s,
        max_bytes=min(f.max_bytes, request.app.state.settings.server.max_upload_bytes),
        max_connections=4,
        per_host=f.per_host,
    )
    try:
        page = await fetcher.fetch(body.url)
    except FetchError as exc:
        raise APIError(400, f"url: {exc}", param="url", code="unreadable_url") from exc
    finally:
        await fetcher.aclose()
    return page_from_fetch(page)


@router.post(
    "/documents",
    status_code=201,
    response_model=DocumentInfo,
    responses={**ERROR_RESPONSES, 415: {"description": "Unsupported file type"}},
    openapi_extra=UPLOAD_BODY,
)
async def add_document(request: Request) -> Any:
    """Add a file (multipart field ``file``) or a web page (JSON ``{"url"}``) to the index."""
    store = _store(request, adding=True)
    limit = request.app.state.settings.server.max_upload_bytes
    kind = request.headers.get("content-type", "")
    url = title = None
    if kind.startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=4, max_part_size=limit)
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise APIError(400, "file: a multipart file field named 'file' is required", param="file")
        filename, data = upload.filename or "document.txt", await upload.read()
        title = form.get("title") if isinstance(form.get("title"), str) else None
    elif kind.startswith("application/json"):
        try:
            body = DocumentURL.model_validate_json(await request.body())
        except ValidationError as exc:
            first = exc.errors()[0]
            param = ".".join(str(p) for p in first["loc"]) or None
            raise APIError(400, f"{param}: {first['msg']}", param=param, code="invalid_value") from exc
        filename, data = await _read_url(request, body)
        url, title = body.url, body.title
    else:
        raise APIError(
            415, "send multipart/form-data with a file, or JSON with a url", code="unsupported_type"
        )
    if not data:
        raise APIError(400, "file: the file is empty", param="file", code="invalid_document")
    try:
        info = await asyncio.to_thread(store.add, filename, data, title=title, url=url)
    except DocumentError as exc:
        raise APIError(exc.status, str(exc), param="file" if url is None else "url", code=exc.code) from exc
    return JSONResponse(info.model_dump(), status_code=201)


@router.get("/documents", response_model=DocumentList)
async def list_documents(request: Request) -> DocumentList:
    return DocumentList(data=await asyncio.to_thread(_store(request).list))


@router.delete("/documents/{doc_id}", response_model=Deleted, responses={404: ERROR_RESPONSES[404]})
async def delete_document(doc_id: str, request: Request) -> Deleted:
    if not await asyncio.to_thread(_store(request).delete, doc_id):
        raise APIError(404, f"no document {doc_id!r}", param="doc_id", code="document_not_found")
    return Deleted(id=doc_id)
