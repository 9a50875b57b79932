"""Caches for fetched-and-extracted pages and for search results.

In-process (an LRU with a TTL per namespace) by default; Redis when REDIS_URL is set, so every
replica shares what one has read. Values are JSON. The cache is an optimisation, never a
dependency: when Redis is down or slow, a read is a miss and a write is skipped, and the engine
stops asking Redis for a few seconds instead of paying its timeout on every call.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from typing import Any, Protocol

from cachetools import TTLCache

log = logging.getLogger(__name__)

REDIS_TIMEOUT_S = 0.5
REDIS_BACKOFF_S = 5.0


class Cache(Protocol):
    hits: int
    misses: int

    async def get(self, namespace: str, key: str) -> Any | None: ...

    async def set(self, namespace: str, key: str, value: Any, ttl_s: float) -> None: ...


def cache_key(*parts: Any) -> str:
    """A short stable key for any JSON-able parts (URLs can be long; queries carry filters)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


class MemoryCache:
    """One LRU-with-TTL per namespace; its TTL is the one its first write gives."""

    def __init__(self, *, max_items: int = 256) -> None:
        self.max_items = max_items
        self._spaces: dict[str, TTLCache[str, str]] = {}
        self.hits = 0
        self.misses = 0

    async def get(self, namespace: str, key: str) -> Any | None:
        space = self._spaces.get(namespace)
        raw = space.get(key) if space is not None else None
        if raw is None:
            self.misses += 1
            return None
        self.hits += 1
        return json.loads(raw)

    async def set(self, namespace: str, key: str, value: Any, ttl_s: float) -> None:
        space = self._spaces.setdefault(namespace, TTLCache(maxsize=self.max_items, ttl=ttl_s))
        space[key] = json.dumps(value)  # stored as text: a caller mutating its value cannot change the cache


class RedisCache:
    def __init__(
        self,
        url: str,
        *,
        prefix: str = "ae:cache:",
        timeout_s: float = REDIS_TIMEOUT_S,
        backoff_s: float = REDIS_BACKOFF_S,
    ) -> None:
        import redis.asyncio as redis

        self.client = redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        self.prefix = prefix
        self.hits = 0
        self.misses = 0
        self.errors = 0
        self._down_until = 0.0
        self.backoff_s = backoff_s

    def _available(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self, op: str, exc: Exception) -> None:
        self.errors += 1
        self._down_until = time.monotonic() + self.backoff_s
        log.warning(
            "cache %s failed (%s: %s); going without Redis for %gs",
            op,
            type(exc).__name__,
            exc,
            self.backoff_s,
        )

    async def get(self, namespace: str, key: str) -> Any | None:
        raw = None
        if self._available():
            try:
                raw = await self.client.get(f"{self.prefix}{namespace}:{key}")
            except Exception as exc:  # redis.ConnectionError, TimeoutError, ...: a miss
                self._failed("read", exc)
        if raw is None:
            self.misses += 1
            return None
        self.hits += 1
        try:
            return json.loads(raw)
        except ValueError:
            return None

    async def set(self, namespace: str, key: str, value: Any, ttl_s: float) -> None:
        if not self._available():
            return
        try:
            await self.client.set(
                f"{self.prefix}{namespace}:{key}", json.dumps(value), px=max(1, int(ttl_s * 1000))
            )
        except Exception as exc:
            self._failed("write", exc)

    async def aclose(self) -> None:
        try:
            await self.client.aclose()
        except Exception:  # closing a dead connection must not fail shutdown
            pass


def create_cache(redis_url: str | None, *, max_items: int) -> MemoryCache | RedisCache:
    return RedisCache(redis_url) if redis_url else MemoryCache(max_items=max_items)
