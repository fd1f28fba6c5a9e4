"""Status reads on PostgreSQL use pooled connections without a ping before each use; a
connection the database dropped must be replaced without the client noticing, and reads
arriving together share their round trips."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

import asyncpg

from imagegate.store.fastread import GROUPS, PostgresReader, Row
from imagegate.store.sql import SqlStore
from tests.conftest import GatewayFactory
from tests.integration.test_store import IMAGE, new_task
from tests.support.postgres import fresh_database


async def _drop_connections(admin_url: str, database: str) -> int:
    conn = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        return int(
            await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()",
                database,
            )
        )
    finally:
        await conn.close()


def test_polls_answer_after_postgres_drops_every_connection(
    gateway_factory: GatewayFactory, pg_admin_url: str
) -> None:
    with fresh_database(pg_admin_url) as url:
        gw = gateway_factory(database_url=url, args=["--no-worker"])
        with gw.client() as client:
            created = client.post("/v1/images/generations", json={"prompt": "a fox", "async": True})
            task_id = created.json()["id"]
            for _ in range(3):  # fill the pool with connections that will be dropped
                assert client.get(f"/v1/tasks/{task_id}").status_code == 200
            database = urlsplit(url).path.lstrip("/")
            assert asyncio.run(_drop_connections(pg_admin_url, database)) > 0
            answers = [client.get(f"/v1/tasks/{task_id}") for _ in range(5)]
    assert [a.status_code for a in answers] == [200] * 5
    assert {a.json()["status"] for a in answers} == {"pending"}


async def test_reads_arriving_together_share_round_trips(pg_admin_url: str) -> None:
    """A burst of polls costs PostgreSQL a few statements, not one per poll."""
    with fresh_database(pg_admin_url) as url:
        store = SqlStore(url)
        await store.start()
        try:
            ids = [(await store.create_task(new_task())).id for _ in range(30)]
            reader = store._fast
            assert isinstance(reader, PostgresReader)
            statements = 0
            fetch = reader._fetch

            async def counted(table: str, column: str, values: list[str]) -> dict[str, Row]:
                nonlocal statements
                statements += 1
                return await fetch(table, column, values)

            reader._fetch = counted  # type: ignore[method-assign]
            reads = await asyncio.gather(*(store.get_task(i) for i in ids * 4))
        finally:
            await store.close()
    assert [r.id if r else None for r in reads] == ids * 4
    assert statements <= 1 + GROUPS  # the first read alone, then the rest grouped


async def test_writes_land_after_postgres_drops_every_connection(pg_admin_url: str) -> None:
    """The batcher's connections are not pinged before use: a batch that finds its
    connection dead before committing runs again on a fresh one, and nobody sees an error."""
    with fresh_database(pg_admin_url) as url:
        store = SqlStore(url)
        await store.start()
        try:
            warm = await asyncio.gather(*(store.create_task(new_task()) for _ in range(20)))
            database = urlsplit(url).path.lstrip("/")
            assert await _drop_connections(pg_admin_url, database) > 0
            made = await asyncio.gather(*(store.create_task(new_task()) for _ in range(20)))
            claimed = await store.claim("w1", 40, time.time() + 1, 60)
            done = await asyncio.gather(*(store.complete(t.id, "w1", [IMAGE]) for t in claimed))
        finally:
            await store.close()
    assert len(claimed) == len(warm) + len(made) == 40
    assert all(done)
