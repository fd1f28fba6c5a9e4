"""In-process wake-ups for synchronous waiters."""

from __future__ import annotations

import asyncio

from imagegate.engine.signals import Signals


async def test_a_waiter_wakes_when_its_task_finishes() -> None:
    signals = Signals()
    waiter = asyncio.create_task(signals.wait_finished("t1", within_s=5))
    await asyncio.sleep(0)
    signals.finished("t2")
    assert not waiter.done()
    signals.finished("t1")
    assert await waiter is True


async def test_a_waiter_gives_up_after_its_limit_and_leaves_nothing_behind() -> None:
    signals = Signals()
    assert await signals.wait_finished("t1", within_s=0.01) is False
    assert signals._finished == {}


async def test_new_work_is_a_level_the_worker_clears() -> None:
    signals = Signals()
    signals.work_available()
    await asyncio.wait_for(signals.new_work.wait(), 1)
    signals.new_work.clear()
    assert not signals.new_work.is_set()
