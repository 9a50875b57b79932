"""Search providers behind one small Protocol. The local index is the embedded default."""

from search_adapters.base import SearchError, SearchProvider, SearchResult

__all__ = ["SearchError", "SearchProvider", "SearchResult"]
