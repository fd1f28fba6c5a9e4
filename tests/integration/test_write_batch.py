"""Group commit on a real database: writes made together share transactions, yet each keeps
its own compare-and-swap outcome, its own error, and its durability."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from imagegate.config import Durability
from imagegate.engine.states import TaskStatus
from imagegate.errors import StoreUnavailable
from imagegate.store.sql import SqlStore
from tests.integration.test_store import (  # the store fixtures, shared
    IMAGE,
    StoreFactory,
    new_task,
    store,
    store_factory,
)
from tests.support.gateway import free_port

__all__ = ["store", "store_factory"]
TASKS = 40


async def _claimed(store: SqlStore, owner: str, count: int) -> list[str]:
    ids = [(await store.create_task(new_task())).id for _ in range(count)]
    claimed = await store.claim(owner, count, now=time.time() + 1, lease_s=60)
    assert sorted(t.id for t in claimed) == sorted(ids)
    return ids


# A few creates share a multi-row VALUES on PostgreSQL, many an INSERT from arrays.
@pytest.mark.parametrize("count", [3, TASKS])
async def test_simultaneous_creates_are_all_stored(store: SqlStore, count: int) -> None:
    made = await asyncio.gather(*(store.create_task(new_task()) for _ in range(count)))
    for task in made:
        assert (await store.get_task(task.id)) == task


async def test_racing_finishes_in_one_batch_and_across_stores_have_one_winner(
    store: SqlStore, store_factory: StoreFactory
) -> None:
    other = store_factory()
    ids = await _claimed(store, "w1", TASKS)
    writes = []
    for task_id in ids:
        writes += [
            store.complete(task_id, "w1", [IMAGE]),
            store.complete(task_id, "w1", [IMAGE]),  # the same worker twice, same batch
            store.fail(task_id, "w1", "boom", "upstream_error"),
            other.fail(task_id, None, "late", "timeout"),  # a sweeper in another process
            other.complete(task_id, "w2", [IMAGE]),  # a worker whose lease is not this one
        ]
    outcomes = await asyncio.gather(*writes)
    for index, task_id in enumerate(ids):
        won = outcomes[index * 5 : index * 5 + 5]
        assert Counter(won)[True] == 1, (task_id, won)
        assert won[4] is False
        final = await store.get_task(task_id)
        assert final is not None
        assert final.status in (TaskStatus.COMPLETED, TaskStatus.FAILED)
        assert final.lease_owner is None


async def test_a_failing_write_does_not_decide_its_batch_mates(store: SqlStore) -> None:
    taken = await store.create_task(new_task())
    fresh = [new_task() for _ in range(TASKS)]
    duplicate = new_task(id=taken.id)  # violates the primary key
    results = await asyncio.gather(
        *(store.create_task(t) for t in fresh[: TASKS // 2]),
        store.create_task(duplicate),
        *(store.create_task(t) for t in fresh[TASKS // 2 :]),
        return_exceptions=True,
    )
    failed = results.pop(TASKS // 2)
    assert isinstance(failed, sa.exc.IntegrityError)
    assert results == fresh
    for task in fresh:
        assert (await store.get_task(task.id)) == task
    assert (await store.get_task(taken.id)) == taken


async def test_progress_and_finish_of_many_tasks_at_once_all_land(store: SqlStore) -> None:
    ids = await _claimed(store, "w1", TASKS)
    progressed = await asyncio.gather(*(store.set_progress(i, "w1", 50, None) for i in ids))
    assert all(progressed)
    assert all(await asyncio.gather(*(store.complete(i, "w1", [IMAGE]) for i in ids)))
    for task_id in ids:
        task = await store.get_task(task_id)
        assert task is not None
        assert (task.status, task.progress, task.images) == (TaskStatus.COMPLETED, 100, (IMAGE,))


async def test_an_unreachable_database_fails_every_waiter_as_unavailable() -> None:
    down = SqlStore(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/none")
    try:
        results = await asyncio.gather(
            *(down.create_task(new_task()) for _ in range(5)),
            *(down.complete(f"t{i}", "w1", [IMAGE]) for i in range(5)),
            return_exceptions=True,
        )
    finally:
        await down.close()
    assert all(isinstance(r, StoreUnavailable) for r in results), results


@pytest.mark.parametrize(("durability", "expected"), [("crash", 1), ("power", 2)])
async def test_sqlite_synchronous_follows_the_durability_setting(
    tmp_path: Path, durability: Durability, expected: int
) -> None:
    store = SqlStore(f"sqlite+aiosqlite:///{tmp_path}/d.db", durability=durability)
    try:
        async with store.engine.connect() as conn:
            mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar_one()
            sync = (await conn.exec_driver_sql("PRAGMA synchronous")).scalar_one()
    finally:
        await store.close()
    assert (mode, sync) == ("wal", expected)  # 1 NORMAL, 2 FULL


async def test_finishes_sharing_one_statement_keep_their_own_guard(store: SqlStore) -> None:
    """On PostgreSQL completions of a batch run as one statement: a write whose lease is not
    the task's changes nothing, whatever its batch-mates do."""
    ids = await _claimed(store, "w1", TASKS)
    owners = ["w1" if i % 3 else "w2" for i in range(TASKS)]
    outcomes = await asyncio.gather(
        *(store.complete(i, owner, [IMAGE]) for i, owner in zip(ids, owners, strict=True))
    )
    assert outcomes == [owner == "w1" for owner in owners]
    for task_id, owner in zip(ids, owners, strict=True):
        task = await store.get_task(task_id)
        assert task is not None
        expected = TaskStatus.COMPLETED if owner == "w1" else TaskStatus.PROCESSING
        assert (task.status, task.images) == (expected, (IMAGE,) if owner == "w1" else ())


