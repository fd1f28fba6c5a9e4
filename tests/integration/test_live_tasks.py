"""On PostgreSQL a poll of a live task is answered from memory until a notice says the task
changed (``store.live``), on SQLite while no connection committed. These tests change tasks
from another "process" (a second ``SqlStore``) and behind the store's back (plain SQL that
sends no notice), which tells a remembered answer from a read one. The PostgreSQL ones run
on PostgreSQL in the SQLite pass too."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

from imagegate.engine.models import Task
from imagegate.engine.signals import Signals
from imagegate.store.fastread import Row, SqliteReader
from imagegate.store.notify import Listener
from imagegate.store.sql import SqlStore
from tests.integration.test_store import IMAGE, new_task
from tests.support.postgres import fresh_database


@dataclass
class Poller:
    """A store with its process's listener, as the API process has."""

    store: SqlStore
    listener: Listener
    dsn: str

    async def recent(self, task_id: str) -> Task:
        task = await self.store.get_task(task_id, recent=True)
        assert task is not None
        return task

    async def behind_its_back(self, sql: str, *args: object) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            await conn.execute(sql, *args)
        finally:
            await conn.close()


@contextlib.asynccontextmanager
async def two_processes(
    admin_url: str, *, serves_api: bool = True
) -> AsyncIterator[tuple[Poller, SqlStore]]:
    with fresh_database(admin_url) as url:
        poller, other = SqlStore(url), SqlStore(url)
        await poller.start()
        await other.start()
        poller.live.ttl_s = 60.0  # long enough never to lapse during a test
        listener = Listener(url, Signals(), poller.live, reconnect_s=0.05, serves_api=serves_api)
        listening = asyncio.create_task(listener.run())
        await asyncio.wait_for(listener.connected.wait(), 10)
        dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
        try:
            yield Poller(poller, listener, dsn), other
        finally:
            listening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listening
            await other.close()
            await poller.close()


async def eventually(check: Callable[[], Awaitable[bool]]) -> None:
    """Poll ``check`` every 10 ms for up to 10 s: a notice's delivery takes its time."""
    for _ in range(1000):
        if await check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not within 10 s")


async def test_polls_come_from_memory_until_another_process_changes_the_task(
    pg_admin_url: str,
) -> None:
    async with two_processes(pg_admin_url) as (poller, other):
        task = await other.create_task(new_task())
        assert (await poller.recent(task.id)).status.value == "pending"
        await poller.behind_its_back("UPDATE tasks SET progress = 42 WHERE id = $1", task.id)
        # Remembered: the unannounced change is not seen by a poll, only by a plain read.
        assert (await poller.recent(task.id)).progress is None
        fresh = await poller.store.get_task(task.id)
        assert fresh is not None and fresh.progress == 42

        async def shows(status: str, progress: int | None) -> bool:
            seen = await poller.recent(task.id)
            return seen.status.value == status and seen.progress == progress

        # Each announced change reaches the poll.
        (_,) = await other.claim("w1", 1, time.time() + 1, 60)
        await eventually(lambda: shows("processing", 42))
        assert await other.set_progress(task.id, "w1", 70, None)
        await eventually(lambda: shows("processing", 70))
        retry_at = time.time() + 1
        assert await other.schedule_retry(task.id, "w1", retry_at)
        await eventually(lambda: poller_sees_run_after(poller, task.id, retry_at))
        (_,) = await other.claim("w2", 1, retry_at + 1, 60)
        assert await other.complete(task.id, "w2", [IMAGE])
        await eventually(lambda: shows("completed", 100))


async def test_a_process_of_workers_only_hears_of_new_tasks_and_reads_every_poll(
    pg_admin_url: str,
) -> None:
    async with two_processes(pg_admin_url, serves_api=False) as (worker, other):
        signals = worker.listener.signals
        signals.new_work.clear()
        task = await other.create_task(new_task())
        await eventually(lambda: _is_set(signals.new_work))
        # No notice of changes is heard, so nothing read is remembered: a change made behind
        # the store's back shows at once.
        assert not worker.store.live.trusted
        await worker.recent(task.id)
        await worker.behind_its_back("UPDATE tasks SET progress = 42 WHERE id = $1", task.id)
        assert (await worker.recent(task.id)).progress == 42
        # Nor of finishes: nobody in such a process waits for one.
        waiting = asyncio.create_task(signals.wait_finished(task.id, 0.5))
        (_,) = await other.claim("w1", 1, time.time() + 1, 60)
        assert await other.complete(task.id, "w1", [IMAGE])
        assert not await waiting


