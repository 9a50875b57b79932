"""Page and search caches: in-process, and in the real Redis at 127.0.0.1:6379 — including Redis
going away and coming back mid-run (a TCP proxy in front of it is cut and restored)."""

from __future__ import annotations

import asyncio
import uuid

from answer_engine.cache import MemoryCache, RedisCache, cache_key


async def test_memory_cache_round_trip_ttl_and_isolation():
    cache = MemoryCache(max_items=2)
    value = {"title": "T", "text": "body"}
    await cache.set("page", "k", value, ttl_s=0.2)
    value["text"] = "changed by the caller"
    assert await cache.get("page", "k") == {"title": "T", "text": "body"}
    assert await cache.get("search", "k") is None  # namespaces are separate
    await asyncio.sleep(0.3)
    assert await cache.get("page", "k") is None
    assert (cache.hits, cache.misses) == (1, 2)


def test_cache_key_is_stable_and_distinguishes_parts():
    assert cache_key("q", 5, {"a": 1, "b": 2}) == cache_key("q", 5, {"b": 2, "a": 1})
    assert cache_key("q", 5) != cache_key("q", 6)


async def test_redis_cache_is_shared_between_replicas(redis_url):
    prefix = f"ae:test:{uuid.uuid4().hex}:"
    a, b = RedisCache(redis_url, prefix=prefix), RedisCache(redis_url, prefix=prefix)
    try:
        await a.set("page", "k", {"text": "read once"}, ttl_s=5)
        assert await b.get("page", "k") == {"text": "read once"}
        await a.set("search", "short", [1], ttl_s=0.2)
        await asyncio.sleep(0.4)
        assert await b.get("search", "short") is None  # the TTL is Redis's own
    finally:
        await a.aclose()
        await b.aclose()


async def test_redis_down_and_back_mid_run(redis_proxy):
    cache = RedisCache(
        f"redis://127.0.0.1:{redis_proxy.port}/0",
        prefix=f"ae:test:{uuid.uuid4().hex}:",
        timeout_s=0.3,
        backoff_s=0.5,
    )
    try:
        await cache.set("page", "k", {"v": 1}, ttl_s=30)
        assert await cache.get("page", "k") == {"v": 1}

        await redis_proxy.stop()  # Redis "goes down": connections dropped, new ones refused
        async with asyncio.timeout(2):  # a miss, quickly, not an exception or a hang
            assert await cache.get("page", "k") is None
            await cache.set("page", "k2", {"v": 2}, ttl_s=30)  # skipped, silently
            assert await cache.get("page", "k") is None  # backing off: Redis not even asked
        assert cache.errors >= 1

        await redis_proxy.start()  # back
        await asyncio.sleep(0.6)  # past the back-off
        assert await cache.get("page", "k") == {"v": 1}
    finally:
        await cache.aclose()
