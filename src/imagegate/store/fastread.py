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

import json
import sqlite3
from collections.abc import Mapping
from typing import Any, Protocol

import asyncpg
import sqlalchemy as sa

from imagegate.errors import StoreUnavailable
from imagegate.store.engine import (
    CONNECT_TIMEOUT_S,
    asyncpg_dsn,
    unavailable_as_store_error,
)
from imagegate.store.schema import metadata

Row = dict[str, Any]
# Read connections per process on PostgreSQL, as many as the engine's read pool had. On a
# loaded machine a round trip waits for the backend to be scheduled, so 4 connections
# capped polls below what 10-12 allowed; 16 was slower again (more backends for the cores).
POOL_SIZE = 10


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
    dialect, with the names of the columns and of those holding JSON."""

    def __init__(self, dialect: sa.Dialect) -> None:
        self.sql: dict[tuple[str, str], str] = {}
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

    def decode(self, table: str, row: Mapping[str, Any]) -> Row:
        out = dict(row)
        for name in self.json[table]:
            raw = out[name]
            if isinstance(raw, str):
                out[name] = json.loads(raw)
        return out


class SqliteReader:
    """Reads on the loop's thread through one stdlib connection (see the module docstring)."""

    def __init__(self, path: str, statements: _Statements) -> None:
        self.path = path
        self._statements = statements
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
        if not rows:
            return None
        return self._statements.decode(
            table, dict(zip(self._statements.names[table], rows[0], strict=True))
        )


async def _keep(_: asyncpg.Connection) -> None:
    """A released connection goes back to the pool as it is (see ``PostgresReader.start``)."""


def _dropped(exc: BaseException) -> bool:
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
    """Reads through a raw asyncpg pool in autocommit: one round trip per read."""

    def __init__(self, dsn: str, statements: _Statements) -> None:
        self.dsn = dsn
        self._statements = statements
        self._pool: asyncpg.Pool | None = None

    async def start(self) -> None:
        self._pool = await asyncpg.create_pool(
            self.dsn,
            min_size=1,
            max_size=POOL_SIZE,
            timeout=CONNECT_TIMEOUT_S,
            command_timeout=30,
            # The default reset on release is a round trip per read (RESET ALL, UNLISTEN *,
            # ...); these connections only ever run one autocommit SELECT: nothing to reset.
            reset=_keep,
        )

    async def close(self) -> None:
        if self._pool is not None:
            # Read-only connections with nothing to flush: no need to wait for a goodbye.
            self._pool.terminate()
            self._pool = None

    async def first(self, table: str, column: str, value: str) -> Row | None:
        with unavailable_as_store_error():
            try:
                return await self._fetch(table, column, value)
            except Exception as exc:
                if not _dropped(exc) or self._pool is None:
                    raise
                # Its siblings were most likely dropped too (a restart, a terminated
                # backend): replace them all, so the retry does not meet another dead one.
                await self._pool.expire_connections()
            return await self._fetch(table, column, value)

    async def _fetch(self, table: str, column: str, value: str) -> Row | None:
        if self._pool is None:
            raise StoreUnavailable()
        async with self._pool.acquire(timeout=CONNECT_TIMEOUT_S) as conn:
            record = await conn.fetchrow(self._statements.sql[table, column], value)
        return None if record is None else self._statements.decode(table, record)