async def test_sqlite_writes_wait_on_a_thread_while_another_connection_holds_the_lock(
    tmp_path: Path,
) -> None:
    """Batches run on the loop's thread only when the lock is free at once; otherwise they
    wait for it through the engine, and the loop keeps serving meanwhile."""
    path = tmp_path / "locked.db"
    store = SqlStore(f"sqlite+aiosqlite:///{path}")
    await store.start()
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        creates = asyncio.gather(*(store.create_task(new_task()) for _ in range(10)))
        ticks = 0
        for _ in range(30):  # the loop is not blocked: it keeps turning
            await asyncio.sleep(0.01)
            ticks += 1
        assert not creates.done()
        blocker.execute("COMMIT")
        made = await creates
        for task in made:
            assert await store.get_task(task.id) == task
        assert ticks == 30
    finally:
        blocker.close()
        await store.close()


async def test_sqlite_log_is_checkpointed_while_the_loop_writes(tmp_path: Path) -> None:
    """Commits on the loop's thread never checkpoint themselves; a thread does it regularly,
    so the write-ahead log stays bounded instead of growing with every commit."""
    path = tmp_path / "wal.db"
    store = SqlStore(f"sqlite+aiosqlite:///{path}")
    await store.start()
    wal = path.with_name(path.name + "-wal")
    try:
        sizes = []
        for _ in range(6):
            for _ in range(500):
                await store.create_task(new_task())
            await asyncio.sleep(0.05)  # let the checkpoint thread run
            sizes.append(wal.stat().st_size)
    finally:
        await store.close()
    assert max(sizes) < 8 * 1024 * 1024, sizes  # without checkpoints: 66 MB


async def test_sqlite_batches_need_no_engine_connection_when_the_lock_is_free(
    tmp_path: Path,
) -> None:
    """With crash durability a batch commits on the loop's own connection: the threaded
    engine is not used at all (here it would fail)."""
    store = SqlStore(f"sqlite+aiosqlite:///{tmp_path / 'here.db'}")
    await store.start()

    def no_engine() -> object:
        raise AssertionError("the batch went through the threaded engine")

    store._tx = no_engine  # type: ignore[method-assign,assignment]
    try:
        made = await asyncio.gather(*(store.create_task(new_task()) for _ in range(5)))
    finally:
        await store.close()
    assert len(made) == 5


async def test_tasks_created_queued_and_created_claimed_keep_their_own_columns(
    store: SqlStore,
) -> None:
    """The two kinds of insert name different columns (a claimed one has its lease): a
    batch must not write one with the other's statement."""
    queued = [new_task() for _ in range(3)]
    now = time.time()
    claimed = [
        new_task(status=TaskStatus.PROCESSING, attempts=1, lease_owner="w1", lease_expires_at=now)
        for _ in range(3)
    ]
    for task in claimed:
        store.hold_claimed(task)
    await asyncio.gather(
        *(store.create_task(t) for t in queued), *(store.persist(t.id) for t in claimed)
    )
    leases = {t.id: (t.lease_owner, t.lease_expires_at) for t in queued + claimed}
    for task_id, lease in leases.items():
        stored = await store.get_task(task_id)
        assert stored is not None and (stored.lease_owner, stored.lease_expires_at) == lease
