"""Background-task helpers: stopping loops that resist one cancel, timeouts that never lose a cancel or an item."""

from __future__ import annotations

import asyncio

import pytest

from core.tasks import QueueTimeout, cancel_and_wait, queue_get, wait_event


async def test_cancel_and_wait_stops_a_task_that_swallows_the_first_cancel() -> None:
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                swallowed += 1
                if swallowed > 1:
                    raise

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    await cancel_and_wait([task, None], timeout=5)
    assert task.cancelled() and swallowed == 2


async def test_cancel_and_wait_skips_the_calling_task() -> None:
    await cancel_and_wait([asyncio.current_task()], timeout=1)  # would cancel itself otherwise
    assert not asyncio.current_task().cancelling()


async def test_queue_get_times_out_without_taking_an_item() -> None:
    q: asyncio.Queue[int] = asyncio.Queue()
    with pytest.raises(QueueTimeout):
        await queue_get(q, 0.05)
    q.put_nowait(1)
    assert await queue_get(q, 0) == 1

    async def later() -> None:
        await asyncio.sleep(0.05)
        q.put_nowait(2)

    asyncio.create_task(later())
    assert await queue_get(q, 2) == 2
    with pytest.raises(QueueTimeout):
        await queue_get(q, 0)
    q.put_nowait(3)  # nothing left behind by the timed-out getters
    assert q.qsize() == 1 and await queue_get(q, 0) == 3


async def test_wait_event_and_loop_cancellation() -> None:
    ev = asyncio.Event()
    assert await wait_event(ev, 0.01) is False
    asyncio.get_running_loop().call_later(0.02, ev.set)
    assert await wait_event(ev, 2) is True

    ticks = 0

    async def poller() -> None:
        nonlocal ticks
        while True:
            await wait_event(asyncio.Event(), 0.001)
            ticks += 1

    task = asyncio.create_task(poller())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert ticks > 3
