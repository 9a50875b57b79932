"""The search-provider Protocol and the result shape every provider maps its response onto."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from pydantic import BaseModel, Field


class SearchResult(BaseModel):
    """One search hit, shaped like a web search result."""

    url: str
    title: str
    snippet: str = ""
    date: str | None = Field(None, description="Published date (ISO 8601) when the provider gives one.")
    provider: str
    score: float | None = None


class SearchError(Exception):
    """A provider could not answer (bad index, bad response, unavailable)."""


@runtime_checkable
class SearchProvider(Protocol):
    name: str

    async def search(self, query: str, *, max_results: int) -> list[SearchResult]:
        """Return up to ``max_results`` results, best first."""
        ...
