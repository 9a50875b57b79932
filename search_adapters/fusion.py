"""Several providers as one: queried in parallel under a deadline, rankings fused with reciprocal
rank fusion, duplicates merged by normalized URL, failing providers skipped by a circuit breaker."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from search_adapters.base import SearchError, SearchProvider, SearchResult
from search_adapters.filters import SearchFilters

log = logging.getLogger(__name__)

RRF_K = 60  # the constant of Cormack et al. (2009); dampens the weight of the very top ranks
TRACKING_PARAMS = {"fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "ref", "ref_src", "igshid"}


def normalize_url(url: str) -> str:
    """The key two results share when they are the same page: scheme and "www." ignored, host
    lower-cased, default port, fragment, tracking parameters and a trailing slash dropped."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return url.strip()
    host = (parts.hostname or "").lower().removeprefix("www.")
    if port and port not in (80, 443):
        host = f"{host}:{port}"
    query = urlencode(
        sorted(
            (k, v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if k.lower() not in TRACKING_PARAMS and not k.lower().startswith("utm_")
        )
    )
    path = parts.path.rstrip("/") or ""
    return urlunsplit(("", host, path, query, ""))


def rrf_fuse(rankings: Sequence[Sequence[SearchResult]], *, k: int = RRF_K) -> list[SearchResult]:
    """One ranking from several: score = sum of 1/(k + rank) over the lists a page appears in.

    The first list's copy of a page is kept (title, snippet), with a date taken from any copy that
    has one; ``score`` becomes the fused score."""
    scores: dict[str, float] = {}
    best: dict[str, SearchResult] = {}
    for ranking in rankings:
        seen: set[str] = set()
        for rank, result in enumerate(ranking, start=1):
            key = normalize_url(result.url)
            if key in seen:  # a provider listing a page twice counts it once
                continue
            seen.add(key)
            scores[key] = scores.get(key, 0.0) + 1.0 / (k + rank)
            if key not in best:
                best[key] = result
            elif best[key].date is None and result.date:
                best[key] = best[key].model_copy(update={"date": result.date})
    order = sorted(scores, key=lambda key: -scores[key])  # stable: ties keep first-seen order
    return [best[key].model_copy(update={"score": round(scores[key], 6)}) for key in order]


class CircuitBreaker:
    """Closed -> open after ``failures`` failures in a row -> one trial call after ``cooldown_s``
    (half-open) -> closed on success, open again on failure. A 429's Retry-After opens it at once
    for at least that long."""

    def __init__(
        self, *, failures: int = 3, cooldown_s: float = 30.0, clock: Callable[[], float] = time.monotonic
    ):
        self.max_failures = failures
        self.cooldown_s = cooldown_s
        self.clock = clock
        self.failures = 0
        self.open_until = 0.0
        self.trial_running = False

    @property
    def state(self) -> str:
        if self.open_until == 0.0:
            return "closed"
        return "open" if self.clock() < self.open_until else "half-open"

    def allow(self) -> bool:
        state = self.state
        if state == "closed":
            return True
        if state == "half-open" and not self.trial_running:
            self.trial_running = True
            return True
        return False

    def success(self) -> None:
        self.failures = 0
        self.open_until = 0.0
        self.trial_running = False

    def failure(self, retry_after: float | None = None) -> None:
        self.failures += 1
        self.trial_running = False
        if retry_after is not None or self.failures >= self.max_failures or self.open_until:
            self.open_until = self.clock() + max(
                self.cooldown_s if retry_after is None else 0.0, retry_after or 0.0
            )


class AllProvidersFailed(SearchError):
    """No provider answered; the message lists why, provider by provider."""


class MultiSearch(SearchProvider):
    """The configured providers as one SearchProvider."""

    name = "web"

    def __init__(
        self,
        providers: Sequence[SearchProvider],
        *,
        deadline_s: float = 6.0,
        breaker_failures: int = 3,
        breaker_cooldown_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not providers:
            raise ValueError("MultiSearch needs at least one provider")
        self.providers = list(providers)
        self.deadline_s = deadline_s
        self.breakers = {
            p.name: CircuitBreaker(failures=breaker_failures, cooldown_s=breaker_cooldown_s, clock=clock)
            for p in self.providers
        }
        self.last_errors: dict[str, str] = {}

    async def generation(self) -> str:
        return "|".join(await asyncio.gather(*(p.generation() for p in self.providers)))

    def prepare(self) -> None:
        for p in self.providers:
            p.prepare()

    async def _one(
        self, provider: SearchProvider, query: str, max_results: int, filters: SearchFilters | None
    ) -> list[SearchResult]:
        breaker = self.breakers[provider.name]
        try:
            async with asyncio.timeout(self.deadline_s):
                results = await provider.search(query, max_results=max_results, filters=filters)
        except TimeoutError as exc:
            breaker.failure()
            raise SearchError(
                f"{provider.name}: no answer within {self.deadline_s:g}s", provider=provider.name
            ) from exc
        except SearchError as exc:
            breaker.failure(exc.retry_after if exc.rate_limited else None)
            raise
        except Exception as exc:  # a provider bug is that provider's failure, not the answer's
            breaker.failure()
            raise SearchError(
                f"{provider.name}: {type(exc).__name__}: {exc}", provider=provider.name
            ) from exc
        breaker.success()
        return results

    async def search(
        self, query: str, *, max_results: int, filters: SearchFilters | None = None
    ) -> list[SearchResult]:
        callable_now = [p for p in self.providers if self.breakers[p.name].allow()]
        skipped = {
            p.name: "circuit open after repeated failures" for p in self.providers if p not in callable_now
        }
        outcomes = await asyncio.gather(
            *(self._one(p, query, max_results, filters) for p in callable_now), return_exceptions=True
        )
        rankings: list[list[SearchResult]] = []
        errors = dict(skipped)
        for provider, outcome in zip(callable_now, outcomes):
            if isinstance(outcome, BaseException):
                if not isinstance(outcome, Exception):
                    raise outcome  # cancellation and the like go up untouched
                errors[provider.name] = str(outcome).removeprefix(f"{provider.name}: ")
                log.warning("search provider %s failed: %s", provider.name, outcome)
            else:
                rankings.append(outcome)
        self.last_errors = errors
        if not rankings:
            raise AllProvidersFailed(
                "every search provider failed: " + "; ".join(f"{name}: {why}" for name, why in errors.items())
            )
        return rrf_fuse(rankings)[:max_results]
