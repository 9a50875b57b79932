"""The search-provider Protocol and the result shape every provider maps its response onto."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

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

    def __init__(
        self, message: str, *, provider: str = "", status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.status = status
        self.retry_after = retry_after

    @property
    def rate_limited(self) -> bool:
        return self.status == 429


@runtime_checkable
class SearchProvider(Protocol):
    """One search engine. Providers subclass it, so ``prepare`` has its default (nothing to do)."""

    name: str

    def prepare(self) -> None:
        """Load or build what the provider needs before its first query (blocking: call it in a
        thread). Called once when the service starts; a provider may also do it lazily."""
        return None

    async def generation(self) -> str:
        """What changes whenever the content searched changes (an index rebuilt, a document added or
        deleted): part of the search cache's key, so no cached result outlives what it points at.
        Web providers: "" (their results age out of the cache by its TTL)."""
        return ""

    async def search(
        self, query: str, *, max_results: int, filters: SearchFilters | None = None
    ) -> list[SearchResult]:
        """Return up to ``max_results`` results, best first. ``filters`` are hints the provider may
        pass on to its API; they are enforced after retrieval in any case."""
        ...


@dataclass(frozen=True, slots=True)
class IndexedPassage:
    """A passage of an indexed page, as the index stored it: ``id`` names its stored embedding."""

    id: int
    order: int  # position within its page
    text: str


@runtime_checkable
class PassageStore(Protocol):
    """An index that holds pages already read and cut into passages (the local index): the engine
    takes their passages and embeddings from it instead of fetching, extracting and chunking again."""

    def page_passages(self, url: str) -> list[IndexedPassage] | None:
        """The stored passages of the page at ``url`` in page order, or None if it is not stored."""
        ...

    def vectors(self, ids: list[int]) -> list[Any]:
        """The stored embedding of each passage id (a 1-d numpy array), None where there is none."""
        ...

    def idf(self, words: list[str]) -> dict[str, float] | None:
        """How rare each analyzed term is in the index (BM25's idf over its passages; a term it lacks
        is as rare as can be), or None when the index cannot say. It weighs the question's terms
        when the engine asks whether the sources cover the question."""
        return None


def bm25_idf(n_passages: int, df: int) -> float:
    """BM25's (Lucene's) idf: always positive."""
    return math.log(1 + (n_passages - df + 0.5) / (df + 0.5))
