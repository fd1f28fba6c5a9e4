"""The task service the API calls: create, read, list, cancel and wait, with ownership checks.

Ownership is enforced here, once: a task of another API key is indistinguishable from a task
that does not exist.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from imagegate.catalog import Catalog
from imagegate.engine.models import Task
from imagegate.engine.signals import Signals
from imagegate.engine.states import TaskStatus
from imagegate.engine.validation import CreateRequest
from imagegate.errors import Conflict, StoreUnavailable, TaskNotFound
from imagegate.ids import is_task_id, new_task_id
from imagegate.store.base import Store

_CANCEL_WAIT_S = 5.0
FINISHED_CACHE_SIZE = 4096


def request_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class EngineSettings:
    retention_s: float
    default_deadline_s: float
    # A synchronous waiter re-reads the store this often, in case the signal that its task
    # finished never reaches this process (no notifications between processes on SQLite).
    wait_poll_s: float = 0.25


class TaskService:
    def __init__(
        self,
        store: Store,
        catalog: Catalog,
        signals: Signals,
        settings: EngineSettings,
        cancellable: Callable[[Task], bool],
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.signals = signals
        self.settings = settings
        self._cancellable = cancellable
        # A terminal task never changes again (CONTRACT §3: an immutable snapshot), so polls
        # of finished tasks are answered from memory; only live tasks cost a database read.
        self._finished: dict[str, Task] = {}

    async def create(
        self,
        key_id: str,
        create: CreateRequest,
        *,
        body: dict[str, Any],
        idempotency_key: str | None = None,
    ) -> Task:
        """Store a new pending task (committed before this returns) and wake a worker."""
        now = time.time()
        deadline = create.spec.deadline_s or self.settings.default_deadline_s
        digest = request_hash(body) if idempotency_key else None
        task = Task(
            id=new_task_id(),
            key_id=key_id,
            model=create.spec.id,
            status=TaskStatus.PENDING,
            request=create.request,
            created_at=now,
            updated_at=now,
            run_after=now,
            deadline_at=now + deadline,
            expires_at=now + max(self.settings.retention_s, deadline),
            idempotency_key=idempotency_key,
            request_hash=digest,
        )
        stored = await self.store.create_task(task)
        if stored.id != task.id and stored.request_hash != digest:
            raise Conflict(
                "This Idempotency-Key was already used with a different request body.",
                code="idempotency_key_reused",
                param="Idempotency-Key",
            )
        if stored.id == task.id:
            self.signals.work_available()
        return stored

    async def get(self, key_id: str, task_id: str) -> Task:
        if not is_task_id(task_id):
            raise TaskNotFound()
        task = self._finished.get(task_id) or await self.store.get_task(task_id)
        if task is None or task.key_id != key_id or task.expires_at < time.time():
            raise TaskNotFound()
        if task.terminal and task_id not in self._finished:
            if len(self._finished) >= FINISHED_CACHE_SIZE:
                del self._finished[next(iter(self._finished))]  # the oldest entry
            self._finished[task_id] = task
        return task

    async def list(
        self,
        key_id: str,
        *,
        limit: int,
        before: tuple[float, str] | None,
        status: TaskStatus | None,
    ) -> list[Task]:
        return await self.store.list_tasks(
            key_id, limit=limit, before=before, status=status, alive_at=time.time()
        )

    async def wait(self, task: Task, within_s: float) -> Task:
        """Wait until ``task`` is terminal or ``within_s`` passes; returns its latest state.

        The task is already stored, so a store outage while waiting is not an error: the
        caller gets the last state it saw (the task object to poll), never a lost task.
        """
        deadline = time.monotonic() + within_s
        while not task.terminal:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            await self.signals.wait_finished(task.id, min(left, self.settings.wait_poll_s))
            try:
                task = await self.store.get_task(task.id) or task
            except StoreUnavailable:
                continue
        return task

    async def cancel(self, key_id: str, task_id: str) -> Task:
        """Cancel per CONTRACT §4; a processing task only where its provider can stop the job."""
        task = await self.get(key_id, task_id)
        if task.status is TaskStatus.PENDING and await self.store.cancel_pending(task.id):
            return await self.get(key_id, task_id)
        task = await self.get(key_id, task_id)
        cancellable = task.status is TaskStatus.PROCESSING and self._cancellable(task)
        if cancellable and await self.store.request_cancel(task.id):
            self.signals.work_available()
            return await self.wait(task, _CANCEL_WAIT_S)
        raise Conflict(
            f"Task is {task.status.value} and cannot be cancelled.",
            code="task_not_cancellable",
        )
