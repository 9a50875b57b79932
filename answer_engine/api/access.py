"""Access control: optional API keys (stored as sha256 hashes, never logged) and per-key or per-IP
rate limits (token bucket: in Redis when REDIS_URL is set, so all replicas share it; in-process
otherwise)."""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)
PROTECTED_PREFIXES = ("/api/", "/v1/", "/search")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    return "ae-" + secrets.token_urlsafe(32)


def bearer_token(authorization: str | None) -> str:
    """The key of an ``Authorization: Bearer <key>`` header; "" when absent or of another scheme."""
    scheme, _, presented = (authorization or "").partition(" ")
    return presented.strip() if scheme.lower() == "bearer" else ""


def key_allowed(presented: str, hashes: list[str]) -> bool:
    digest = hash_key(presented)
    # compare against every hash, in constant time each, so timing says nothing about which matched
    return any([hmac.compare_digest(digest, h.lower()) for h in hashes])


@dataclass
class Decision:
    allowed: bool
    limit: int
    remaining: int
    retry_after_s: int


class LocalBucket:
    """In-process token buckets, refilled continuously at ``rate_per_min``, holding up to ``burst``."""

    def __init__(self, rate_per_min: int, burst: int) -> None:
        self.rate = rate_per_min / 60.0
        self.burst = burst
        self._state: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    async def take(self, who: str) -> Decision:
        now = time.monotonic()
        with self._lock:
            tokens, last = self._state.get(who, (float(self.burst), now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            allowed = tokens >= 1
            if allowed:
                tokens -= 1
            self._state[who] = (tokens, now)
            if len(self._state) > 100_000:  # bound memory: forget the idlest callers
                for k in sorted(self._state, key=lambda k: self._state[k][1])[:50_000]:
                    del self._state[k]
        wait = 0 if allowed else math.ceil((1 - tokens) / self.rate)
        return Decision(allowed, self.burst, int(tokens), wait)


# KEYS[1] bucket key; ARGV: rate per second, burst, now (s), ttl (s). Returns {allowed, tokens*1000}.
_LUA = """
local b = redis.call('HMGET', KEYS[1], 't', 'ts')
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tokens = tonumber(b[1]) or burst
local ts = tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local allowed = 0
if tokens >= 1 then tokens = tokens - 1; allowed = 1 end
redis.call('HSET', KEYS[1], 't', tokens, 'ts', now)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
return {allowed, math.floor(tokens * 1000)}
"""


class RedisBucket:
    """The same bucket in Redis, atomic in one Lua script; the clock is Redis's own (TIME)."""

    def __init__(self, url: str, rate_per_min: int, burst: int, *, prefix: str = "ae:rl:") -> None:
        import redis.asyncio as redis

        self.client = redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self.rate = rate_per_min / 60.0
        self.burst = burst
        self.prefix = prefix
        self.fallback = LocalBucket(rate_per_min, burst)
        self._script: Any = self.client.register_script(_LUA)

    async def take(self, who: str) -> Decision:
        try:
            sec, usec = await self.client.time()
            now = sec + usec / 1e6
            ttl = max(60, math.ceil(self.burst / self.rate) * 2)
            allowed, milli = await self._script(
                keys=[self.prefix + who], args=[self.rate, self.burst, now, ttl]
            )
        except Exception as exc:  # Redis down: keep serving, limited per process
            log.warning("rate limit store unavailable (%s); limiting in-process", type(exc).__name__)
            return await self.fallback.take(who)
        tokens = milli / 1000
        wait = 0 if allowed else math.ceil((1 - tokens) / self.rate)
        return Decision(bool(allowed), self.burst, int(tokens), wait)
