"""The worker loop's claiming: again at once after a full claim, else only when woken."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

from imagegate.engine.models import Task
from imagegate.engine.signals import Signals
from imagegate.worker import loop
from imagegate.worker.execute import TaskRun
from imagegate.worker.loop import Worker
from tests.unit.test_execute import task


class Queue:
    """A store that hands out its pending tasks, at most ``limit`` per claim."""

    def __init__(self, count: int) -> None:
        self.pending = [replace(task(), id=f"igt_{i}") for i in range(count)]
        self.claims: list[tuple[int, int]] = []  # (asked for, got)

    async def claim(self, owner: str, limit: int, now: float, lease_s: float) -> list[Task]:
        taken, self.pending = self.pending[:limit], self.pending[limit:]
        self.claims.append((limit, len(taken)))
        return taken

    async def renew_leases(self, owner: str, ids: list[str], until: float) -> set[str]:
        return set(ids)


class Holding(Worker):
    """Keeps what it claims instead of running it: only the claiming is under test."""

    def _start(self, task: Task, run: TaskRun | None = None) -> Any:
        held = asyncio.get_running_loop().create_future()
        self._running[task.id] = held
        return held


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_full_claims_repeat_at_once_and_a_partial_one_waits_for_a_wake_up(
    monkeypatch: Any,
) -> None:
    monkeypatch.setattr(loop, "CLAIM_BATCH", 10)
    store = Queue(25)
    signals = Signals()
    ctx = SimpleNamespace(store=store, signals=signals, owner="w")
    worker = Holding(ctx, concurrency=1000, poll_interval_s=60, lease_s=60)  # type: ignore[arg-type]
    running = asyncio.create_task(worker.run())
    try:
        await settle()
        # Two full claims, then the rest; nothing more to claim until told of new work.
        assert store.claims == [(10, 10), (10, 10), (10, 5)]
        store.pending = [replace(task(), id="igt_new")]
        signals.work_available()
        await settle()
        assert store.claims[3:] == [(10, 1)]
        assert len(worker._running) == 26
    finally:
        worker.stop()
        for held in worker._running.values():
            held.cancel()
        await running
