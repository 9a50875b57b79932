"""Prometheus metrics fed by the events of answers, read without a server."""

from prometheus_client import generate_latest

from answer_engine.api.limits import Backpressure
from answer_engine.api.metrics import Metrics
from answer_engine.events import DeltaEvent, DoneEvent, ErrorEvent, Timings


async def events(*items):
    for item in items:
        yield item


async def test_answers_stage_latencies_errors_and_queue_depth_are_counted():
    gate = Backpressure(4, 1)
    metrics = Metrics(gate, lambda: None)
    done = DoneEvent(timings=Timings(search_ms=20, select_ms=0, ttft_ms=1500, total_ms=3000, tokens_per_s=12))
    seen = [e async for e in metrics.observe(events(DeltaEvent(text="a"), done))]
    assert seen[-1] == done  # passed through unchanged
    [e async for e in metrics.observe(events(ErrorEvent(stage="search", message="x")))]
    with gate.slot():
        text = generate_latest(metrics.registry).decode()
    assert "ae_answers_total 1.0" in text
    assert 'ae_errors_total{stage="search"} 1.0' in text
    assert 'ae_stage_seconds_count{stage="ttft"} 1.0' in text
    assert 'ae_stage_seconds_count{stage="select"}' not in text  # a stage that took no time is not observed
    assert "ae_decode_tokens_per_second_count 1.0" in text
    assert "ae_answers_in_flight 1.0" in text
    assert "ae_page_cache_hits_total 0.0" in text  # no pipeline yet: zero, not an error
