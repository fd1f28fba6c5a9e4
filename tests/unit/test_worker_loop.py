"""The worker loop's claiming: when every new task is signalled, again at once only after a full
claim, else on the signal; unsignalled (SQLite across processes), while claims find work."""

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


def holding(store: Queue, signals: Signals, *, signalled: bool) -> Holding:
    ctx = SimpleNamespace(store=store, signals=signals, owner="w")
    return Holding(ctx, concurrency=1000, poll_interval_s=60, lease_s=60, signalled=signalled)  # type: ignore[arg-type]


async def stopped(worker: Holding, running: asyncio.Task[None]) -> None:
    worker.stop()
    for held in worker._running.values():
        held.cancel()
    await running


async def test_signalled_full_claims_repeat_at_once_and_a_partial_one_waits_for_the_signal(
    monkeypatch: Any,
) -> None:
    monkeypatch.setattr(loop, "CLAIM_BATCH", 10)
    store, signals = Queue(25), Signals()
    worker = holding(store, signals, signalled=True)
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
        await stopped(worker, running)


async def test_unsignalled_claims_repeat_while_they_find_work(monkeypatch: Any) -> None:
    monkeypatch.setattr(loop, "CLAIM_BATCH", 10)
    store = Queue(25)
    worker = holding(store, Signals(), signalled=False)
    running = asyncio.create_task(worker.run())
    try:
        await settle()
        # Another process's tasks set no signal here: the claim after a partial one looks.
        assert store.claims == [(10, 10), (10, 10), (10, 5), (10, 0)]
    finally:
        await stopped(worker, running)
