"""Fetching pages: the interface of web fetching (the local index serves stored passages instead)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from pydantic import BaseModel


class FetchedPage(BaseModel):
    url: str
    content_type: str  # media type, e.g. "text/html"
    text: str  # decoded body


class FetchError(Exception):
    """A page could not be fetched (missing, refused, too large, timed out)."""


@runtime_checkable
class Fetcher(Protocol):
    async def fetch(self, url: str) -> FetchedPage: ...