async def _is_set(event: asyncio.Event) -> bool:
    return event.is_set()


async def poller_sees_run_after(poller: Poller, task_id: str, run_after: float) -> bool:
    return (await poller.recent(task_id)).run_after == run_after


async def test_a_change_made_in_the_same_process_is_seen_at_once(pg_admin_url: str) -> None:
    async with two_processes(pg_admin_url) as (poller, _):
        task = await poller.store.create_task(new_task())
        await poller.recent(task.id)
        assert await poller.store.cancel_pending(task.id)
        assert (await poller.recent(task.id)).status.value == "failed"


async def test_nothing_is_remembered_while_the_listener_is_away(pg_admin_url: str) -> None:
    async with two_processes(pg_admin_url) as (poller, other):
        task = await other.create_task(new_task())
        await poller.recent(task.id)
        database = urlsplit(poller.dsn).path.lstrip("/")
        await poller.behind_its_back(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = $1 AND query LIKE 'LISTEN%'",
            database,
        )

        async def untrusted() -> bool:
            return not poller.store.live.trusted

        await eventually(untrusted)
        # Away: every poll is a read, so an unannounced change shows at once.
        await poller.behind_its_back("UPDATE tasks SET progress = 5 WHERE id = $1", task.id)
        assert (await poller.recent(task.id)).progress == 5
        await poller.behind_its_back("UPDATE tasks SET progress = 6 WHERE id = $1", task.id)
        assert (await poller.recent(task.id)).progress == 6

        async def trusted() -> bool:
            return poller.store.live.trusted

        # Back: what was read while away was dropped, and memory serves again.
        await eventually(trusted)
        assert (await poller.recent(task.id)).progress == 6
        await poller.behind_its_back("UPDATE tasks SET progress = 7 WHERE id = $1", task.id)
        assert (await poller.recent(task.id)).progress == 6


async def test_sqlite_polls_come_from_memory_only_while_nothing_was_committed(
    tmp_path: Path,
) -> None:
    """SQLite says when any connection committed, so its polls are exactly as stored."""
    path = tmp_path / "live.db"
    store = SqlStore(f"sqlite+aiosqlite:///{path}")
    await store.start()
    other = sqlite3.connect(path, isolation_level=None)
    try:
        task = await store.create_task(new_task())
        reader = store._fast
        assert isinstance(reader, SqliteReader)
        reads = 0
        first = reader.first

        async def counted(table: str, column: str, value: str) -> Row | None:
            nonlocal reads
            reads += 1
            return await first(table, column, value)

        reader.first = counted  # type: ignore[method-assign]
        polled = [await store.get_task(task.id, recent=True) for _ in range(5)]
        assert reads == 1 and all(p is polled[0] for p in polled)
        other.execute("UPDATE tasks SET progress = 42 WHERE id = ?", (task.id,))
        seen = await store.get_task(task.id, recent=True)
        assert seen is not None and seen.progress == 42 and reads == 2
        (_,) = await store.claim("w1", 1, time.time() + 1, 60)
        seen = await store.get_task(task.id, recent=True)
        assert seen is not None and seen.status.value == "processing" and reads == 3
    finally:
        other.close()
        await store.close()


async def test_completions_written_together_each_reach_the_poll(pg_admin_url: str) -> None:
    async with two_processes(pg_admin_url) as (poller, other):
        made = [await other.create_task(new_task()) for _ in range(6)]
        claimed = await other.claim("w1", 6, time.time() + 1, 60)
        assert len(claimed) == 6
        for task in made:
            await poller.recent(task.id)
        # With one transaction at a time, the first completion goes alone and the other five,
        # queued behind it, share one statement (``complete_together``).
        other._writes._flushers = 1
        done = await asyncio.gather(*(other.complete(t.id, "w1", [IMAGE]) for t in made))
        assert all(done)

        async def all_completed() -> bool:
            seen = [await poller.recent(t.id) for t in made]
            return all(t.status.value == "completed" for t in seen)

        await eventually(all_completed)
