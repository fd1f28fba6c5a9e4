"""The task service the API calls: create, run, read, list, cancel and wait, with ownership checks.

Ownership is enforced here, once: a task of another API key is indistinguishable from a task
that does not exist.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

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


class RunResult(Protocol):
    """What a run in this process leaves behind for the request that handed it the task."""

    @property
    def outcome(self) -> Task | None:
        """The task as the run's final write stored it; None when no such write happened."""

    @property
    def blobs(self) -> Mapping[str, bytes]:
        """The bytes of the images the run stored, by storage key."""


class LocalRunner(Protocol):
    """This process's worker: it can run a task that is stored already claimed by it."""

    @property
    def owner(self) -> str: ...

    lease_s: float

    def reserve(self) -> bool:
        """Hold a slot for one task; False when full or stopping."""

    def adopt(self, task: Task) -> tuple[asyncio.Task[None], RunResult] | None:
        """Run ``task`` in the slot held; None when the worker is stopping."""


@dataclass(frozen=True)
class SyncResult:
    """A synchronous request's task and, when it ran here, its images' bytes by key."""

    task: Task
    blobs: Mapping[str, bytes]


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
        # Set when this process runs a worker: synchronous requests then run here at once.
        self.runner: LocalRunner | None = None

    async def create(
        self,
        key_id: str,
        create: CreateRequest,
        *,
        body: dict[str, Any],
        idempotency_key: str | None = None,
    ) -> Task:
        """Store a new pending task (committed before this returns) and wake a worker."""
        digest = request_hash(body) if idempotency_key else None
        task = self._new_task(key_id, create, idempotency_key=idempotency_key, digest=digest)
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

    def _new_task(
        self,
        key_id: str,
        create: CreateRequest,
        *,
        idempotency_key: str | None = None,
        digest: str | None = None,
    ) -> Task:
        now = time.time()
        deadline = create.spec.deadline_s or self.settings.default_deadline_s
        return Task(
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

    async def run(
        self,
        key_id: str,
        create: CreateRequest,
        *,
        body: dict[str, Any],
        idempotency_key: str | None,
        within_s: float,
    ) -> SyncResult:
        """A synchronous request: its task once terminal, or as it stands after ``within_s``.

        When this process's worker has room, the task is taken already claimed by it and run
        right here: no claim, no wake-up, no read back. Its task is written by the run's first
        write (for a quick run, its last: one INSERT of the finished task), or once it ran
        for ``store.held.HOLD_S``, from when on it is a durable task like any other: if this
        process dies, the lease lapses and another worker finishes it. An idempotent request,
        or one that finds no room, is queued like any other and waited for.
        """
        runner = self.runner
        if idempotency_key is None and runner is not None and runner.reserve():
            return await self._run_here(runner, key_id, create, body, within_s)
        task = await self.create(key_id, create, body=body, idempotency_key=idempotency_key)
        return SyncResult(await self.wait(task, within_s), {})

    async def _run_here(
        self,
        runner: LocalRunner,
        key_id: str,
        create: CreateRequest,
        body: dict[str, Any],
        within_s: float,
    ) -> SyncResult:
        until = time.monotonic() + within_s
        task = self._new_task(key_id, create)
        task = task.evolve(
            status=TaskStatus.PROCESSING,
            attempts=1,
            lease_owner=runner.owner,
            lease_expires_at=task.created_at + runner.lease_s,
        )
        self.store.hold_claimed(task)
        adopted = runner.adopt(task)
        if adopted is None:  # the worker began to stop: queue the request for another one
            self.store.drop_held(task.id)
            task = await self.create(key_id, create, body=body)
            return SyncResult(await self.wait(task, until - time.monotonic()), {})
        job, result = adopted
        # ``wait`` neither cancels the run when time is up (the result is paid for and kept)
        # nor raises when the run was cancelled (a stopping worker gave the task back).
        await asyncio.wait([job], timeout=max(0.0, until - time.monotonic()))
        if not job.done():
            await self.store.persist(task.id)  # its id is given out
            return SyncResult(task, {})  # still running: the caller answers the task object
        if (outcome := result.outcome) is not None:  # built on each read: read once
            return SyncResult(outcome, result.blobs)
        if self.store.drop_held(task.id):
            # The run ended without any write it could make (the store failed it): nothing
            # of it is stored, and nothing goes on elsewhere. Nobody was told of it either.
            raise StoreUnavailable()
        # The run ended without a final write (a retry was scheduled, the lease was lost, the
        # worker stopped): the task goes on elsewhere, so wait for it like any queued one.
        return SyncResult(await self.wait(await self._latest(task), until - time.monotonic()), {})

    async def _latest(self, task: Task) -> Task:
        try:
            return await self.store.get_task(task.id) or task
        except StoreUnavailable:
            return task

    async def get(self, key_id: str, task_id: str, *, recent: bool = False) -> Task:
        """The key's task; ``recent`` for a poll, which may be answered from memory (see
        ``Store.get_task``), never for a decision such as a cancel."""
        if not is_task_id(task_id):
            raise TaskNotFound()
        task = self._finished.get(task_id) or await self.store.get_task(task_id, recent=recent)
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
            task = await self._latest(task)
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
