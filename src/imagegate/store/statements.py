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


COMPLETE = (
    tasks.update()
    .where(by_owner(TaskStatus.COMPLETED))
    .values(
        status=TaskStatus.COMPLETED.value,
        images=value(tasks.c.images),
        progress=100,
        queue_position=None,
        lease_owner=None,
        lease_expires_at=None,
        updated_at=value(tasks.c.updated_at),
    )
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


COMPLETE_PG = announcing(COMPLETE, FINISHED_CHANNEL)
SET_PROGRESS_PG = announcing(SET_PROGRESS, CHANGED_CHANNEL)


# Several notices in one statement: (channel, payload) pairs as two arrays.
NOTIFY_ALL = sa.text(
    "SELECT pg_notify(c, p) FROM unnest(CAST(:channels AS text[]), CAST(:payloads AS text[]))"
    " AS n(c, p)"
)
