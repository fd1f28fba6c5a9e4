"""PostgreSQL's write batcher runs its transactions on raw asyncpg connections
(``store.pgwrite``). What the store tests cannot see from outside: a transaction cut short
never leaves its connection behind mid-transaction, and errors keep the classes the store's
callers expect. These run on PostgreSQL in the SQLite pass too."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect

from imagegate.store.batch import NotBegun, Unsettled
from imagegate.store.engine import asyncpg_dsn
from imagegate.store.pgwrite import PostgresWriter
from tests.support.postgres import fresh_database

SLEEP = sa.text("SELECT pg_sleep(:s)")
TABLE = sa.text("CREATE TABLE IF NOT EXISTS t (id int PRIMARY KEY)")
INSERT = sa.text("INSERT INTO t (id) VALUES (:id)")


def _writer(url: str) -> PostgresWriter:
    return PostgresWriter(asyncpg_dsn(url), asyncpg_dialect.dialect(), size=1)


async def end_the_sleeper(admin: asyncpg.Connection) -> None:
    """Terminate, 0.3 s from now, the backend running ``SLEEP`` (as a restart would)."""
    await asyncio.sleep(0.3)
    await admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE query LIKE 'SELECT pg_sleep%' AND pid <> pg_backend_pid()"
    )


@pytest.mark.parametrize("kind", ["transaction", "alone"])
async def test_a_cancelled_transaction_leaves_its_connection_usable(
    pg_admin_url: str, kind: str
) -> None:
    """For a transaction and for a lone statement alike."""
    with fresh_database(pg_admin_url) as url:
        writer = _writer(url)
        await writer.start()
        begin = getattr(writer, kind)
        try:

            async def slow() -> None:
                async with begin() as conn:
                    await conn.execute(SLEEP, {"s": 5})

            job = asyncio.create_task(slow())
            await asyncio.sleep(0.3)
            job.cancel()
            with pytest.raises(asyncio.CancelledError):
                await job
            # The pool's only connection: replaced, not handed on mid-transaction.
            async with asyncio.timeout(5), begin() as conn:
                assert (await conn.execute(SLEEP, {"s": 0})).rowcount == 1
        finally:
            await writer.close()


@pytest.mark.parametrize(("kind", "lost"), [("transaction", NotBegun), ("alone", Unsettled)])
async def test_a_connection_its_server_closes_mid_statement_is_not_begun_or_unsettled(
    pg_admin_url: str, kind: str, lost: type[Exception]
) -> None:
    """The server ending the backend (a restart, ``pg_terminate_backend``) hands the pool its
    connection back before the transaction's own cleanup runs: still ``NotBegun`` (the batch
    may run again), never the pool's complaint about a released connection. A statement that
    commits by itself may have committed when it is lost: ``Unsettled``, not run again. The
    next one gets a fresh connection either way."""
    with fresh_database(pg_admin_url) as url:
        writer = _writer(url)
        await writer.start()
        admin = await asyncpg.connect(asyncpg_dsn(url))
        begin = getattr(writer, kind)
        try:
            ending = asyncio.create_task(end_the_sleeper(admin))
            with pytest.raises(lost):
                async with begin() as conn:
                    await conn.execute(SLEEP, {"s": 5})
            await ending
            async with asyncio.timeout(5), begin() as conn:
                assert (await conn.execute(SLEEP, {"s": 0})).rowcount == 1
        finally:
            await admin.close()
            await writer.close()


async def test_a_failed_statement_rolls_back_and_keeps_sqlalchemys_error_class(
    pg_admin_url: str,
) -> None:
    with fresh_database(pg_admin_url) as url:
        writer = _writer(url)
        await writer.start()
        try:
            async with writer.transaction() as conn:
                await conn.execute(TABLE)
                await conn.execute(INSERT, {"id": 1})

            async def two_then_a_taken_one() -> None:
                async with writer.transaction() as conn:
                    await conn.execute(INSERT, {"id": 2})
                    await conn.execute(INSERT, {"id": 1})

            with pytest.raises(sa.exc.IntegrityError):
                await two_then_a_taken_one()
            async with writer.transaction() as conn:  # id 2 was rolled back with its batch
                assert (await conn.execute(INSERT, {"id": 2})).rowcount == 1
        finally:
            await writer.close()


async def test_a_lone_statement_commits_by_itself(pg_admin_url: str) -> None:
    """Outside BEGIN and COMMIT: what the block does after its statement cannot undo it, and
    an error of the server's own leaves the connection in use."""
    with fresh_database(pg_admin_url) as url:
        writer = _writer(url)
        await writer.start()
        try:
            async with writer.alone() as conn:
                await conn.execute(TABLE)

            async def insert_then_fail() -> None:
                async with writer.alone() as conn:
                    await conn.execute(INSERT, {"id": 1})
                    raise RuntimeError("after the statement")

            with pytest.raises(RuntimeError):
                await insert_then_fail()
            with pytest.raises(sa.exc.IntegrityError):
                async with writer.alone() as conn:
                    await conn.execute(INSERT, {"id": 1})  # committed above
            async with writer.alone() as conn:
                found = await conn.execute(sa.text("SELECT id FROM t"))
            assert list(found.scalars()) == [1]
        finally:
            await writer.close()
