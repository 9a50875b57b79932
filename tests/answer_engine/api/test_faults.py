"""Faults for real, through the whole service: Redis (rate limits and caches) cut and restored
mid-run by a TCP proxy, and a search provider whose connections are dropped. Every request gets an
answer or a clear error event; none hangs, none is a 500 without a body."""

from __future__ import annotations

import asyncio
import json

import httpx

from answer_engine.api.app import create_app
from answer_engine.cache import RedisCache
from answer_engine.components import build_pipeline
from answer_engine.config import load_settings
from answer_engine.evaluation.load import ask_over_sse


async def test_redis_down_and_restarted_mid_run(settings, redis_proxy, fake_backend_cls, serve):
    url_redis = f"redis://127.0.0.1:{redis_proxy.port}/0"
    s = load_settings(
        data_dir=settings.data_dir,
        redis_url=url_redis,
        retrieval={"dense_weight": 0.0},
        server={"rate_limit_per_min": 6000, "rate_limit_burst": 100},
    )
    pipeline = build_pipeline(s, backend=fake_backend_cls(["Marie Curie won the Nobel Prize [1]."]))
    assert isinstance(pipeline.reader.cache, RedisCache)
    pipeline.reader.cache.backoff_s = 0.5
    url = await asyncio.to_thread(serve, create_app(s, pipeline=pipeline))
    questions = ["Who was Marie Curie?", "What is oxygen?", "Where is Warsaw?"]
    async with httpx.AsyncClient(timeout=30) as client:

        async def round_() -> list[str]:
            async with asyncio.timeout(20):
                return [(await ask_over_sse(client, url, q))["outcome"] for q in questions]

        assert await round_() == ["ok"] * 3
        hits_before = pipeline.reader.cache.hits
        await redis_proxy.stop()  # Redis gone: rate limits fall back in-process, the cache misses
        assert await round_() == ["ok"] * 3
        assert pipeline.reader.cache.errors >= 1
        r = await client.get(f"{url}/v1/models")
        assert r.status_code == 200 and "x-ratelimit-remaining" in r.headers
        await redis_proxy.start()  # back
        await asyncio.sleep(0.6)
        assert await round_() == ["ok"] * 3
        assert (
            pipeline.reader.cache.hits > hits_before
        )  # pages cached before the outage are read from Redis again
    await pipeline.aclose()


async def test_search_provider_dropping_connections(tmp_path, little_web, tcp_proxy, fake_backend_cls, serve):
    base, _ = little_web
    proxy = await tcp_proxy(int(base.rsplit(":", 1)[1]))
    s = load_settings(
        data_dir=tmp_path / "data",
        retrieval={"dense_weight": 0.0},
        search={
            "providers": ["searxng"],
            "searxng_url": f"http://127.0.0.1:{proxy.port}",
            "deadline_s": 2.0,
            "cache_ttl_s": 0.001,
        },
        fetch={"allow_networks": ["127.0.0.1/32"], "timeout_s": 2.0},
    )
    pipeline = build_pipeline(s, backend=fake_backend_cls(["Tides follow the Moon [1]."]))
    url = await asyncio.to_thread(serve, create_app(s, pipeline=pipeline))
    async with httpx.AsyncClient(timeout=30) as client:
        assert (await ask_over_sse(client, url, "What causes tides?"))["outcome"] == "ok"
        await proxy.stop()
        async with asyncio.timeout(10):
            r = await client.post(f"{url}/api/ask", json={"query": "What causes an aurora?"})
        data = [json.loads(line[5:]) for line in r.text.splitlines() if line.startswith("data:")]
        assert r.status_code == 200 and data[-1]["type"] == "error" and data[-1]["stage"] == "search"
        assert "searxng" in data[-1]["message"]
        body = {"model": "answer-engine", "messages": [{"role": "user", "content": "What causes an aurora?"}]}
        r = await client.post(f"{url}/v1/chat/completions", json=body)
        assert r.status_code == 503 and "search" in r.json()["error"]["message"]  # a clear error with a body
        await proxy.start()
        assert (await ask_over_sse(client, url, "What causes an aurora?"))["outcome"] == "ok"
    await pipeline.aclose()
