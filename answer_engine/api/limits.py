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

    def acquire(self) -> None:
        with self._lock:
            if self.in_flight >= self.max_in_flight:
                raise APIError(
                    503, f"the server is answering {self.in_flight} questions already; retry in {self.retry_after_s} s",
                    code="overloaded", headers={"Retry-After": str(self.retry_after_s)},
                )
            self.in_flight += 1

    def release(self) -> None:
        with self._lock:
            self.in_flight = max(0, self.in_flight - 1)

    @contextmanager
    def slot(self) -> Iterator[None]:
        self.acquire()
        try:
            yield
        finally:
            self.release()
