"""PostgreSQL group commits on raw asyncpg connections.

Through SQLAlchemy's asyncio layer a one-write transaction (BEGIN, the UPDATE, COMMIT) cost
about 650 microseconds of CPU here, against about 280 on the same asyncpg connection driven
directly: every statement crossed into a greenlet and back and built an execution context
and a result. The write batcher runs a transaction per batch, and a worker finishing tasks or
a synchronous request pays for one or two of them, so these transactions, and the worker's
claims, run on a small asyncpg pool of their own.

SQLAlchemy still writes the SQL: each statement is compiled once for PostgreSQL (by its
object, for the statements built once; a statement built per call is compiled per call) and
its parameters pass through the column types' own bind processing (JSON is serialized
there), so the same statement objects serve SQLite's engine and this writer.

The batcher's rules stay: a transaction whose connection died before COMMIT was sent is
``NotBegun`` (nothing was committed, it may run again); one that died during COMMIT is
``StoreUnavailable``, since the commit may have happened. A lone statement (``alone``)
commits by itself: a connection lost while it runs leaves it ``Unsettled``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.sql.compiler import SQLCompiler

from imagegate.errors import StoreUnavailable
from imagegate.store.batch import NotBegun, Unsettled
from imagegate.store.engine import CONNECT_TIMEOUT_S, is_unavailable
from imagegate.store.fastread import connection_dropped, keep_as_is

_COUNT = re.compile(r"(?:UPDATE|DELETE|INSERT \d+|SELECT) (\d+)")
# A text statement that returns rows: a query, or a write with RETURNING.
_RETURNS_ROWS = re.compile(r"^\s*(?:SELECT|WITH)\b|\bRETURNING\b", re.IGNORECASE)
# Compiled statements remembered: those built once (a few dozen), and the latest of those
# built per call (compiled anew each time, since each is a new object).
_COMPILED_MAX = 256


@dataclass(frozen=True)
class Outcome:
    """What a batch reads of a statement's result: its row count and its rows."""

    rowcount: int
    rows: Sequence[asyncpg.Record] = ()

    def scalars(self) -> Iterable[Any]:
        return (row[0] for row in self.rows)


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # the positional parameters' names, in order
    constants: dict[str, Any]  # values bound inside the statement itself
    processors: dict[str, Any]  # bind processors by parameter name
    # Rows come back, one per row written (RETURNING) or read (a query); else the command's
    # status says how many rows it wrote.
    rows: bool

    def args(self, params: dict[str, Any] | None) -> list[Any]:
        given = params or {}
        values = []
        for name in self.names:
            value = given[name] if name in given else self.constants[name]
            process = self.processors.get(name)  # None too, as SQLAlchemy does (JSON: null)
            values.append(value if process is None else process(value))
        return values


class Here:
    """One open transaction: ``await conn.execute(statement, parameters)`` as the batch's
    statements use it, on the asyncpg connection."""

    def __init__(self, writer: PostgresWriter, conn: asyncpg.Connection) -> None:
        self._writer = writer
        self._conn = conn

    async def execute(self, statement: sa.Executable, parameters: Any = None) -> Outcome:
        """One statement with one set of parameters (many rows go as arrays, see
        ``store.together.insert_together_pg``: ``executemany`` runs a statement per row)."""
        compiled = self._writer.compiled(statement, parameters)
        try:
            args = compiled.args(parameters)
            if compiled.rows:
                rows = await self._conn.fetch(compiled.sql, *args)
                return Outcome(len(rows), rows)
            status = await self._conn.execute(compiled.sql, *args)
        except asyncpg.IntegrityConstraintViolationError as exc:
            # As SQLAlchemy raises it, which the store's callers expect (a taken id or key).
            raise sa.exc.IntegrityError(compiled.sql, None, exc) from exc
        return Outcome(_count(status))


def _count(status: str | None) -> int:
    """The row count of a command's status ("UPDATE 3", "INSERT 0 1", "SELECT 2")."""
    found = _COUNT.match(status or "")
    return int(found.group(1)) if found else 0


