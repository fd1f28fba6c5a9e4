"""Tasks created claimed by this process and not written yet: quick synchronous requests.

A synchronous request run where it arrived was written twice: inserted claimed before the
provider was called, then updated when it finished; on PostgreSQL two commits on the path of
every such request. Until the request is answered nobody has been told of its task, so it
is held in memory at first and written by its first write, as that write leaves it: a
request done within ``HOLD_S`` costs one INSERT. One still running then is written as it
stands, and is an ordinary durable task from there on (a process that dies with it leaves
it to another worker once its lease lapses). What a crash in the first ``HOLD_S`` loses was
acknowledged to nobody: the client sees its connection drop and sends the request again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from imagegate.engine.models import Task

log = logging.getLogger("imagegate.store")

# Longer than a quick provider's answer (a local model, a cached result, a fast upstream),
# shorter than what a client would mind losing to a crash.
HOLD_S = 1.0


@dataclass
class _Held:
    task: Task
    values: dict[str, Any]  # the columns to insert it with, as it stands
    timer: asyncio.TimerHandle


class HeldTasks:
    """The held tasks of one store; ``write`` inserts a task with the values it is given."""

    def __init__(self, write: Callable[[str, dict[str, Any]], Awaitable[object]]) -> None:
        self._write = write
        self._held: dict[str, _Held] = {}
        # Tasks whose first write is being committed: their later writes wait for it.
        self._writing: dict[str, asyncio.Future[None]] = {}
        self._persisting: set[asyncio.Task[None]] = set()

    def __contains__(self, task_id: str) -> bool:
        return task_id in self._held or task_id in self._writing

    def hold(self, task: Task, values: dict[str, Any]) -> None:
        self._held[task.id] = _Held(task, values, self._arm(task.id))

    def _arm(self, task_id: str) -> asyncio.TimerHandle:
        return asyncio.get_running_loop().call_later(HOLD_S, self._persist_later, task_id)

    def task(self, task_id: str) -> Task | None:
        held = self._held.get(task_id)
        return held.task if held is not None else None

    def owned(self, owner: str, ids: Iterable[str]) -> set[str]:
        """The ones of ``ids`` held for ``owner``, or being written: no lease to renew yet."""
        return {
            task_id
            for task_id in ids
            if task_id in self._writing
            or (task_id in self._held and self._held[task_id].task.lease_owner == owner)
        }

    def drop(self, task_id: str) -> bool:
        """Forget a task never written (its run ended without a write); whether it was held."""
        held = self._held.pop(task_id, None)
        if held is None:
            return False
        held.timer.cancel()
        return True

    @asynccontextmanager
    async def first_write(
        self, task_id: str, owner: str | None = None
    ) -> AsyncIterator[_Held | None]:
        """The held task, for the block to insert (it is no longer held once the block ends
        without an error), or None when it is not held (written already, or never held) or
        not for ``owner`` (None: whoever holds it)."""
        while (writing := self._writing.get(task_id)) is not None:
            await writing  # written by now, or held again when that write failed
        held = self._held.get(task_id)
        if held is None or owner not in (None, held.task.lease_owner):
            yield None
            return
        del self._held[task_id]
        held.timer.cancel()
        done = asyncio.get_running_loop().create_future()
        self._writing[task_id] = done
        try:
            yield held
        except BaseException:
            # Not written (or not known to be): still held, so a later write tries again.
            held.timer = self._arm(task_id)
            self._held[task_id] = held
            raise
        finally:
            del self._writing[task_id]
            done.set_result(None)

    async def persist(self, task_id: str) -> None:
        """Write a held task as it stands (no-op for one written already)."""
        async with self.first_write(task_id) as held:
            if held is not None:
                await self._write(task_id, held.values)

    def _persist_later(self, task_id: str) -> None:
        persisting = asyncio.get_running_loop().create_task(self._persist_logged(task_id))
        self._persisting.add(persisting)
        persisting.add_done_callback(self._persisting.discard)

    async def _persist_logged(self, task_id: str) -> None:
        try:
            await self.persist(task_id)
        except Exception as exc:  # still held: its next write tries again
            log.warning("task %s: could not store it yet (%s)", task_id, exc.__class__.__name__)
