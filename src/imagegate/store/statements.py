"""The task table's statements built once, and the guards they share.

Built at import: per call SQLAlchemy would otherwise build the clauses and walk them for
their cache key, which dominated a worker finishing thousands of tasks. On PostgreSQL a
write that a poll or a waiter must hear of announces itself (``announcing``: ``pg_notify``
in its RETURNING, for the rows it changed, so no round trip of its own).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from imagegate.engine.states import TaskStatus, sources_of
from imagegate.store.channels import CHANGED_CHANNEL, FINISHED_CHANNEL
from imagegate.store.schema import tasks


def owned(task_id: str, owner: str, *, to: TaskStatus) -> sa.ColumnElement[bool]:
    """The compare-and-swap guard for a worker's write: its own lease, an allowed source."""
    return sa.and_(
        tasks.c.id == task_id,
        tasks.c.lease_owner == owner,
        tasks.c.status.in_(sources_of(to)),
    )


def by_owner(to: TaskStatus) -> sa.ColumnElement[bool]:
    """``owned`` with bound parameters (``w_id``, ``w_owner``), for a statement built once."""
    return sa.and_(
        tasks.c.id == sa.bindparam("w_id"),
        tasks.c.lease_owner == sa.bindparam("w_owner"),
        tasks.c.status.in_(sources_of(to)),
    )


def value(column: sa.Column[Any]) -> sa.BindParameter[Any]:
    return sa.bindparam(f"v_{column.name}", type_=column.type)


# What a completion sets besides its images and its time (``COMPLETE``, and the insert of a
# task completed before it was ever written: ``store.held``).
COMPLETION: dict[str, Any] = {
    "status": TaskStatus.COMPLETED.value,
    "progress": 100,
    "queue_position": None,
    "lease_owner": None,
    "lease_expires_at": None,
}
COMPLETE = (
    tasks.update()
    .where(by_owner(TaskStatus.COMPLETED))
    .values(**COMPLETION, images=value(tasks.c.images), updated_at=value(tasks.c.updated_at))
)
SAVE_UPSTREAM = (
    tasks.update().where(by_owner(TaskStatus.PROCESSING)).values(upstream=value(tasks.c.upstream))
)
SET_PROGRESS = (
    tasks.update()
    .where(by_owner(TaskStatus.PROCESSING))
    .values(progress=value(tasks.c.progress), queue_position=value(tasks.c.queue_position))
)


def announcing(update: sa.Update, channel: str) -> sa.Update:
    """``update`` sending a notice on ``channel`` for each row it changes (PostgreSQL)."""
    return update.returning(sa.func.pg_notify(channel, tasks.c.id))


def _claim() -> sa.Update:
    """Up to ``c_limit`` runnable tasks, oldest first, taken for ``c_owner`` until
    ``c_until``: pending ones, and those whose worker's lease lapsed. ``SKIP LOCKED`` lets any
    number of workers claim at once on PostgreSQL; SQLite ignores it and serialises writers."""
    now = sa.bindparam("c_now", type_=tasks.c.run_after.type)
    claimable = (
        sa.select(tasks.c.id)
        .where(
            tasks.c.run_after <= now,
            tasks.c.status.in_(sources_of(TaskStatus.PROCESSING)),
            sa.or_(
                tasks.c.status == TaskStatus.PENDING.value,
                tasks.c.lease_expires_at.is_(None),
                tasks.c.lease_expires_at < now,
            ),
        )
        .order_by(tasks.c.run_after)
        .limit(sa.bindparam("c_limit", type_=sa.Integer))
        .with_for_update(skip_locked=True)
    )
    return (
        tasks.update()
        .where(tasks.c.id.in_(claimable.scalar_subquery()))
        .values(
            status=TaskStatus.PROCESSING.value,
            lease_owner=sa.bindparam("c_owner", type_=tasks.c.lease_owner.type),
            lease_expires_at=sa.bindparam("c_until", type_=tasks.c.lease_expires_at.type),
            attempts=tasks.c.attempts + 1,
            updated_at=now,
            queue_position=None,
        )
        .returning(*tasks.c)
    )


CLAIM = _claim()
COMPLETE_PG = announcing(COMPLETE, FINISHED_CHANNEL)
SET_PROGRESS_PG = announcing(SET_PROGRESS, CHANGED_CHANNEL)
CLAIM_PG = announcing(CLAIM, CHANGED_CHANNEL)


# Several notices in one statement: (channel, payload) pairs as two arrays.
NOTIFY_ALL = sa.text(
    "SELECT pg_notify(c, p) FROM unnest(CAST(:channels AS text[]), CAST(:payloads AS text[]))"
    " AS n(c, p)"
)
