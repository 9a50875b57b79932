"""API keys and rate limits, in-process and in the real Redis at 127.0.0.1:6379."""

import uuid

import httpx
import pytest

from answer_engine.api.access import LocalBucket, RedisBucket, hash_key
from answer_engine.api.app import create_app
from answer_engine.components import build_pipeline
from answer_engine.config import ConfigError, load_settings

REDIS_URL = "redis://127.0.0.1:6379/0"
ASK = {
    "model": "answer-engine",
    "messages": [{"role": "user", "content": "What was Maria Curie the first female recipient of?"}],
}


def redis_up() -> bool:
    import redis

    try:
        return bool(redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except Exception:
        return False


async def client_for(settings, backend):
    app = create_app(settings, pipeline=build_pipeline(settings, backend=backend))
    return app, httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("10.1.2.3", 5000)), base_url="http://t"
    )


async def test_keys_required_when_configured(settings, fake_backend_cls):
    settings.server.api_key_hashes = [hash_key("good-key")]
    _, c = await client_for(settings, fake_backend_cls(["Nobel Prize."]))
    async with c:
        r = await c.post("/v1/chat/completions", json=ASK)
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
        assert r.headers["WWW-Authenticate"] == "Bearer"
        r = await c.post("/v1/chat/completions", json=ASK, headers={"Authorization": "Bearer bad-key"})
        assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
        assert (await c.post("/api/ask", json={"query": "x"})).status_code == 401
        assert (await c.get("/v1/models")).status_code == 401
        r = await c.post("/v1/chat/completions", json=ASK, headers={"Authorization": "Bearer good-key"})
        assert r.status_code == 200
        assert (await c.get("/health")).status_code == 200  # open
        assert (await c.get("/")).status_code == 200  # the UI's files are open


def test_keys_must_be_configured_as_hashes():
    with pytest.raises(ConfigError, match="sha256"):
        load_settings(server={"api_key_hashes": ["my-plain-secret"]})


async def test_rate_limit_in_process_gives_429_with_headers(settings, fake_backend_cls):
    settings.server.rate_limit_per_min = 60
    settings.server.rate_limit_burst = 2
    _, c = await client_for(settings, fake_backend_cls(["Nobel Prize."]))
    async with c:
        first = await c.get("/v1/models")
        assert first.status_code == 200 and first.headers["X-RateLimit-Limit"] == "2"
        assert first.headers["X-RateLimit-Remaining"] == "1"
        assert (await c.get("/v1/models")).status_code == 200
        r = await c.get("/v1/models")
        assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limit_exceeded"
        assert int(r.headers["Retry-After"]) >= 1
        assert (await c.get("/health")).status_code == 200  # not limited


async def test_local_bucket_refills():
    bucket = LocalBucket(rate_per_min=60_000, burst=1)  # 1000 per second
    assert (await bucket.take("a")).allowed
    assert (await bucket.take("b")).allowed  # callers have their own buckets
    import asyncio

    await asyncio.sleep(0.01)
    assert (await bucket.take("a")).allowed


@pytest.mark.skipif(
    not redis_up(), reason="LOUD SKIP: no Redis at 127.0.0.1:6379 (CI and every machine should have one)"
)
async def test_redis_bucket_is_shared_between_replicas(settings, fake_backend_cls):
    prefix = f"ae-test-{uuid.uuid4().hex}:"
    a = RedisBucket(REDIS_URL, rate_per_min=60, burst=3, prefix=prefix)
    b = RedisBucket(REDIS_URL, rate_per_min=60, burst=3, prefix=prefix)  # a second replica
    got = [(await (a if i % 2 else b).take("key:abc")).allowed for i in range(4)]
    assert got == [True, True, True, False]
    d = await a.take("key:abc")
    assert not d.allowed and d.retry_after_s >= 1
    assert (await a.take("key:other")).allowed
    await a.client.aclose()
    await b.client.aclose()


async def test_redis_down_falls_back_to_in_process_limits():
    bucket = RedisBucket("redis://127.0.0.1:1/0", rate_per_min=60, burst=1)  # nothing listens on port 1
    assert (await bucket.take("k")).allowed
    assert not (await bucket.take("k")).allowed  # still limited, by the fallback
    await bucket.client.aclose()


@pytest.mark.skipif(not redis_up(), reason="LOUD SKIP: no Redis at 127.0.0.1:6379")
async def test_app_uses_redis_when_redis_url_is_set(settings, fake_backend_cls, monkeypatch):
    monkeypatch.setenv("REDIS_URL", REDIS_URL)
    s = load_settings(
        data_dir=settings.data_dir,
        server={"rate_limit_per_min": 60, "rate_limit_burst": 1},
        retrieval={"dense_weight": 0.0},
    )
    assert s.redis_url == REDIS_URL
    app, c = await client_for(s, fake_backend_cls())
    assert isinstance(app.state.limiter, RedisBucket)
    app.state.limiter.prefix = f"ae-test-{uuid.uuid4().hex}:"
    async with c:
        assert (await c.get("/v1/models")).status_code == 200
        assert (await c.get("/v1/models")).status_code == 429
    await app.state.limiter.client.aclose()
