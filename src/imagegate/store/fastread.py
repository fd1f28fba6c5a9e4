"""Single-row reads by a unique column without SQLAlchemy: the status route's hot path.

Every poll of a live task reads one row by primary key. Through SQLAlchemy on aiosqlite that
read hops to a thread and back (most of a poll's time); on PostgreSQL the statement building
and result processing cost more than the round trip. So these readers keep one prepared
``SELECT`` per (table, column) from ``store.schema`` and return plain dicts with the same keys
and decoded JSON that a SQLAlchemy row would have.

- SQLite: one stdlib connection used on the event loop's thread. In WAL mode a reader does
  not wait for writers, and with no busy timeout the rare moment it would (a checkpoint
  resetting the log) raises ``ReadBusy`` at once: the store then takes its threaded path,
  so the loop never blocks on a lock.
- PostgreSQL: a small asyncpg pool (statements prepared and cached per connection), with
  the store's rule for dropped connections: retry once on a fresh one; a database that
  cannot be reached is ``StoreUnavailable``.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Sequence
from typing import Any, Protocol

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from imagegate.errors import StoreUnavailable
from imagegate.store.engine import (
    CONNECT_TIMEOUT_S,
    asyncpg_dsn,
    unavailable_as_store_error,
)
from imagegate.store.schema import metadata

Row = dict[str, Any]
# Grouped reads in flight at once per process on PostgreSQL (``PostgresReader``). Under 64
# polling connections on 2 cores, 1 made 37,200 polls/s, 2 made 33,000 and 4 made 28,500:
# the fewer groups, the more reads each round trip and backend wake-up serves.
GROUPS = 1
# Rows remembered with their decoded form (``_Rows``).
SEEN_ROWS = 4096


class ReadBusy(Exception):
    """SQLite could not read without waiting for a lock; use the store's threaded path."""


