"""What the HTTP providers share: one request with a timeout, and errors mapped onto SearchError."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from search_adapters.base import SearchError, SearchProvider

DEFAULT_TIMEOUT_S = 8.0


def retry_after_s(response: httpx.Response) -> float | None:
    """Retry-After in seconds (delta or HTTP date), or None."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.replace(".", "", 1).isdigit():
        return float(value)
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def iso_date(value: str | None) -> str | None:
    """A provider's date as ISO 8601: ISO passes through; RFC 2822 ("Tue, 12 Mar 2024 09:30:00 GMT")
    is converted; anything else is dropped rather than guessed."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).isoformat()
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(value).isoformat()
    except (TypeError, ValueError):
        return None


async def request_json(
    client: httpx.AsyncClient,
    provider: str,
    method: str,
    url: str,
    *,
    error_message: Any = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    **kwargs: Any,
) -> Any:
    """The JSON body of a successful response; SearchError (with status and Retry-After) otherwise.

    ``error_message(body)`` pulls the provider's own message out of its documented error body."""
    try:
        response = await client.request(method, url, timeout=timeout_s, **kwargs)
    except httpx.TimeoutException as exc:
        raise SearchError(f"{provider}: timed out after {timeout_s:g}s", provider=provider) from exc
    except httpx.HTTPError as exc:
        raise SearchError(f"{provider}: {type(exc).__name__}: {exc}", provider=provider) from exc
    body: Any = None
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if response.status_code >= 400:
        detail = None
        if body is not None and error_message is not None:
            try:
                detail = error_message(body)
            except (KeyError, TypeError, AttributeError, IndexError):
                detail = None
        detail = detail or response.reason_phrase or "error"
        raise SearchError(
            f"{provider}: HTTP {response.status_code}: {detail}",
            provider=provider,
            status=response.status_code,
            retry_after=retry_after_s(response),
        )
    if body is None:
        raise SearchError(
            f"{provider}: response is not JSON ({response.headers.get('content-type', '?')})",
            provider=provider,
            status=response.status_code,
        )
    return body


class KeyedProvider(SearchProvider):
    """What the keyed HTTP providers share: the shared client, a key, a base URL and a timeout."""

    name = ""

    def __init__(
        self, client: httpx.AsyncClient, api_key: str, *, base_url: str, timeout_s: float = DEFAULT_TIMEOUT_S
    ):
        self.client = client
        self.api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
