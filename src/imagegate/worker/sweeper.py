"""Housekeeping beside the worker: fail tasks past their deadline, delete expired ones.

Several sweepers may run at once (one per worker process); every write is a compare-and-swap
or an idempotent delete, so they never conflict.
"""

from __future__ import annotations

import asyncio
import logging
import time

from imagegate.engine.signals import Signals
from imagegate.errors import StoreUnavailable
from imagegate.storage.base import Storage
from imagegate.store.base import Store

log = logging.getLogger("imagegate.sweeper")
BATCH = 500


class Sweeper:
    def __init__(self, store: Store, storage: Storage, signals: Signals, interval_s: float) -> None:
        self.store = store
        self.storage = storage
        self.signals = signals
        self.interval_s = interval_s

    async def run(self) -> None:
        while True:
            try:
                await self.sweep_once()
            except StoreUnavailable:
                pass  # the next pass catches up
            except Exception:
                log.exception("sweep failed; retrying next interval")
            await asyncio.sleep(self.interval_s)

    async def sweep_once(self, now: float | None = None) -> tuple[int, int]:
        """One pass; returns (tasks timed out, tasks deleted)."""
        now = time.time() if now is None else now
        timed_out = 0
        for task in await self.store.overdue(now, BATCH):
            message = "The task did not finish before its deadline."
            if await self.store.fail(task.id, None, message, "timeout"):
                timed_out += 1
                self.signals.finished(task.id)
        deleted = await self.store.delete_expired(now, BATCH)
        keys = [image.key for task in deleted for image in task.images]
        if keys:
            await self.storage.delete(keys)
        if timed_out or deleted:
            log.info("sweep: %d timed out, %d expired tasks deleted", timed_out, len(deleted))
        return timed_out, len(deleted)