class FastReader(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def first(self, table: str, column: str, value: str) -> Row | None:
        """The row of ``table`` whose unique ``column`` equals ``value``, or None."""
        ...


def fast_reader(url: str, dialect: sa.Dialect) -> FastReader | None:
    """The reader for a database URL (``dialect`` is its engine's: statements are compiled
    for it); None where there is none (an in-memory SQLite)."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "postgresql":
        return PostgresReader(asyncpg_dsn(url), _Statements(dialect))
    database = parsed.database
    if parsed.get_backend_name() == "sqlite" and database and database != ":memory:":
        return SqliteReader(database, _Statements(dialect))
    return None


class _Statements:
    """``SELECT`` by each unique column of every table, compiled once by SQLAlchemy for the
    dialect (by one value; on PostgreSQL also by ``= ANY`` of an array of values), with the
    names of the columns and of those holding JSON."""

    def __init__(self, dialect: sa.Dialect) -> None:
        self.sql: dict[tuple[str, str], str] = {}
        self.any_sql: dict[tuple[str, str], str] = {}
        self.names: dict[str, tuple[str, ...]] = {}
        self.json: dict[str, tuple[str, ...]] = {}
        for table in metadata.tables.values():
            self.names[table.name] = tuple(c.name for c in table.columns)
            self.json[table.name] = tuple(
                c.name for c in table.columns if isinstance(c.type, sa.JSON)
            )
            for column in table.columns:
                if column.primary_key or column.unique:
                    query = sa.select(table).where(column == sa.bindparam("value"))
                    self.sql[table.name, column.name] = str(query.compile(dialect=dialect))
                    if dialect.name == "postgresql":
                        values = sa.bindparam("values", type_=postgresql.ARRAY(column.type))
                        query = sa.select(table).where(column == sa.any_(values))
                        self.any_sql[table.name, column.name] = str(query.compile(dialect=dialect))


class _Rows:
    """Raw rows turned into ``Row`` dicts, each remembered by the value it was read by: a polled
    row is mostly unchanged since its last read, and then the very same dict comes back, so
    the JSON is decoded once and a caller may recognise the row by identity. Callers must not
    change a returned row."""

    def __init__(self, statements: _Statements) -> None:
        self._statements = statements
        self._seen: dict[tuple[str, str, str], tuple[Sequence[Any], Row]] = {}

    def row(self, table: str, column: str, value: str, raw: Sequence[Any]) -> Row:
        key = (table, column, value)
        seen = self._seen.get(key)
        if seen is not None and seen[0] == raw:
            return seen[1]
        row = dict(zip(self._statements.names[table], raw, strict=True))
        for name in self._statements.json[table]:
            if isinstance(row[name], str):
                row[name] = json.loads(row[name])
        if len(self._seen) >= SEEN_ROWS:
            self._seen.clear()
        self._seen[key] = (raw, row)
        return row


class SqliteReader:
    """Reads on the loop's thread through one stdlib connection (see the module docstring)."""

    def __init__(self, path: str, statements: _Statements) -> None:
        self.path = path
        self._statements = statements
        self._rows = _Rows(statements)
        self._conn: sqlite3.Connection | None = None

    async def start(self) -> None:
        # timeout=0: a lock is reported at once instead of waited for (ReadBusy).
        self._conn = sqlite3.connect(self.path, timeout=0, isolation_level=None)
        self._conn.execute("PRAGMA query_only=1")

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def first(self, table: str, column: str, value: str) -> Row | None:
        if self._conn is None:
            raise ReadBusy("not started")
        try:
            # fetchall() finishes the statement, so no read transaction stays open.
            rows = self._conn.execute(self._statements.sql[table, column], (value,)).fetchall()
        except sqlite3.OperationalError as exc:
            raise ReadBusy(str(exc)) from exc
        return self._rows.row(table, column, value, rows[0]) if rows else None

    def version(self) -> int | None:
        """A number that changes whenever another connection commits (``data_version``: this
        process's writer is another connection too), at half the price of a read by key;
        None when it cannot be read right now."""
        if self._conn is None:
            return None
        try:
            return int(self._conn.execute("PRAGMA data_version").fetchone()[0])
        except sqlite3.OperationalError:
            return None


async def keep_as_is(_: asyncpg.Connection) -> None:
    """A released connection goes back to the pool as it is, without asyncpg's reset (a round
    trip): for pools whose connections never leave state behind."""


def connection_dropped(exc: BaseException) -> bool:
    """The pooled connection died under us (the server restarted or terminated it; the client
    may notice it as a lost connection or as a protocol in a state it cannot leave): retry."""
    return isinstance(
        exc,
        asyncpg.PostgresConnectionError
        | asyncpg.AdminShutdownError
        | asyncpg.InterfaceError
        | asyncpg.InternalClientError
        | ConnectionError,
    )


class PostgresReader:
    """Reads through a raw asyncpg pool in autocommit, grouped: the reads asked for while
    ``GROUPS`` reads are already in flight wait for one to end and then go together, as one
    ``= ANY`` statement per table and column. Unloaded, a read is one round trip of its own;
    under a burst of polls one round trip, and one backend's turn on the CPU, serves many."""

    def __init__(self, dsn: str, statements: _Statements) -> None:
        self.dsn = dsn
        self._statements = statements
        self._rows = _Rows(statements)
        self._pool: asyncpg.Pool | None = None
        self._queued: dict[tuple[str, str], dict[str, list[asyncio.Future[Row | None]]]] = {}
        self._active = 0

    async def start(self) -> None:
        self._pool = await asyncpg.create_pool(
            self.dsn,
            min_size=1,
            max_size=GROUPS,  # a connection per read in flight
            timeout=CONNECT_TIMEOUT_S,
            command_timeout=30,
            # The default reset on release is a round trip per read (RESET ALL, UNLISTEN *,
            # ...); these connections only ever run one autocommit SELECT: nothing to reset.
            reset=keep_as_is,
        )

    async def close(self) -> None:
        if self._pool is not None:
            # Read-only connections with nothing to flush: no need to wait for a goodbye.
            self._pool.terminate()
            self._pool = None

    async def first(self, table: str, column: str, value: str) -> Row | None:
        if self._active < GROUPS and not self._queued:
            # Nothing to wait for: read at once, in this task.
            self._active += 1
            try:
                rows = await self._read(table, column, [value])
            finally:
                self._done()
            return rows.get(value)
        future: asyncio.Future[Row | None] = asyncio.get_running_loop().create_future()
        self._queued.setdefault((table, column), {}).setdefault(value, []).append(future)
        return await future

    def _done(self, _: object = None) -> None:
        """A read ended: its place goes to the longest-waiting group."""
        self._active -= 1
        while self._queued and self._active < GROUPS:
            key = next(iter(self._queued))
            waiters = self._queued.pop(key)
            self._active += 1
            group = asyncio.get_running_loop().create_task(self._group(*key, waiters))
            group.add_done_callback(self._done)

    async def _group(
        self, table: str, column: str, waiters: dict[str, list[asyncio.Future[Row | None]]]
    ) -> None:
        # A waiter's future may be done already: its caller stopped waiting.
        futures = [(value, future) for value, each in waiters.items() for future in each]
        try:
            rows = await self._read(table, column, list(waiters))
        except asyncio.CancelledError:
            for _, future in futures:
                future.cancel()
            raise
        except Exception as exc:
            for _, future in futures:
                if not future.done():
                    future.set_exception(exc)
            return
        for value, future in futures:
            if not future.done():
                future.set_result(rows.get(value))

    async def _read(self, table: str, column: str, values: list[str]) -> dict[str, Row]:
        with unavailable_as_store_error():
            try:
                return await self._fetch(table, column, values)
            except Exception as exc:
                if not connection_dropped(exc) or self._pool is None:
                    raise
                # Its siblings were most likely dropped too (a restart, a terminated
                # backend): replace them all, so the retry does not meet another dead one.
                await self._pool.expire_connections()
            return await self._fetch(table, column, values)

    async def _fetch(self, table: str, column: str, values: list[str]) -> dict[str, Row]:
        if self._pool is None:
            raise StoreUnavailable()
        async with self._pool.acquire(timeout=CONNECT_TIMEOUT_S) as conn:
            records = await conn.fetch(self._statements.any_sql[table, column], values)
        return {r[column]: self._rows.row(table, column, r[column], r) for r in records}
