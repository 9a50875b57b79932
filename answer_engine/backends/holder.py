"""The backend new answers go to, swapped without dropping the answers already generating.

``engine-build promote`` loads a new backend into a running service: new answers go to it at once,
answers in flight finish on the backend they started on, and the old one is closed after the last
of them (or after the generation timeout, whichever comes first).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from answer_engine.backends.base import Backend

log = logging.getLogger(__name__)
CLOSE_SLACK_S = 30.0


class BackendHolder:
    def __init__(self, backend: Backend, *, drain_timeout_s: float = 300.0) -> None:
        self.current = backend
        self.drain_timeout_s = drain_timeout_s + CLOSE_SLACK_S
        self._users: dict[int, int] = {}  # id(backend) -> answers using it
        self._tasks: set[asyncio.Task[None]] = set()

    @contextlib.asynccontextmanager
    async def lease(self) -> AsyncIterator[Backend]:
        """The current backend, for one whole answer, even if another is swapped in meanwhile."""
        backend = self.current
        self._users[id(backend)] = self._users.get(id(backend), 0) + 1
        try:
            yield backend
        finally:
            self._users[id(backend)] -= 1
            if not self._users[id(backend)]:
                del self._users[id(backend)]

    def in_use(self, backend: Backend) -> int:
        return self._users.get(id(backend), 0)

    def swap(self, new: Backend) -> Backend:
        """Send new answers to ``new``; close the old backend once its last answer is done."""
        old, self.current = self.current, new

        async def close_when_idle() -> None:
            deadline = time.monotonic() + self.drain_timeout_s
            while self.in_use(old) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            await old.aclose()
            log.info("previous backend closed after its last answer")

        task = asyncio.get_running_loop().create_task(close_when_idle())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return old
