"""POST /search: raw search results in the shape of Perplexity's Search API, no generation.

The same search the answers use (the configured providers, fused, cached, filtered), then the same
reading (the local index's stored passages, or web pages fetched behind the SSRF guard and
extracted): each result's ``snippet`` is the text of its page that best matches the query, up to
``max_tokens_per_page``. ``query`` may be a list (at most ``MAX_QUERIES``): the searches run
together and ``results`` holds one list per query, in order, as Perplexity's multi-query search
does; a single string gets one flat list.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from answer_engine.api.errors import ERROR_RESPONSES, APIError
from answer_engine.api.openai_protocol import perplexity_day
from answer_engine.config import MAX_QUERY_CHARS
from answer_engine.passages import Passage, ReadPage, rank_passages
from answer_engine.pipeline import Pipeline
from answer_engine.request import AskOptions, AskRequest
from answer_engine.stages import search as searching
from answer_engine.stages.state import RunState, StageError
from answer_engine.text import approx_tokens
from search_adapters.filters import Recency, SearchFilters

router = APIRouter(tags=["Search API"])

MAX_QUERIES = 5
MAX_RESULTS = 20
DEFAULT_TOKENS_PER_PAGE = 512
MAX_TOKENS_PER_PAGE = 4096


class SearchRequest(BaseModel):
    """Perplexity's Search API request. Unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore")

    query: str | list[str] = Field(
        description=f"A search query, or up to {MAX_QUERIES} of them (one result list each)."
    )
    max_results: int = Field(10, ge=1, le=MAX_RESULTS, description="Results per query.")
    max_tokens_per_page: int = Field(
        DEFAULT_TOKENS_PER_PAGE, ge=16, le=MAX_TOKENS_PER_PAGE, description="Snippet length per result."
    )
    search_domain_filter: list[str] | None = Field(
        None, max_length=20, description='Allow "site.com", deny "-site.com".'
    )
    search_recency_filter: Recency | None = None
    search_after_date_filter: str | None = Field(None, description="Published on or after, %m/%d/%Y.")
    search_before_date_filter: str | None = Field(None, description="Published on or before, %m/%d/%Y.")
    country: str | None = Field(None, description="Accepted for compatibility; the local index has none.")

    @field_validator("query")
    @classmethod
    def _queries(cls, value: str | list[str]) -> str | list[str]:
        queries = [value] if isinstance(value, str) else value
        if not queries or len(queries) > MAX_QUERIES:
            raise ValueError(f"give one to {MAX_QUERIES} queries")
        for q in queries:
            if not q.strip():
                raise ValueError("a query must not be empty or blank")
            if len(q) > MAX_QUERY_CHARS:
                raise ValueError(f"a query is longer than {MAX_QUERY_CHARS} characters")
        return value

    @field_validator("search_after_date_filter", "search_before_date_filter")
    @classmethod
    def _date(cls, value: str | None) -> str | None:
        perplexity_day(value)  # raises ValueError naming the format
        return value

    def filters(self) -> SearchFilters:
        return SearchFilters(
            domains=self.search_domain_filter or [],
            recency=self.search_recency_filter,
            after=perplexity_day(self.search_after_date_filter),
            before=perplexity_day(self.search_before_date_filter),
        )


class SearchHit(BaseModel):
    title: str
    url: str
    snippet: str = Field(description="The page text that best matches the query.")
    date: str | None = Field(None, description="Published date, when known.")
    last_updated: str | None = Field(None, description="Last change, when known (the local index has none).")


class SearchResponse(BaseModel):
    id: str
    results: list[SearchHit] | list[list[SearchHit]] = Field(
        description="For one query, its results; for a list of queries, one list per query, in order."
    )


def snippet(query: str, page: ReadPage, max_tokens: int) -> str:
    """The passages of one page that best match ``query``, in page order, within ``max_tokens``."""
    one = ReadPage(url=page.url, title=page.title, passages=[replace(p, page=0) for p in page.passages])
    chosen: list[Passage] = []
    used = 0
    for p in rank_passages(query, [one]):
        cost = approx_tokens(p.text)
        if chosen and used + cost > max_tokens:
            continue
        chosen.append(p)
        used += cost
        if used >= max_tokens:
            break
    text = " … ".join(p.text for p in sorted(chosen, key=lambda p: p.order))
    words = text.split()
    # a single passage longer than the budget is cut (approx_tokens counts ~0.75 words a token)
    limit = max(int(max_tokens * 0.75), 1)
    return " ".join(words[:limit]) + (" …" if len(words) > limit else "")


async def search_one(pipeline: Pipeline, body: SearchRequest, query: str) -> list[SearchHit]:
    settings = pipeline.settings.search.model_copy(update={"max_results": body.max_results})
    state = RunState(request=AskRequest(query=query, options=AskOptions(filters=body.filters())))
    results = await searching.search(pipeline.search, state, settings, query)
    await pipeline.reader.read(state, results)
    by_url = {p.url: p for p in state.pages}
    hits = []
    for r in results:
        page = by_url.get(r.url)
        text = snippet(query, page, body.max_tokens_per_page) if page and page.passages else r.snippet
        hits.append(SearchHit(title=r.title, url=r.url, snippet=text, date=r.date))
    return hits


@router.post("/search", response_model=SearchResponse, responses=ERROR_RESPONSES)
async def search(body: SearchRequest, request: Request) -> Any:
    """Search results (title, url, snippet, date, last_updated), without generating an answer."""
    pipeline: Pipeline = request.app.state.pipeline
    queries = [body.query] if isinstance(body.query, str) else body.query
    t = time.perf_counter()
    try:
        found = await asyncio.gather(*(search_one(pipeline, body, q.strip()) for q in queries))
    except StageError as exc:
        raise APIError(503, f"{exc.stage}: {exc.message}", code="search_unavailable") from exc
    request.app.state.metrics.stage_seconds.labels("search_api").observe(time.perf_counter() - t)
    results: list[SearchHit] | list[list[SearchHit]] = found[0] if isinstance(body.query, str) else found
    return SearchResponse(id=str(uuid.uuid4()), results=results)
