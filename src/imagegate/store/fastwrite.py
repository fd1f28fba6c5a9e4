"""SQLite group commits on the event loop's thread, when no other connection holds the lock.

Through aiosqlite every statement of a transaction (begin, each write, commit, the pool's
reset) is a hand-off to a thread and back: about ten for a one-write transaction, which
was most of the time a synchronous request spent in the store. With ``crash`` durability a
commit writes the log without ``fsync``, so the same transaction run right here on a stdlib
connection costs less than one of those hand-offs.

The loop must never wait for a lock, so the transaction starts with ``BEGIN IMMEDIATE`` on a
connection that does not wait (``timeout=0``): when another connection (another process, or
this one's engine) holds the write lock, ``WriterBusy`` says so at once and the caller writes
through the engine, whose connections wait on their own threads. Checkpoints, which do sync
the database file, run on a thread too, every ``CHECKPOINT_EVERY`` commits, never inside a
commit here.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, CursorResult
from sqlalchemy.pool import StaticPool

from imagegate.config import Durability
from imagegate.store.engine import sqlite_locked

log = logging.getLogger("imagegate.store")

# Commits between two checkpoints: about SQLite's own 1,000 pages, a task's creation writing
# about eight (its row and five indexes).
CHECKPOINT_EVERY = 100
# Pauses between attempts to take a lock another connection holds, before writing through
# the engine instead (its connections wait on threads).
BUSY_PAUSES_S = (0.0005, 0.001, 0.002, 0.004)
# How long a checkpoint waits for the write lock and for readers to leave the log.
CHECKPOINT_WAIT_S = 1.0


def fast_writer(url: str, durability: Durability) -> SqliteWriter | None:
    """The writer for a SQLite database file with ``crash`` durability; None elsewhere (with
    ``power`` every commit waits for an ``fsync``, which must not happen on the loop)."""
    parsed = sa.make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if durability != "crash":
        return None
    return SqliteWriter(parsed.set(drivername="sqlite").render_as_string(), database)


class WriterBusy(Exception):
    """Another connection holds SQLite's write lock: write through the engine instead."""


class Here:
    """A sync connection behind the ``await conn.execute(...)`` the batch's statements use."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def execute(self, statement: sa.Executable, parameters: Any = None) -> CursorResult[Any]:
        return self._conn.execute(statement, parameters)


class SqliteWriter:
    """One connection for the write batcher's transactions (see the module docstring)."""

    def __init__(self, url: str, path: str) -> None:
        self.path = path
        self._engine = sa.create_engine(
            url,
            poolclass=StaticPool,
            connect_args={"timeout": 0, "check_same_thread": False, "isolation_level": None},
        )
        sa.event.listen(self._engine, "connect", _pragmas)
        self._conn: Connection | None = None
        self._commits = 0
        self._checkpoint: asyncio.Task[None] | None = None
        self._wal: bool | None = None  # known at the first transaction, after migrations

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Here]:
        """A transaction committed at the end of the block; ``WriterBusy`` before it begins
        when the lock stays taken. A running checkpoint is waited for first: commits made
        beside it would keep it from restarting the log, which then only grows."""
        if self._checkpoint is not None:
            await asyncio.shield(self._checkpoint)
        conn = await self._begin_soon()
        try:
            yield Here(conn)
            self._driver(conn, "COMMIT")
        except BaseException:
            self._rollback(conn)
            raise
        self._commits += 1
        if self._commits >= CHECKPOINT_EVERY and self._checkpoint is None:
            self._commits = 0
            self._checkpoint = asyncio.get_running_loop().create_task(self._run_checkpoint())

    async def _begin_soon(self) -> Connection:
        """Begin; while another connection holds the lock, try again after short pauses (the
        loop serves others meanwhile), since its transactions take well under a millisecond."""
        for pause in BUSY_PAUSES_S:
            try:
                return self._begin()
            except WriterBusy:
                await asyncio.sleep(pause)
        return self._begin()

    def _begin(self) -> Connection:
        if self._wal is None:
            self._wal = _in_wal_mode(self.path)
        if not self._wal:
            raise WriterBusy()  # outside WAL mode a commit waits for readers: not on the loop
        if self._conn is None:
            # Kept open between transactions. SQLAlchemy never begins or commits on it
            # (autocommit): its BEGIN, COMMIT and ROLLBACK are the driver calls below,
            # which cost a fraction of SQLAlchemy's transaction events and pool checkouts.
            self._conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        # Take the write lock now, so that a busy database is known before anything is written.
        try:
            self._driver(self._conn, "BEGIN IMMEDIATE")
        except sa.exc.OperationalError as exc:
            if sqlite_locked(exc.orig):
                raise WriterBusy() from exc
            raise
        return self._conn

    def _driver(self, conn: Connection, sql: str) -> None:
        """Run ``sql`` on the driver's connection, its errors wrapped as SQLAlchemy's are."""
        try:
            conn.connection.dbapi_connection.execute(sql)  # type: ignore[union-attr]
        except sqlite3.Error as exc:
            raise sa.exc.DBAPIError.instance(sql, None, exc, sqlite3.Error) from exc

    def _rollback(self, conn: Connection) -> None:
        """Undo the open transaction; a connection that cannot is replaced at the next begin."""
        try:
            dbapi = conn.connection.dbapi_connection
            if dbapi is not None and dbapi.in_transaction:
                dbapi.execute("ROLLBACK")
        except sqlite3.Error:
            log.exception("SQLite rollback failed; reconnecting")
            self._conn = None
            conn.invalidate()

    async def _run_checkpoint(self) -> None:
        try:
            await asyncio.to_thread(_checkpoint, self.path)
        except Exception:
            # A failed checkpoint must not fail the writes waiting for it; the next one runs
            # CHECKPOINT_EVERY commits later.
            log.exception("SQLite checkpoint failed")
        finally:
            self._checkpoint = None

    async def close(self) -> None:
        if self._checkpoint is not None:
            await asyncio.gather(self._checkpoint, return_exceptions=True)
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._engine.dispose()


def _pragmas(dbapi_conn: Any, _record: Any) -> None:
    # The database is in WAL mode already (the engine set it); commits write the log without
    # fsync (``crash`` durability), and no commit here runs a checkpoint.
    dbapi_conn.execute("PRAGMA synchronous=NORMAL")
    dbapi_conn.execute("PRAGMA wal_autocheckpoint=0")


def _in_wal_mode(path: str) -> bool:
    """Whether the database keeps a write-ahead log (the engine asks for one; a file system
    without shared memory, such as some network ones, refuses it)."""
    conn = sqlite3.connect(path, timeout=CHECKPOINT_WAIT_S, isolation_level=None)
    try:
        return bool(conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal")
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()


def _checkpoint(path: str) -> None:
    """Copy the log into the database and restart it, on a thread.

    RESTART makes the next writer start the log over; a passive checkpoint overtaken by
    new commits never does, and the log grew by every commit (66 MB for 2,000 task
    creations)."""
    conn = sqlite3.connect(path, timeout=CHECKPOINT_WAIT_S, isolation_level=None)
    try:
        conn.execute("PRAGMA wal_checkpoint(RESTART)")
    except sqlite3.OperationalError:
        pass  # busy for that long: the next one, or another connection's, will do it
    finally:
        conn.close()
