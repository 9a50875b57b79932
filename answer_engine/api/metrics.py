"""Prometheus metrics at /metrics: requests, errors by stage, per-stage latency, decode speed,
answers in flight (queue depth) and page-cache hits. One registry per app (tests build many apps)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from answer_engine.api.limits import Backpressure
from answer_engine.events import Event, EventType, Timings

if TYPE_CHECKING:
    from answer_engine.pipeline import Pipeline

STAGE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80)


class Metrics:
    def __init__(self, gate: Backpressure, pipeline: Callable[[], Pipeline | None]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("ae_requests", "HTTP requests", ["route", "status"], registry=self.registry)
        self.errors = Counter(
            "ae_errors", "Answers that ended in an error event, by stage", ["stage"], registry=self.registry
        )
        self.answers = Counter("ae_answers", "Answers completed", registry=self.registry)
        self.stage_seconds = Histogram(
            "ae_stage_seconds",
            "Latency per pipeline stage",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=self.registry,
        )
        self.tokens_per_s = Histogram(
            "ae_decode_tokens_per_second",
            "Decode speed per answer",
            buckets=(1, 2, 5, 10, 15, 20, 30, 50, 75, 100, 200),
            registry=self.registry,
        )
        self.registry.register(_StateCollector(gate, pipeline))

    async def observe(self, events: AsyncGenerator[Event, None]) -> AsyncIterator[Event]:
        """Pass events through, recording the outcome of each answer. Closing this closes ``events``
        (and so stops generation) too."""
        async with contextlib.aclosing(events) as inner:
            async for event in inner:
                self._record(event)
                yield event

    def _record(self, event: Event) -> None:
        if event.type == EventType.DONE:
            t = event.timings
            self.answers.inc()
            for stage, value in stage_ms(t).items():
                if value:
                    self.stage_seconds.labels(stage).observe(value / 1000)
            if t.tokens_per_s:
                self.tokens_per_s.observe(t.tokens_per_s)
        elif event.type == EventType.ERROR:
            self.errors.labels(event.stage).inc()


def stage_ms(t: Timings) -> dict[str, float]:
    return {
        "search": t.search_ms,
        "fetch": t.fetch_ms,
        "extract": t.extract_ms,
        "select": t.select_ms,
        "ttft": t.ttft_ms,
        "generation": t.generation_ms,
        "total": t.total_ms,
    }


class _StateCollector:
    """Values read at scrape time from the running app: queue depth and page-cache counters."""

    def __init__(self, gate: Backpressure, pipeline: Callable[[], Pipeline | None]) -> None:
        self.gate = gate
        self.pipeline = pipeline

    def collect(self) -> Iterator[Any]:
        depth = GaugeMetricFamily("ae_answers_in_flight", "Answers generating or waiting for the model")
        depth.add_metric([], self.gate.in_flight)
        yield depth
        pipeline = self.pipeline()
        reader = pipeline.reader if pipeline is not None else None
        for name, value, what in (
            ("ae_page_cache_hits", reader.cache_hits if reader else 0, "hits"),
            ("ae_page_cache_misses", reader.cache_misses if reader else 0, "misses"),
        ):
            c = CounterMetricFamily(name, f"Extracted-page cache {what}")
            c.add_metric([], value)
            yield c
