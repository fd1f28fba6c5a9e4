"""Engine construction per dialect, and what counts as "the database is unavailable"."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from imagegate.config import Durability
from imagegate.errors import StoreUnavailable

# How long a request may wait for a database connection before answering 503.
CONNECT_TIMEOUT_S = 5.0


def make_engine(url: str, durability: Durability = "crash") -> AsyncEngine:
    """An async engine tuned for its dialect (WAL, ``durability`` and a busy timeout for SQLite).

    PostgreSQL's durability is the server's own (``synchronous_commit``). Its connections
    are pinged before each use, so that whatever runs on them (a claim, a migration) never
    meets a connection the server dropped.
    """
    if url.startswith("sqlite"):
        engine = create_async_engine(
            url, pool_timeout=CONNECT_TIMEOUT_S, connect_args={"timeout": CONNECT_TIMEOUT_S}
        )
        sa.event.listen(engine.sync_engine, "connect", partial(_sqlite_pragmas, durability))
        return engine
    return create_async_engine(
        url,
        pool_size=10,
        max_overflow=10,
        pool_timeout=CONNECT_TIMEOUT_S,
        pool_pre_ping=True,
        connect_args={"timeout": CONNECT_TIMEOUT_S, "command_timeout": 30},
    )


def asyncpg_dsn(url: str) -> str:
    """The asyncpg form of a SQLAlchemy ``postgresql+asyncpg://`` URL."""
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def make_read_engine(url: str) -> AsyncEngine | None:
    """PostgreSQL's engine for single-statement reads, or None (SQLite reads share the engine).

    Autocommit and no pre-ping make a read one round trip instead of four (pre-ping, BEGIN,
    SELECT, ROLLBACK): on the status route that was most of the database time. A connection
    found dead is retried by the store instead of pinged before every use.
    """
    if url.startswith("sqlite"):
        return None
    return create_async_engine(
        url,
        isolation_level="AUTOCOMMIT",
        # No overflow: a burst of polls queues for a pooled connection instead of opening and
        # closing extra ones, which cost PostgreSQL a backend process each.
        pool_size=10,
        max_overflow=0,
        pool_timeout=CONNECT_TIMEOUT_S,
        connect_args={"timeout": CONNECT_TIMEOUT_S, "command_timeout": 30},
    )


# SQLite's ``synchronous`` per durability. In WAL mode NORMAL writes every commit to the log
# before it returns (a killed process loses nothing: the OS holds the pages) and syncs at
# checkpoints; FULL also syncs the log at every commit, surviving power loss.
SQLITE_SYNCHRONOUS: dict[Durability, str] = {"crash": "NORMAL", "power": "FULL"}


def _sqlite_pragmas(durability: Durability, dbapi_conn: Any, _record: Any) -> None:
    # WAL lets readers run beside the writer and other processes share the file.
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA synchronous={SQLITE_SYNCHRONOUS[durability]}")
    # A writer waits this long for the lock, then the request answers 503 instead of hanging.
    cursor.execute(f"PRAGMA busy_timeout={int(CONNECT_TIMEOUT_S * 1000)}")
    cursor.close()


@contextmanager
def unavailable_as_store_error() -> Iterator[None]:
    """A lost or refused database inside the block becomes ``StoreUnavailable`` (503)."""
    try:
        yield
    except StoreUnavailable:
        raise
    except Exception as exc:
        if is_unavailable(exc):
            raise StoreUnavailable() from exc
        raise


def is_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` means the database cannot be reached now (answer 503, retry later)."""
    if isinstance(exc, sa.exc.IntegrityError | sa.exc.ProgrammingError):
        return False
    if isinstance(exc, sa.exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        orig = exc.orig
        if isinstance(orig, sqlite3.OperationalError):
            return sqlite_locked(orig)
        return _is_connection_error(orig) or isinstance(exc, sa.exc.OperationalError)
    if isinstance(exc, sa.exc.TimeoutError):
        return True
    return _is_connection_error(exc)


def sqlite_locked(exc: BaseException | None) -> bool:
    """True when SQLite refused because another connection holds a lock."""
    return isinstance(exc, sqlite3.OperationalError) and (
        "locked" in str(exc) or "busy" in str(exc)
    )


# SQLSTATE classes of a lost or refused server: connection exception, insufficient resources
# (too many connections), operator intervention (shutdown, starting up).
_UNAVAILABLE_SQLSTATE = ("08", "53", "57")


def _is_connection_error(exc: BaseException | None) -> bool:
    """Walk the cause chain: drivers wrap the socket error that says what really happened."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, OSError | ConnectionError | TimeoutError):
            return True
        sqlstate = getattr(exc, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate[:2] in _UNAVAILABLE_SQLSTATE:
            return True
        name = type(exc).__name__
        if "Connection" in name or "CannotConnectNow" in name or "AdminShutdown" in name:
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False
