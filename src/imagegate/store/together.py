"""Statements that run several writes of one kind as one (``store.batch.Together``).

A batch of writes used to be one statement per write: a round trip and SQLAlchemy's
execution path each. These forms keep every write's own outcome: an insert either lands or
fails the statement (the batch is then retried write by write), and a completion reports
whether its own compare-and-swap guard passed.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from imagegate.engine.states import TaskStatus, sources_of
from imagegate.store.batch import Executor, Write
from imagegate.store.channels import FINISHED_CHANNEL
from imagegate.store.schema import tasks

INSERT = tasks.insert()  # one task, or many with a list of parameter sets


async def insert_together(conn: Executor, writes: Sequence[Write]) -> list[int]:
    """New tasks in one multi-row INSERT; an id already taken fails the batch, which is then
    retried one write at a time (``WriteBatcher``)."""
    await conn.execute(INSERT, [w.params or {} for w in writes])
    return [1] * len(writes)


async def insert_together_pg(conn: Executor, writes: Sequence[Write]) -> list[int]:
    """``insert_together`` on PostgreSQL, as one statement whatever the number of rows
    (``executemany`` executes the INSERT once per row): a multi-row VALUES for a few rows, and
    above ``VALUES_MAX`` an INSERT of the rows of ``unnest`` over an array per column. A
    VALUES form is a statement per number of rows, but for one or two rows it cost a third
    less CPU here than arrays of one or two elements, in the client and in the server: the
    batches of a synchronous request's INSERT are that small."""
    params = [w.params or {} for w in writes]
    names = tuple(params[0])
    if len(params) <= VALUES_MAX:
        values = {f"{name}_{i}": row[name] for i, row in enumerate(params) for name in names}
        await conn.execute(_values_insert(names, len(params)), values)
    else:
        columns = {name: [row[name] for row in params] for name in names}
        await conn.execute(_unnest_insert(names), columns)
    return [1] * len(writes)


VALUES_MAX = 8  # rows; one statement a size up to this, so at most this many VALUES forms


@functools.lru_cache(maxsize=8 * VALUES_MAX)
def _values_insert(names: tuple[str, ...], rows: int) -> sa.Insert:
    """The INSERT of ``rows`` rows of these columns, parameter ``{name}_{row}`` for each value
    (typed as its column, so JSON is serialized as the column's would be)."""
    return tasks.insert().values(
        [
            {name: sa.bindparam(f"{name}_{i}", type_=tasks.c[name].type) for name in names}
            for i in range(rows)
        ]
    )


@functools.lru_cache(maxsize=8)
def _unnest_insert(names: tuple[str, ...]) -> sa.Insert:
    """The INSERT for these columns (a task queued, or one created claimed, name others); the
    arrays' element types process each value (JSON is serialized) as a column's would."""
    arrays = [sa.bindparam(name, type_=postgresql.ARRAY(tasks.c[name].type)) for name in names]
    rows = sa.func.unnest(*arrays).table_valued(*names).render_derived()
    return tasks.insert().from_select(list(names), sa.select(*(rows.c[name] for name in names)))


# Completions in one statement on PostgreSQL, each still under its own compare-and-swap
# guard; RETURNING tells which of them changed their row, and announces each of those. The
# rows are locked in id order, as every other multi-row write locks them, so that two such
# writes never deadlock.
_COMPLETE_TOGETHER = sa.text(
    "UPDATE tasks SET status = :done, images = s.images, progress = 100,"
    " queue_position = NULL, lease_owner = NULL, lease_expires_at = NULL,"
    " updated_at = s.updated_at"
    " FROM (SELECT t.id, v.images, v.updated_at FROM tasks AS t"
    " JOIN unnest(CAST(:ids AS varchar[]), CAST(:owners AS varchar[]),"
    " CAST(:images AS json[]), CAST(:updated AS float8[])) AS v(id, owner, images, updated_at)"
    " ON t.id = v.id"
    " WHERE t.lease_owner = v.owner AND t.status = ANY(CAST(:sources AS varchar[]))"
    " ORDER BY t.id FOR UPDATE OF t) AS s"
    " WHERE tasks.id = s.id"
    " RETURNING tasks.id, pg_notify(:channel, tasks.id)"
)


async def complete_together(conn: Executor, writes: Sequence[Write]) -> list[int]:
    params = [w.params or {} for w in writes]
    values = {
        "done": TaskStatus.COMPLETED.value,
        "channel": FINISHED_CHANNEL,
        "ids": [p["w_id"] for p in params],
        "owners": [p["w_owner"] for p in params],
        "images": [json.dumps(p["v_images"]) for p in params],
        "updated": [p["v_updated_at"] for p in params],
        "sources": list(sources_of(TaskStatus.COMPLETED)),
    }
    changed = set((await conn.execute(_COMPLETE_TOGETHER, values)).scalars())
    return [int(p["w_id"] in changed) for p in params]
