"""The worker loop: claim while there is room, run each task, renew leases, drain on stop.

It wakes on whichever comes first: a new-task signal, a finished task freeing a slot, the
poll interval, or stop. Stopping stops claiming, waits for work in hand up to a grace period,
then gives back what is left so another worker can take it at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid

from imagegate.engine.models import Task
from imagegate.errors import StoreUnavailable
from imagegate.worker.execute import Context, TaskRun

log = logging.getLogger("imagegate.worker")

# At most this many tasks per claim: a worker with room for thousands fills it in a few
# statements, while one with the default concurrency still claims only what it can run.
CLAIM_BATCH = 1000


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Worker:
    def __init__(
        self,
        ctx: Context,
        *,
        concurrency: int,
        poll_interval_s: float,
        lease_s: float,
        grace_s: float = 30.0,
        signalled: bool = False,
    ) -> None:
        self.ctx = ctx
        self.concurrency = concurrency
        self.poll_interval_s = poll_interval_s
        self.lease_s = lease_s
        self.grace_s = grace_s
        # New tasks set ``new_work`` (PostgreSQL's notices, or this process's API); when not,
        # as for a worker of its own on SQLite, they are found only by claiming.
        self.signalled = signalled
        self._running: dict[str, asyncio.Task[None]] = {}
        self._reserved = 0  # slots held for tasks being created already claimed (``reserve``)
        self._stop = asyncio.Event()
        self._slot_freed = asyncio.Event()

    @property
    def in_flight(self) -> int:
        return len(self._running) + self._reserved

    async def run(self) -> None:
        """Claim and run tasks until ``stop``; then drain."""
        renewer = asyncio.create_task(self._renew_forever(), name="lease-renewal")
        try:
            while not self._stop.is_set():
                if await self._claim_once() and self.in_flight < self.concurrency:
                    continue  # more may be waiting: claim again at once
                await self._sleep()
        finally:
            await self._drain()
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer

    def stop(self) -> None:
        self._stop.set()

    # --- tasks handed over directly (a synchronous request run where it arrived) ---------

    @property
    def owner(self) -> str:
        return self.ctx.owner

    def reserve(self) -> bool:
        """Hold a slot for a task about to be created already claimed by this worker."""
        if self._stop.is_set() or self.in_flight >= self.concurrency:
            return False
        self._reserved += 1
        return True

    def adopt(self, task: Task) -> tuple[asyncio.Task[None], TaskRun] | None:
        """Use the slot ``reserve`` held: run ``task`` (claimed by us) like a claimed one, with
        its lease renewed and drained on stop. None, and no run, when the worker is stopping
        (the caller hands the request to another worker)."""
        self._reserved -= 1
        if self._stop.is_set():
            self._slot_freed.set()
            return None
        run = TaskRun(self.ctx, task)
        return self._start(task, run), run

    async def _claim_once(self) -> bool:
        """Claim what there is room for; True when more may be waiting to be claimed.

        When every new task is signalled, a claim that took less than it asked for found
        everything runnable: what is created meanwhile sets the signal, cleared before the
        claim, so ``_sleep`` returns at once. Claiming again at once instead mostly found
        nothing, and cost a transaction per task. Unsignalled, any claim that found work
        is followed by another, so a stream of tasks from other processes' APIs is not left
        to the poll interval."""
        room = self.concurrency - self.in_flight
        if room <= 0:
            return False
        self.ctx.signals.new_work.clear()
        limit = min(room, CLAIM_BATCH)
        try:
            tasks = await self.ctx.store.claim(self.ctx.owner, limit, time.time(), self.lease_s)
        except StoreUnavailable:
            log.warning("store unavailable; worker will retry")
            return False
        except Exception:
            # The loop must outlive any single failure, or the process would idle forever.
            log.exception("claim failed; worker will retry")
            return False
        for task in tasks:
            self._start(task)
        return len(tasks) == limit if self.signalled else bool(tasks)

    def _start(self, task: Task, run: TaskRun | None = None) -> asyncio.Task[None]:
        job = asyncio.create_task(
            self._guarded(task, run or TaskRun(self.ctx, task)), name=f"task-{task.id}"
        )
        self._running[task.id] = job
        job.add_done_callback(lambda _: self._finished(task.id))
        return job

    def _finished(self, task_id: str) -> None:
        self._running.pop(task_id, None)
        self._slot_freed.set()

    async def _guarded(self, task: Task, run: TaskRun) -> None:
        try:
            await run.execute()
        except asyncio.CancelledError:
            raise
        except StoreUnavailable:
            log.warning(
                "task %s: store unavailable; its lease will lapse and it is retried", task.id
            )
        except Exception:
            # A bug must not kill the worker; the lease lapses and the task is retried.
            log.exception("task %s: unexpected error", task.id)

    async def _sleep(self) -> None:
        waits = [
            asyncio.create_task(self.ctx.signals.new_work.wait()),
            asyncio.create_task(self._stop.wait()),
        ]
        if self.in_flight >= self.concurrency:
            self._slot_freed.clear()
            waits.append(asyncio.create_task(self._slot_freed.wait()))
        try:
            await asyncio.wait(waits, timeout=self.poll_interval_s, return_when="FIRST_COMPLETED")
        finally:
            for waiter in waits:
                waiter.cancel()

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self.lease_s / 3)
            ids = list(self._running)
            try:
                owned = await self.ctx.store.renew_leases(
                    self.ctx.owner, ids, time.time() + self.lease_s
                )
            except StoreUnavailable:
                continue
            except Exception:
                log.exception("lease renewal failed; retrying")
                continue
            for lost in set(ids) - owned:
                run = self._running.get(lost)
                if run is not None and not run.done():
                    log.warning("task %s: lease lost; stopping our run", lost)
                    run.cancel()

    async def _drain(self) -> None:
        if not self._running:
            return
        log.info("draining %d tasks (up to %.0fs)", len(self._running), self.grace_s)
        _, pending = await asyncio.wait(list(self._running.values()), timeout=self.grace_s)
        ids = [tid for tid, run in self._running.items() if run in pending]
        for run in pending:
            run.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for task_id in ids:
            with contextlib.suppress(StoreUnavailable):
                await self.ctx.store.release(task_id, self.ctx.owner)