class PostgresWriter:
    """The write batcher's transactions on a pool of ``size`` asyncpg connections."""

    def __init__(self, dsn: str, dialect: sa.Dialect, size: int) -> None:
        self.dsn = dsn
        self.dialect = dialect
        self.size = size
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()
        self._closed = False
        self._compiled: dict[tuple[int, tuple[str, ...]], tuple[sa.Executable, _Compiled]] = {}

    async def start(self) -> None:
        # Opened at start: opened by a worker's first 10,000 completions at once, the
        # handshakes outlasted their timeout on the busy loop and every one of those writes
        # failed. Its connections are not pinged before use (a round trip per batch).
        await self._open()

    async def _open(self) -> asyncpg.Pool:
        async with self._opening:
            if self._closed:
                raise StoreUnavailable()
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self.dsn,
                    min_size=self.size,
                    max_size=self.size,
                    timeout=CONNECT_TIMEOUT_S,
                    command_timeout=30,
                    reset=keep_as_is,  # each transaction ends itself: nothing to reset
                )
            return self._pool

    async def close(self) -> None:
        self._closed = True
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Here]:
        """BEGIN, the block's statements, COMMIT; ROLLBACK when the block raises."""
        with _as_store_errors(before_commit=False):
            pool = self._pool or await self._open()
            conn = await pool.acquire(timeout=CONNECT_TIMEOUT_S)
        try:
            with _as_store_errors(before_commit=True):
                await conn.execute("BEGIN")
                try:
                    yield Here(self, conn)
                except BaseException:
                    await _roll_back(conn)
                    raise
            with _as_store_errors(before_commit=False):
                await conn.execute("COMMIT")
        except BaseException as exc:
            if _left_behind(conn):
                conn.terminate()  # cancelled mid-statement, or broken: never reuse it
            if isinstance(exc, NotBegun):
                # Its siblings were most likely dropped too (a restart, terminated backends):
                # replace them all, so the batch's second run does not meet another dead one.
                await pool.expire_connections()
            raise
        finally:
            await pool.release(conn)

    @asynccontextmanager
    async def alone(self) -> AsyncIterator[Here]:
        """A connection for one statement that commits by itself: one round trip, where
        BEGIN, the statement and COMMIT took three."""
        with _as_store_errors(before_commit=False):
            pool = self._pool or await self._open()
            conn = await pool.acquire(timeout=CONNECT_TIMEOUT_S)
        try:
            yield Here(self, conn)
        except BaseException as exc:
            dropped = connection_dropped(exc)
            if dropped or not isinstance(exc, sa.exc.IntegrityError | asyncpg.PostgresError):
                _discard(conn)  # cancelled or lost mid-statement: never reuse it
            if dropped:
                await pool.expire_connections()  # its siblings most likely went with it
                raise Unsettled() from exc
            if is_unavailable(exc):
                raise StoreUnavailable() from exc
            raise
        finally:
            await pool.release(conn)

    def compiled(self, statement: sa.Executable, params: dict[str, Any] | None) -> _Compiled:
        """The statement compiled for PostgreSQL with these parameter names (an INSERT's
        columns are the names given), remembered by the statement object, which is kept
        beside its entry so that a dead statement's id reused by a new one never matches."""
        key = (id(statement), tuple(params) if params else ())
        entry = self._compiled.get(key)
        if entry is not None and entry[0] is statement:
            return entry[1]
        compiled = _compile(statement, params, self.dialect)
        if len(self._compiled) >= _COMPILED_MAX:
            self._compiled.clear()
        self._compiled[key] = (statement, compiled)
        return compiled


def _compile(statement: Any, params: dict[str, Any] | None, dialect: sa.Dialect) -> _Compiled:
    compiled = statement.compile(dialect=dialect, column_keys=list(params) if params else None)
    assert isinstance(compiled, SQLCompiler)
    # ``IN`` lists of constants become one parameter per value here.
    expanded = compiled.construct_expanded_state(params)
    names = tuple(expanded.positiontup or ())
    processors = {}
    for name in names:
        bind = compiled.binds.get(name)
        process = bind.type.bind_processor(dialect) if bind is not None else None
        if process is not None:
            processors[name] = process
    if compiled.isinsert or compiled.isupdate or compiled.isdelete:
        rows = bool(compiled.effective_returning)
    else:  # a query, or text: its rows come back if it is a query or has RETURNING
        rows = isinstance(statement, sa.Select) or bool(_RETURNS_ROWS.search(expanded.statement))
    return _Compiled(expanded.statement, names, dict(expanded.parameters), processors, rows)


@contextmanager
def _as_store_errors(*, before_commit: bool) -> Iterator[None]:
    """A lost or unreachable database is ``StoreUnavailable``; a connection lost before
    COMMIT was sent committed nothing, which makes it ``NotBegun`` (the batch may run again)."""
    try:
        yield
    except StoreUnavailable:
        raise
    except Exception as exc:
        dropped = connection_dropped(exc)
        if dropped and before_commit:
            raise NotBegun() from exc
        if dropped or is_unavailable(exc):
            raise StoreUnavailable() from exc
        raise


def _discard(conn: asyncpg.Connection) -> None:
    """Close a connection whose statement was cut short, unless its server closed it already
    (asyncpg then took it back into the pool)."""
    try:
        if not conn.is_closed():
            conn.terminate()
    except asyncpg.InterfaceError:  # released back to the pool
        pass


def _left_behind(conn: asyncpg.Connection) -> bool:
    """Whether a connection whose transaction was cut short must be closed: it is still in the
    transaction (cancelled mid-statement), or broken. One that its server closed may already
    be back in the pool (asyncpg takes it back when the socket drops), with nothing to close."""
    try:
        return bool(conn.is_in_transaction() or conn.is_closed())
    except asyncpg.InterfaceError:  # released back to the pool
        return False


async def _roll_back(conn: asyncpg.Connection) -> None:
    try:
        if conn.is_closed() or not conn.is_in_transaction():
            return
    except asyncpg.InterfaceError:  # released back to the pool: its server closed it
        return
    try:
        await conn.execute("ROLLBACK")
    except Exception:
        conn.terminate()
