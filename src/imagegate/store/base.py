"""The store's narrow protocol. Each status change is one conditional UPDATE (a compare-and-swap)
whose allowed source statuses come from ``engine.states``; a write that lost a race returns
``False``/``None`` instead of overwriting someone else's result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from imagegate.engine.models import StoredImage, Task, UpstreamState
from imagegate.engine.states import TaskStatus


@dataclass(frozen=True)
class ApiKeyRecord:
    id: str
    key_hash: str
    prefix: str
    name: str
    created_at: float
    revoked_at: float | None = None


@dataclass(frozen=True)
class ModelStats:
    model: str
    completed: int
    failed: int


class Store(Protocol):
    """Task and key persistence; every method is one short transaction."""

    async def start(self) -> None:
        """Connect and apply migrations."""

    async def close(self) -> None: ...

    # tasks: creation and reads
    async def create_task(self, task: Task) -> Task:
        """Insert ``task``; with an idempotency key already used by its API key within the
        window, return the existing task instead (the caller compares request hashes)."""

    async def get_task(self, task_id: str, *, recent: bool = False) -> Task | None:
        """``recent``: a live task may come from memory, as another process changed it up to
        a notice's delivery ago (``store.live``); without it, always as stored."""

    async def list_tasks(
        self,
        key_id: str,
        *,
        limit: int,
        before: tuple[float, str] | None = None,
        status: TaskStatus | None = None,
        alive_at: float | None = None,
    ) -> list[Task]:
        """The key's tasks, newest first; with ``alive_at``, only those not expired by then."""

    # tasks: the worker's transitions
    async def claim(self, owner: str, limit: int, now: float, lease_s: float) -> list[Task]: ...

    async def renew_leases(self, owner: str, ids: list[str], until: float) -> set[str]:
        """Extend leases still held by ``owner``; returns the ids it still owns."""

    async def save_upstream(self, task_id: str, owner: str, upstream: UpstreamState) -> bool: ...

    async def set_progress(
        self, task_id: str, owner: str, progress: int | None, queue_position: int | None
    ) -> bool: ...

    async def complete(self, task_id: str, owner: str, images: list[StoredImage]) -> bool: ...

    async def fail(
        self,
        task_id: str,
        owner: str | None,
        error: str,
        error_code: str,
        *,
        cancelled: bool = False,
    ) -> bool:
        """Fail a non-terminal task; ``owner=None`` fails it whoever holds it (sweeper)."""

    async def schedule_retry(self, task_id: str, owner: str, run_after: float) -> bool: ...

    async def release(self, task_id: str, owner: str) -> bool:
        """Give a task back untouched (graceful stop): another worker may claim it at once."""

    # tasks: cancel and housekeeping
    async def cancel_pending(self, task_id: str) -> bool: ...

    async def request_cancel(self, task_id: str) -> bool: ...

    async def overdue(self, now: float, limit: int) -> list[Task]: ...

    async def delete_expired(self, now: float, limit: int) -> list[Task]: ...

    async def model_stats(self, since: float) -> list[ModelStats]: ...

    async def pending_count(self) -> int: ...

    # API keys
    async def add_key(self, record: ApiKeyRecord) -> bool: ...

    async def key_by_hash(self, key_hash: str) -> ApiKeyRecord | None: ...

    async def list_keys(self) -> list[ApiKeyRecord]: ...

    async def revoke_key(self, key_id_or_prefix: str, now: float) -> int: ...

    async def count_keys(self) -> int: ...

    # tasks: created already claimed, and held in memory until their first write
    def hold_claimed(self, task: Task) -> None:
        """Take ``task`` as processing, leased to ``task.lease_owner``, who runs it at once
        (no idempotency key: such a request takes ``create_task``). It is written by its
        first write, as that write leaves it, or by ``persist`` (``store.held``)."""

    async def persist(self, task_id: str) -> None:
        """Write a held task now, as it stands: its id is about to be given out."""

    def drop_held(self, task_id: str) -> bool:
        """Forget a held task that was never written; whether it was held."""
