"""Which database errors mean "unavailable, answer 503" and which are bugs (500)."""

from __future__ import annotations

import sqlite3

import sqlalchemy as sa

from imagegate.store.engine import is_unavailable
from imagegate.store.notify import asyncpg_dsn


class AdminShutdown(Exception):
    """Stands in for a driver's error carrying a SQLSTATE (asyncpg's have ``sqlstate``)."""

    sqlstate = "57P01"


class UniqueViolation(Exception):
    sqlstate = "23505"


def wrapped(orig: Exception, cls: type[sa.exc.DBAPIError] = sa.exc.DBAPIError) -> Exception:
    return cls("SELECT 1", {}, orig)


def test_a_refused_or_reset_connection_is_unavailable() -> None:
    assert is_unavailable(ConnectionRefusedError(111, "refused"))
    assert is_unavailable(TimeoutError())
    assert is_unavailable(sa.exc.TimeoutError("pool exhausted"))


def test_a_server_shutting_down_is_unavailable_even_when_wrapped() -> None:
    driver_error = Exception("terminating connection due to administrator command")
    driver_error.__cause__ = AdminShutdown()
    assert is_unavailable(wrapped(driver_error))


def test_a_locked_sqlite_database_is_unavailable_other_sqlite_errors_are_not() -> None:
    locked = sqlite3.OperationalError("database is locked")
    assert is_unavailable(wrapped(locked, sa.exc.OperationalError))
    no_table = sqlite3.OperationalError("no such table: tasks")
    assert not is_unavailable(wrapped(no_table, sa.exc.OperationalError))


def test_constraint_and_programming_errors_are_bugs_not_outages() -> None:
    assert not is_unavailable(wrapped(UniqueViolation(), sa.exc.IntegrityError))
    assert not is_unavailable(wrapped(Exception("syntax"), sa.exc.ProgrammingError))
    assert not is_unavailable(ValueError("bad value"))


def test_the_listener_connects_with_the_stores_url_in_asyncpg_form() -> None:
    url = "postgresql+asyncpg://app:s3cret@db.internal:5433/imagegate?ssl=require"
    assert asyncpg_dsn(url) == "postgresql://app:s3cret@db.internal:5433/imagegate?ssl=require"
