"""Graceful shutdown for streams: an answer in flight when the server is told to stop (SIGTERM)
gets ``server.shutdown_grace_s`` to finish; if it cannot, it ends with an error event saying so,
and its pipeline is closed (fetches and generation stop) — never a stream cut mid-answer.

The server's stop is read from sse-starlette's AppStatus, which it sets from uvicorn's exit
handler. The pipeline runs as a producer task feeding a queue, so the deadline never cancels code
in the middle of sending a frame."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from sse_starlette.sse import AppStatus

from answer_engine.events import ErrorEvent, Event

POLL_S = 0.25
_END = object()


def shutting_down() -> bool:
    return bool(AppStatus.should_exit)


async def until_shutdown(events: AsyncIterator[Event], grace_s: float) -> AsyncIterator[Event]:
    queue: asyncio.Queue[object] = asyncio.Queue(maxsize=256)

    async def produce() -> None:
        try:
            async with contextlib.aclosing(events) as it:  # type: ignore[type-var]
                async for event in it:
                    await queue.put(event)
        except Exception as exc:  # handed to the consumer, which reports it in-band
            await queue.put(exc)
        finally:
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(_END)

    task = asyncio.create_task(produce())
    stop_at: float | None = None
    try:
        while True:
            if stop_at is None and shutting_down():
                stop_at = time.monotonic() + grace_s
            wait = POLL_S if stop_at is None else max(0.0, min(POLL_S, stop_at - time.monotonic()))
            try:
                item = await asyncio.wait_for(queue.get(), wait)
            except TimeoutError:
                if stop_at is not None and time.monotonic() >= stop_at:
                    yield ErrorEvent(
                        stage="shutdown",
                        message="the server is shutting down and could not finish "
                        "this answer in time; please ask again",
                    )
                    return
                continue
            if item is _END:
                return
            if isinstance(item, Exception):
                raise item
            yield item  # type: ignore[misc]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
