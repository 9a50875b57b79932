"""Backpressure: a bounded number of answers in flight (generating or waiting for the model).

One llama.cpp model writes one answer at a time, so every extra stream only waits longer (bench:
time to first token 10 s alone, 48 s p50 with 8 streams). Beyond the bound a request gets a 503
with Retry-After at once instead of piling up.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from answer_engine.api.errors import APIError


class Backpressure:
    def __init__(self, max_in_flight: int, retry_after_s: int) -> None:
        self.max_in_flight = max_in_flight
        self.retry_after_s = retry_after_s
        self.in_flight = 0
        self._lock = threading.Lock()

    def acquire(self) -> Slot:
        with self._lock:
            if self.in_flight >= self.max_in_flight:
                raise APIError(
                    503,
                    f"the server is answering {self.in_flight} questions already; "
                    f"retry in {self.retry_after_s} s",
                    code="overloaded",
                    headers={"Retry-After": str(self.retry_after_s)},
                )
            self.in_flight += 1
        return Slot(self)

    def _release(self) -> None:
        with self._lock:
            self.in_flight = max(0, self.in_flight - 1)

    @contextmanager
    def slot(self) -> Iterator[Slot]:
        held = self.acquire()
        try:
            yield held
        finally:
            held.release()


class Slot:
    """One answer's place; releasing twice counts once. A stream releases it when its generator
    ends and again, as a guard, from the response's background task: a generator that a client
    abandons before its first step never runs its ``finally``."""

    def __init__(self, gate: Backpressure) -> None:
        self._gate = gate
        self._held = True
        self._lock = threading.Lock()

    def release(self) -> None:
        with self._lock:
            held, self._held = self._held, False
        if held:
            self._gate._release()
