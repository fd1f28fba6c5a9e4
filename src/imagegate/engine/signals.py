"""In-process wake-ups: new work for the worker, finished tasks for synchronous waiters.

A signal is only a hint to look at the store sooner; correctness never depends on it, so a
process that misses one (another process created the task) still sees it on its next poll.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict


class Signals:
    def __init__(self) -> None:
        self.new_work = asyncio.Event()
        self._finished: defaultdict[str, set[asyncio.Event]] = defaultdict(set)

    def work_available(self) -> None:
        self.new_work.set()

    def finished(self, task_id: str) -> None:
        for event in self._finished.pop(task_id, ()):
            event.set()

    async def wait_finished(self, task_id: str, within_s: float) -> bool:
        """Wait up to ``within_s`` for ``finished(task_id)``; True when it came."""
        event = asyncio.Event()
        self._finished[task_id].add(event)
        try:
            async with asyncio.timeout(within_s):
                await event.wait()
            return True
        except TimeoutError:
            return False
        finally:
            waiters = self._finished.get(task_id)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._finished[task_id]
