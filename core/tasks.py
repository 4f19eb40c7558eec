"""Stopping background tasks reliably.

On Python 3.11 ``asyncio.wait_for`` can swallow a cancellation that arrives as
its own timeout fires, so a loop that polls with it may survive one
``cancel()``.  :func:`cancel_and_wait` keeps cancelling until every task is done.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeriodicJob:
    """A background job a package contributes; `hotline worker` runs each every `interval_seconds`."""

    name: str
    interval_seconds: float
    run: Callable[[], Awaitable[object]]


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any] | None], timeout: float = 10.0) -> None:
    me = asyncio.current_task()
    pending = {t for t in tasks if t is not None and t is not me and not t.done()}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while pending:
        for task in pending:
            task.cancel()
        left = deadline - loop.time()
        if left <= 0:
            log.warning("%d background task(s) ignored cancellation: %s", len(pending),
                        [t.get_name() for t in pending])
            return
        _done, pending = await asyncio.wait(pending, timeout=min(0.5, left))


# Timeouts without cancellation.  On 3.11 both ``wait_for`` and ``asyncio.timeout`` can race with a
# cancellation: ``wait_for`` may swallow one from outside, and ``asyncio.timeout`` firing just as the
# awaited thing completes leaves a stray cancel that hits the *next* await.  Long-running loops use these.

async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """Wait until `event` is set or `timeout` passes; True if it was set."""
    if event.is_set():
        return True
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({waiter}, timeout=timeout)
    finally:
        if not waiter.done():
            waiter.cancel()
    return event.is_set()


class QueueTimeout(Exception):
    """Nothing arrived in time (see :func:`queue_get`)."""


async def queue_get(queue: asyncio.Queue[Any], timeout: float) -> Any:
    """The next item of `queue`, or :class:`QueueTimeout`.  A cancelled getter never takes an item."""
    if not queue.empty():
        return queue.get_nowait()
    getter = asyncio.ensure_future(queue.get())
    try:
        await asyncio.wait({getter}, timeout=timeout)
    finally:
        if not getter.done():
            getter.cancel()
    if getter.done() and not getter.cancelled():
        return getter.result()
    raise QueueTimeout
