"""The search-provider Protocol and the result shape every provider maps its response onto."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from search_adapters.filters import SearchFilters


class SearchResult(BaseModel):
    """One search hit, shaped like a web search result."""

    url: str
    title: str
    snippet: str = ""
    date: str | None = Field(None, description="Published date (ISO 8601) when the provider gives one.")
    provider: str
    score: float | None = None


class SearchError(Exception):
    """A provider could not answer (bad index, bad response, unavailable).

    ``status`` is the HTTP status when there was one; ``retry_after`` the seconds the provider asked
    us to wait (429s), which the circuit breaker honours."""

    def __init__(self, message: str, *, provider: str = "", status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.provider = provider
        self.status = status
        self.retry_after = retry_after

    @property
    def rate_limited(self) -> bool:
        return self.status == 429


@runtime_checkable
class SearchProvider(Protocol):
    name: str

    async def search(
        self, query: str, *, max_results: int, filters: SearchFilters | None = None
    ) -> list[SearchResult]:
        """Return up to ``max_results`` results, best first. ``filters`` are hints the provider may
        pass on to its API; they are enforced after retrieval in any case."""
        ...
