"""SQLAlchemy Core implementation of the store, for SQLite (aiosqlite) and PostgreSQL (asyncpg).

One function per statement; the statements built once, the claim among them, are in
``store.statements``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from imagegate.config import Durability
from imagegate.engine.models import StoredImage, Task, UpstreamState
from imagegate.engine.states import TaskStatus, sources_of
from imagegate.errors import StoreUnavailable
from imagegate.store.base import ApiKeyRecord, ModelStats
from imagegate.store.batch import Executor, Together, WriteBatcher
from imagegate.store.channels import CHANGED_CHANNEL, FINISHED_CHANNEL, NEW_TASK_CHANNEL
from imagegate.store.engine import (
    asyncpg_dsn,
    make_engine,
    make_read_engine,
    unavailable_as_store_error,
)
from imagegate.store.fastread import ReadBusy, SqliteReader, fast_reader
from imagegate.store.fastwrite import WriterBusy, fast_writer
from imagegate.store.held import HeldTasks
from imagegate.store.live import LiveTasks
from imagegate.store.migrate import upgrade
from imagegate.store.pgwrite import PostgresWriter
from imagegate.store.rows import key_of, task_of, task_of_raw, task_values
from imagegate.store.schema import api_keys, tasks
from imagegate.store.statements import (
    CLAIM,
    CLAIM_PG,
    COMPLETE,
    COMPLETE_PG,
    COMPLETION,
    NOTIFY_ALL,
    SAVE_UPSTREAM,
    SET_PROGRESS,
    SET_PROGRESS_PG,
    announcing,
    owned,
)
from imagegate.store.together import (
    INSERT,
    complete_together,
    insert_together,
    insert_together_pg,
)

IDEMPOTENCY_WINDOW_S = 24 * 3600.0
# PostgreSQL connections of the write batcher (``store.pgwrite``): as many transactions as
# may be open at once.
WRITE_CONNECTIONS = 8
# Leases renewed per statement (``SqlStore.renew_leases``).
RENEW_CHUNK = 500
_ID_ARRAY = postgresql.ARRAY(tasks.c.id.type)
# Rows read by ``get_task`` remembered with the Task made of each.
SEEN_ROWS = 4096
_ALIVE = (TaskStatus.PENDING.value, TaskStatus.PROCESSING.value)


def _dropped(exc: StoreUnavailable) -> bool:
    cause = exc.__cause__
    return isinstance(cause, sa.exc.DBAPIError) and cause.connection_invalidated


class SqlStore:
    """The store on one SQLAlchemy async engine."""

    def __init__(
        self, url: str, *, engine: AsyncEngine | None = None, durability: Durability = "crash"
    ) -> None:
        self.url = url
        self.engine = engine or make_engine(url, durability)
        self.is_postgres = self.engine.dialect.name == "postgresql"
        # Single-row writes share transactions (group commit). A worker finishing thousands
        # of tasks together holds one or two pooled connections, not the whole pool, so reads
        # (the status route) still find one and no write times out waiting for the pool.
        self._pg_writer = (
            # One connection more than the batcher's flushers, for the worker's claims.
            PostgresWriter(asyncpg_dsn(url), self.engine.dialect, WRITE_CONNECTIONS + 1)
            if self.is_postgres
            else None
        )
        self._writes = WriteBatcher(
            self._batch_tx,
            self._notify_all,
            flushers=WRITE_CONNECTIONS if self.is_postgres else 1,
            alone=self._pg_writer.alone if self._pg_writer is not None else None,
        )
        self._here = fast_writer(url, durability)
        self._inserts = insert_together_pg if self.is_postgres else insert_together
        # pysqlite opens no transaction for a SELECT, so SQLite reads need no engine of their own.
        self._reader = make_read_engine(url) or self.engine
        # Reads of one row by key (task status, API keys) bypass SQLAlchemy: the hot path.
        self._fast = fast_reader(url, self.engine.dialect)
        self._seen: dict[str, tuple[Mapping[Any, Any], Task]] = {}
        # Trusted on PostgreSQL while this process's listener hears every change, on SQLite
        # while no connection committed since (``_catch_up``).
        self.live = LiveTasks()
        self._versioned = self._fast if isinstance(self._fast, SqliteReader) else None
        self._version: int | None = None
        self._held = HeldTasks(self._insert_held)

    async def start(self) -> None:
        async with self._tx() as conn:
            await conn.run_sync(upgrade)
        if self._fast is not None:
            await self._fast.start()
        if self._pg_writer is not None:
            await self._pg_writer.start()

    async def close(self) -> None:
        await self._writes.drain()
        if self._here is not None:
            await self._here.close()
        if self._pg_writer is not None:
            await self._pg_writer.close()
        if self._fast is not None:
            await self._fast.close()
        if self._reader is not self.engine:
            await self._reader.dispose()
        await self.engine.dispose()

    @asynccontextmanager
    async def _connection(self, *, write: bool) -> AsyncIterator[AsyncConnection]:
        """A lost or refused database becomes ``StoreUnavailable``."""
        with unavailable_as_store_error():
            async with self.engine.begin() if write else self._reader.connect() as conn:
                yield conn

    def _tx(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """One transaction, committed at the end of the block."""
        return self._connection(write=True)

    @asynccontextmanager
    async def _batch_tx(self) -> AsyncIterator[Executor]:
        """A batch's transaction: on PostgreSQL on the batcher's own connections
        (``store.pgwrite``); on SQLite on the loop-thread connection when the write lock is
        free soon, else on the engine (``store.fastwrite``)."""
        if self._pg_writer is not None:
            async with self._pg_writer.transaction() as conn:
                yield conn
            return
        if self._here is not None:
            try:
                async with self._here.transaction() as conn:
                    yield conn
                return
            except WriterBusy:
                pass
        async with self._tx() as conn:
            yield conn

    def _read(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A connection for one read, outside any transaction (see ``make_read_engine``)."""
        return self._connection(write=False)

    async def _rows(self, query: sa.Select[Any]) -> Sequence[RowMapping]:
        """Run one read; when its pooled connection turns out dead, retry once on a new one."""
        try:
            return await self._fetch(query)
        except StoreUnavailable as exc:
            if not _dropped(exc):
                raise
        return await self._fetch(query)

    async def _fetch(self, query: sa.Select[Any]) -> Sequence[RowMapping]:
        async with self._read() as conn:
            rows: Sequence[RowMapping] = (await conn.execute(query)).mappings().all()
        return rows

    # --- tasks: creation and reads ------------------------------------------------------

    async def create_task(self, task: Task) -> Task:
        if task.idempotency_key is None:
            await self._writes.run(
                INSERT, task.id, (NEW_TASK_CHANNEL, task.id), task_values(task), self._inserts
            )
            return task
        return await self._create_idempotent(task)

    async def _insert(self, conn: AsyncConnection, task: Task) -> None:
        await conn.execute(tasks.insert().values(**task_values(task)))
        await self._notify(conn, NEW_TASK_CHANNEL, task.id)

    async def _notify(self, conn: AsyncConnection, channel: str, task_id: str) -> None:
        """Wake listeners in other processes; delivered at commit, dropped on rollback."""
        await self._notify_all(conn, [(channel, task_id)])

    async def _notify_all(self, conn: Executor, sent: Sequence[tuple[str, str]]) -> None:
        """Several notifications in one statement (one round trip for a whole batch)."""
        if self.is_postgres and sent:
            channels, payloads = zip(*sent, strict=True)
            await conn.execute(NOTIFY_ALL, {"channels": list(channels), "payloads": list(payloads)})

    async def _create_idempotent(self, task: Task) -> Task:
        """Insert unless this key already used the idempotency key within the window."""
        for _ in range(3):
            async with self._tx() as conn:
                existing = await self._by_idempotency(conn, task.key_id, task.idempotency_key)
                if existing is None:
                    try:
                        async with conn.begin_nested():
                            await self._insert(conn, task)
                        return task
                    except sa.exc.IntegrityError:
                        continue  # a concurrent request won; read its task next round
                if existing.created_at >= task.created_at - IDEMPOTENCY_WINDOW_S:
                    return existing
                # An old use of the key: release it so the new request owns it.
                await conn.execute(
                    tasks.update().where(tasks.c.id == existing.id).values(idempotency_key=None)
                )
                await self._insert(conn, task)
                return task
        raise StoreUnavailable("could not settle a concurrent idempotent create")

    async def _by_idempotency(
        self, conn: AsyncConnection, key_id: str, idem: str | None
    ) -> Task | None:
        query = sa.select(tasks).where(tasks.c.key_id == key_id, tasks.c.idempotency_key == idem)
        row = (await conn.execute(query)).mappings().first()
        return task_of(row) if row else None

    async def get_task(self, task_id: str, *, recent: bool = False) -> Task | None:
        if recent:
            self._catch_up()
            kept = self.live.get(task_id)
            if kept is not None:
                return kept
        elif (held := self._held.task(task_id)) is not None:
            # Its own run, reading it back; a poll never names a held task (its id is given
            # out only once it is written), so the status route does not look here.
            return held
        mark = self.live.mark()  # before the read is sent (``LiveTasks.keep``)
        row = await self._first(tasks.c.id, task_id)
        if row is None:
            return None
        task = self._task(task_id, row)
        if recent:
            self.live.keep(task, mark)
        return task

    def _catch_up(self) -> None:
        """SQLite has no notices, but tells when any connection committed: then everything
        remembered is forgotten, else it is exactly as stored."""
        if self._versioned is None:
            return
        version = self._versioned.version()
        if version is None:
            self.live.distrust()
        elif version != self._version:
            self.live.trust()
        self._version = version

    def _task(self, task_id: str, row: Mapping[Any, Any]) -> Task:
        # A polled task is mostly unchanged since its last read: the same row gives the same
        # (immutable) Task, so building it is skipped and callers may cache by identity.
        seen = self._seen.get(task_id)
        if seen is not None and (seen[0] is row or seen[0] == row):
            return seen[1]
        task = task_of(row)
        if len(self._seen) >= SEEN_ROWS:
            self._seen.clear()
        self._seen[task_id] = (row, task)
        return task

    async def _first(self, column: sa.Column[Any], value: str) -> Mapping[Any, Any] | None:
        """The row whose unique ``column`` is ``value``: from the fast reader, or through the
        engine when there is none or SQLite would have to wait for a lock."""
        if self._fast is not None:
            try:
                return await self._fast.first(column.table.name, column.name, value)
            except ReadBusy:
                pass
        rows = await self._rows(sa.select(column.table).where(column == value))
        return rows[0] if rows else None

    async def list_tasks(
        self,
        key_id: str,
        *,
        limit: int,
        before: tuple[float, str] | None = None,
        status: TaskStatus | None = None,
        alive_at: float | None = None,
    ) -> list[Task]:
        query = sa.select(tasks).where(tasks.c.key_id == key_id)
        if alive_at is not None:
            query = query.where(tasks.c.expires_at >= alive_at)
        if status is not None:
            query = query.where(tasks.c.status == status.value)
        if before is not None:
            created, task_id = before
            query = query.where(
                sa.or_(
                    tasks.c.created_at < created,
                    sa.and_(tasks.c.created_at == created, tasks.c.id < task_id),
                )
            )
        query = query.order_by(tasks.c.created_at.desc(), tasks.c.id.desc()).limit(limit)
        return [task_of(r) for r in await self._rows(query)]

    # --- tasks: the worker's transitions -------------------------------------------------

    async def claim(self, owner: str, limit: int, now: float, lease_s: float) -> list[Task]:
        params = {"c_now": now, "c_limit": limit, "c_owner": owner, "c_until": now + lease_s}
        if self._pg_writer is not None:
            # On the batcher's raw connections: through the engine a claim, built per call,
            # was a tenth of a PostgreSQL worker's CPU.
            async with self._pg_writer.alone() as raw:
                rows = (await raw.execute(CLAIM_PG, params)).rows
            claimed = [task_of_raw(r.items()) for r in rows]
        else:
            async with self._tx() as conn:
                claimed = [task_of(r) for r in (await conn.execute(CLAIM, params)).mappings()]
        for task in claimed:
            self.live.changed(task.id)
        return claimed

    async def renew_leases(self, owner: str, ids: list[str], until: float) -> set[str]:
        """Renew in chunks of ``RENEW_CHUNK``, each its own short transaction in id order.

        One statement for 10,000 tasks held all their rows while it ran (10,000 bound
        parameters to build and plan) just as those tasks finished, and locked them in
        another order than the batched completions did: deadlocks, and completions stalled
        for seconds."""
        owned = self._held.owned(owner, ids)
        ordered = sorted(set(ids) - owned)
        for start in range(0, len(ordered), RENEW_CHUNK):
            chunk = ordered[start : start + RENEW_CHUNK]
            async with self._tx() as conn:
                owned.update((await conn.execute(self._renewal(owner, chunk, until))).scalars())
        return owned

    def _renewal(self, owner: str, chunk: list[str], until: float) -> sa.Update:
        mine = [tasks.c.lease_owner == owner, tasks.c.status == TaskStatus.PROCESSING.value]
        if not self.is_postgres:  # SQLite has one writer: no lock order to keep
            where = sa.and_(tasks.c.id.in_(chunk), *mine)
        else:
            # Lock the rows in id order, as every batch of writes does (``WriteBatcher``).
            locked = (
                sa.select(tasks.c.id)
                .where(tasks.c.id == sa.any_(sa.literal(chunk, _ID_ARRAY)), *mine)
                .order_by(tasks.c.id)
                .with_for_update()
                .subquery()
            )
            where = tasks.c.id == locked.c.id
        return tasks.update().where(where).values(lease_expires_at=until).returning(tasks.c.id)

    async def _change(
        self,
        statement: sa.Executable,
        task_id: str,
        params: dict[str, Any] | None = None,
        together: Together | None = None,
    ) -> bool:
        """One conditional write of one task, committed with whatever else is being written;
        this process forgets what it remembered of the task (``store.live``) before it returns.
        On PostgreSQL the statement announces itself (``announcing``)."""
        try:
            return bool(await self._writes.run(statement, task_id, None, params, together))
        finally:
            self.live.changed(task_id)

    async def _update(self, task_id: str, where: sa.ColumnElement[bool], **values: Any) -> bool:
        """A write a poll shows (or one so rare that announcing it costs nothing)."""
        return await self._change(self._announced(where, values, CHANGED_CHANNEL), task_id)

    async def _finish(self, task_id: str, where: sa.ColumnElement[bool], **values: Any) -> bool:
        """A terminal write; on success, waiters in other processes hear of it at commit."""
        return await self._change(self._announced(where, values, FINISHED_CHANNEL), task_id)

    def _announced(
        self, where: sa.ColumnElement[bool], values: dict[str, Any], channel: str
    ) -> sa.Update:
        update = tasks.update().where(where).values(**values)
        return announcing(update, channel) if self.is_postgres else update

    async def save_upstream(self, task_id: str, owner: str, upstream: UpstreamState) -> bool:
        # No notice: a poll does not show the upstream job.
        changes = {"upstream": upstream.to_json()}
        if (done := await self._write_held(task_id, owner, changes)) is not None:
            return done
        params = {"w_id": task_id, "w_owner": owner, "v_upstream": changes["upstream"]}
        return await self._change(SAVE_UPSTREAM, task_id, params=params)

    async def set_progress(
        self, task_id: str, owner: str, progress: int | None, queue_position: int | None
    ) -> bool:
        changes = {"progress": progress, "queue_position": queue_position}
        if (done := await self._write_held(task_id, owner, changes)) is not None:
            return done
        params = {
            "w_id": task_id,
            "w_owner": owner,
            "v_progress": progress,
            "v_queue_position": queue_position,
        }
        update = SET_PROGRESS_PG if self.is_postgres else SET_PROGRESS
        return await self._change(update, task_id, params)

    async def complete(self, task_id: str, owner: str, images: list[StoredImage]) -> bool:
        changes = {**COMPLETION, "images": [i.to_json() for i in images], "updated_at": time.time()}
        if (done := await self._write_held(task_id, owner, changes)) is not None:
            return done
        params = {
            "w_id": task_id,
            "w_owner": owner,
            "v_images": changes["images"],
            "v_updated_at": changes["updated_at"],
        }
        if self.is_postgres:
            return await self._change(COMPLETE_PG, task_id, params, complete_together)
        return await self._change(COMPLETE, task_id, params)

    async def fail(
        self,
        task_id: str,
        owner: str | None,
        error: str,
        error_code: str,
        *,
        cancelled: bool = False,
    ) -> bool:
        changes = {
            "status": TaskStatus.FAILED.value,
            "error": error[:2000],
            "error_code": error_code,
            "cancelled": cancelled,
            "queue_position": None,
            "lease_owner": None,
            "lease_expires_at": None,
            "updated_at": time.time(),
        }
        if (done := await self._write_held(task_id, owner, changes)) is not None:
            return done
        where = sa.and_(tasks.c.id == task_id, tasks.c.status.in_(sources_of(TaskStatus.FAILED)))
        if owner is not None:
            where = sa.and_(where, tasks.c.lease_owner == owner)
        return await self._finish(task_id, where, **changes)

    async def schedule_retry(self, task_id: str, owner: str, run_after: float) -> bool:
        changes = {
            "run_after": run_after,
            "lease_owner": None,
            "lease_expires_at": None,
            "updated_at": time.time(),
        }
        # A held task is claimable once due, by any worker: they hear of it as of a new one.
        if (done := await self._write_held(task_id, owner, changes, NEW_TASK_CHANNEL)) is not None:
            return done
        where = owned(task_id, owner, to=TaskStatus.PROCESSING)
        return await self._update(task_id, where, **changes)

    async def release(self, task_id: str, owner: str) -> bool:
        def given_back(held: Task) -> dict[str, Any]:
            return {"lease_owner": None, "lease_expires_at": None, "attempts": held.attempts - 1}

        done = await self._write_held(task_id, owner, given_back, NEW_TASK_CHANNEL)
        if done is not None:
            return done
        return await self._update(
            task_id,
            owned(task_id, owner, to=TaskStatus.PROCESSING),
            lease_owner=None,
            lease_expires_at=None,
            attempts=tasks.c.attempts - 1,
        )

    # --- tasks: cancel and housekeeping --------------------------------------------------

    async def cancel_pending(self, task_id: str) -> bool:
        return await self._finish(
            task_id,
            sa.and_(tasks.c.id == task_id, tasks.c.status == TaskStatus.PENDING.value),
            status=TaskStatus.FAILED.value,
            error="Task was cancelled.",
            error_code="cancelled",
            cancelled=True,
            updated_at=time.time(),
        )

    async def request_cancel(self, task_id: str) -> bool:
        now = time.time()
        return await self._update(
            task_id,
            sa.and_(tasks.c.id == task_id, tasks.c.status == TaskStatus.PROCESSING.value),
            cancel_requested=True,
            # A task waiting for a retry is claimable at once, so a worker stops its job now.
            run_after=sa.case((tasks.c.run_after > now, now), else_=tasks.c.run_after),
        )

    async def overdue(self, now: float, limit: int) -> list[Task]:
        query = (
            sa.select(tasks)
            .where(tasks.c.status.in_(_ALIVE), tasks.c.deadline_at < now)
            .limit(limit)
        )
        async with self._read() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [task_of(r) for r in rows]

    async def delete_expired(self, now: float, limit: int) -> list[Task]:
        query = (
            sa.select(tasks)
            .where(tasks.c.expires_at < now, tasks.c.status.notin_(_ALIVE))
            .limit(limit)
        )
        async with self._tx() as conn:
            rows = (await conn.execute(query)).mappings().all()
            doomed = [task_of(r) for r in rows]
            if doomed:
                await conn.execute(tasks.delete().where(tasks.c.id.in_([t.id for t in doomed])))
        return doomed

    async def model_stats(self, since: float) -> list[ModelStats]:
        done = sa.func.sum(sa.case((tasks.c.status == TaskStatus.COMPLETED.value, 1), else_=0))
        failed = sa.func.sum(
            sa.case(
                (
                    sa.and_(
                        tasks.c.status == TaskStatus.FAILED.value, tasks.c.cancelled.is_(False)
                    ),
                    1,
                ),
                else_=0,
            )
        )
        query = (
            sa.select(tasks.c.model, done, failed)
            .where(tasks.c.updated_at >= since)
            .group_by(tasks.c.model)
        )
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return [ModelStats(model=m, completed=int(c or 0), failed=int(f or 0)) for m, c, f in rows]

    async def pending_count(self) -> int:
        query = sa.select(sa.func.count()).where(tasks.c.status == TaskStatus.PENDING.value)
        async with self._read() as conn:
            return int((await conn.execute(query)).scalar_one())

    # --- API keys ------------------------------------------------------------------------

    async def add_key(self, record: ApiKeyRecord) -> bool:
        try:
            async with self._tx() as conn:
                await conn.execute(api_keys.insert().values(**record.__dict__))
        except sa.exc.IntegrityError:
            return False
        return True

    async def key_by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        row = await self._first(api_keys.c.key_hash, key_hash)
        return key_of(row) if row else None

    async def list_keys(self) -> list[ApiKeyRecord]:
        async with self._read() as conn:
            rows = (
                (await conn.execute(sa.select(api_keys).order_by(api_keys.c.created_at)))
                .mappings()
                .all()
            )
        return [key_of(r) for r in rows]

    async def revoke_key(self, key_id_or_prefix: str, now: float) -> int:
        match = sa.or_(api_keys.c.id == key_id_or_prefix, api_keys.c.prefix == key_id_or_prefix)
        stmt = (
            api_keys.update().where(match, api_keys.c.revoked_at.is_(None)).values(revoked_at=now)
        )
        async with self._tx() as conn:
            return int((await conn.execute(stmt)).rowcount)

    async def count_keys(self) -> int:
        async with self._read() as conn:
            return int(
                (await conn.execute(sa.select(sa.func.count()).select_from(api_keys))).scalar_one()
            )

    # --- tasks: created already claimed, held until their first write (``store.held``) ---

    def hold_claimed(self, task: Task) -> None:
        """Take ``task``, held by ``task.lease_owner`` (status processing, a lease), without
        writing it: its first write inserts it, or ``HOLD_S`` later it is inserted as it is.

        No worker is woken: its owner runs it at once. Once written, should the owner die, the
        lease lapses and any worker claims it like every other task.
        """
        values = task_values(task)
        values.update(lease_owner=task.lease_owner, lease_expires_at=task.lease_expires_at)
        self._held.hold(task, values)

    async def persist(self, task_id: str) -> None:
        """Write a held task now, as it stands (nothing for one written already)."""
        await self._held.persist(task_id)

    def drop_held(self, task_id: str) -> bool:
        """Forget a held task never written (its run ended without a write it could make);
        whether it was held."""
        return self._held.drop(task_id)

    async def _write_held(
        self,
        task_id: str,
        owner: str | None,
        changes: Mapping[str, Any] | Callable[[Task], Mapping[str, Any]],
        channel: str | None = None,
    ) -> bool | None:
        """A held task's first write by its owner (None: whoever holds it): one INSERT of
        the task as the write leaves it, its guard passed (nobody else knows the task). None
        when it is not held for ``owner``: the caller updates it as any other task."""
        if task_id not in self._held:
            return None
        async with self._held.first_write(task_id, owner) as held:
            if held is None:
                return None
            values = {**held.values, **(changes(held.task) if callable(changes) else changes)}
            if await self._insert_held(task_id, values, channel):
                return True
        return None

    async def _insert_held(
        self, task_id: str, values: dict[str, Any], channel: str | None = None
    ) -> bool:
        """Insert a held task; False when an earlier insert of it committed after all (the
        answer to its COMMIT was lost), which leaves it stored as that insert wrote it."""
        notify = (channel, task_id) if channel else None
        try:
            await self._writes.run(INSERT, task_id, notify, values, self._inserts)
        except sa.exc.IntegrityError:
            return False
        finally:
            self.live.changed(task_id)
        return True
