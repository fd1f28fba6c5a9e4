"""The store's guarantees on a real database (SQLite, or PostgreSQL with the backend switch).

Every "process" here is its own ``SqlStore`` with its own engine and connection pool, as two
imagegate processes sharing one database would be.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from imagegate.engine.models import ImageRequest, StoredImage, Task, UpstreamState
from imagegate.engine.states import TaskStatus
from imagegate.ids import new_task_id
from imagegate.store.sql import IDEMPOTENCY_WINDOW_S, SqlStore

StoreFactory = Callable[[], SqlStore]


@pytest.fixture
async def store_factory(
    tmp_path: Path, database_factory: Callable[[], Any]
) -> AsyncIterator[StoreFactory]:
    """Stores ("processes") on one fresh database; all are closed at the end."""
    ctx = database_factory()
    # The factory runs its own event loop (to create a PostgreSQL database): keep it off ours.
    url = await asyncio.to_thread(ctx.__enter__) or f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    opened: list[SqlStore] = []

    def make() -> SqlStore:
        store = SqlStore(url)
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.close()
    await asyncio.to_thread(ctx.__exit__, None, None, None)


@pytest.fixture
async def store(store_factory: StoreFactory) -> SqlStore:
    first = store_factory()
    await first.start()
    return first


def new_task(
    *, now: float | None = None, idem: str | None = None, key_id: str = "key_a", **kw: Any
) -> Task:
    now = time.time() if now is None else now
    values: dict[str, Any] = {
        "id": new_task_id(),
        "key_id": key_id,
        "model": "local",
        "status": TaskStatus.PENDING,
        "request": ImageRequest(model="local", prompt="a lighthouse"),
        "created_at": now,
        "updated_at": now,
        "run_after": now,
        "deadline_at": now + 600,
        "expires_at": now + 7 * 86400,
        "idempotency_key": idem,
        "request_hash": "h1" if idem else None,
    }
    return Task(**(values | kw))


IMAGE = StoredImage(key="x/0.png", content_type="image/png", width=64, height=64)


async def test_concurrent_claimers_never_claim_a_task_twice(
    store: SqlStore, store_factory: StoreFactory
) -> None:
    for _ in range(120):
        await store.create_task(new_task())
    claimers = [store_factory() for _ in range(6)]
    for claimer in claimers:
        await claimer.start()

    async def drain(claimer: SqlStore, owner: str) -> list[str]:
        got: list[str] = []
        while batch := await claimer.claim(owner, 7, time.time(), 30):
            got += [t.id for t in batch]
            assert all(t.lease_owner == owner for t in batch)
        return got

    results = await asyncio.gather(*(drain(c, f"w{i}") for i, c in enumerate(claimers)))
    counts = Counter(task_id for ids in results for task_id in ids)
    assert len(counts) == 120
    assert set(counts.values()) == {1}


async def test_a_late_worker_cannot_overwrite_a_terminal_result(store: SqlStore) -> None:
    task = await store.create_task(new_task())
    [claimed] = await store.claim("w1", 10, time.time(), 30)
    assert await store.complete(task.id, "w2", [IMAGE]) is False  # not its lease
    assert await store.complete(claimed.id, "w1", [IMAGE]) is True
    assert await store.fail(task.id, "w1", "late", "upstream_error") is False
    assert await store.fail(task.id, None, "sweeper", "timeout") is False
    assert await store.save_upstream(task.id, "w1", UpstreamState(route="r")) is False
    done = await store.get_task(task.id)
    assert done is not None and done.status is TaskStatus.COMPLETED and done.images == (IMAGE,)


async def test_racing_complete_and_fail_exactly_one_wins(
    store: SqlStore, store_factory: StoreFactory
) -> None:
    other = store_factory()
    await other.start()
    for _ in range(20):
        task = await store.create_task(new_task())
        await store.claim("w1", 1, time.time(), 30)
        wins = await asyncio.gather(
            store.complete(task.id, "w1", [IMAGE]),
            other.fail(task.id, None, "deadline", "timeout"),
        )
        assert sorted(wins) == [False, True]
        final = await store.get_task(task.id)
        assert final is not None
        assert final.status is (TaskStatus.COMPLETED if wins[0] else TaskStatus.FAILED)


async def test_an_expired_lease_is_reclaimed_and_the_old_owner_is_locked_out(
    store: SqlStore,
) -> None:
    now = time.time()
    task = await store.create_task(new_task(now=now))
    [first] = await store.claim("dead", 10, now, 5)
    assert first.attempts == 1
    assert await store.claim("alive", 10, now + 4, 5) == []  # lease still held
    [again] = await store.claim("alive", 10, now + 6, 5)
    assert (again.id, again.lease_owner, again.attempts) == (task.id, "alive", 2)
    assert await store.renew_leases("dead", [task.id], now + 100) == set()
    assert await store.complete(task.id, "dead", [IMAGE]) is False
    assert await store.renew_leases("alive", [task.id], now + 100) == {task.id}
    assert await store.complete(task.id, "alive", [IMAGE]) is True


async def test_the_upstream_journal_survives_a_reclaim(store: SqlStore) -> None:
    now = time.time()
    task = await store.create_task(new_task(now=now))
    await store.claim("dead", 1, now, 5)
    journal = UpstreamState(route="vendor", jobs=[{"task_id": "up-1"}])
    assert await store.save_upstream(task.id, "dead", journal)
    [again] = await store.claim("alive", 1, now + 10, 5)
    assert again.upstream == journal


async def test_release_and_retry_hand_the_task_back(store: SqlStore) -> None:
    now = time.time()
    task = await store.create_task(new_task(now=now))
    await store.claim("w1", 1, now, 30)
    assert await store.release(task.id, "w1")
    [again] = await store.claim("w2", 1, now, 30)
    assert again.attempts == 1  # a graceful release does not count as an attempt
    assert await store.schedule_retry(task.id, "w2", now + 60)
    assert await store.claim("w3", 1, now + 30, 30) == []
    [later] = await store.claim("w3", 1, now + 61, 30)
    assert later.status is TaskStatus.PROCESSING and later.attempts == 2


async def test_idempotent_creates_from_two_processes_make_one_task(
    store: SqlStore, store_factory: StoreFactory
) -> None:
    other = store_factory()
    await other.start()
    attempts = [new_task(idem="order-1") for _ in range(6)]
    stores = [store, other] * 3
    creates = (s.create_task(t) for s, t in zip(stores, attempts, strict=True))
    results = await asyncio.gather(*creates)
    assert len({t.id for t in results}) == 1
    # After a restart (a new process on the same database) the key still answers the task.
    await store.close()
    restarted = store_factory()
    await restarted.start()
    again = await restarted.create_task(new_task(idem="order-1"))
    assert again.id == results[0].id
    # Another API key's identical idempotency key is its own.
    theirs = await restarted.create_task(new_task(idem="order-1", key_id="key_b"))
    assert theirs.id != results[0].id


async def test_an_idempotency_key_older_than_the_window_starts_new_work(store: SqlStore) -> None:
    now = time.time()
    old = await store.create_task(new_task(now=now - IDEMPOTENCY_WINDOW_S - 60, idem="k"))
    fresh = await store.create_task(new_task(now=now, idem="k"))
    assert fresh.id != old.id
    assert await store.get_task(old.id) is not None  # the old task itself is kept


async def test_overdue_lists_live_tasks_past_their_deadline(store: SqlStore) -> None:
    now = time.time()
    late = await store.create_task(new_task(now=now, deadline_at=now - 1))
    await store.create_task(new_task(now=now))
    assert [t.id for t in await store.overdue(now, 10)] == [late.id]


async def test_expired_tasks_are_deleted_live_ones_kept(store: SqlStore) -> None:
    now = time.time()
    done = await store.create_task(new_task(now=now, expires_at=now - 1))
    await store.claim("w", 1, now, 30)
    await store.complete(done.id, "w", [IMAGE])
    live = await store.create_task(new_task(now=now, expires_at=now - 1))
    deleted = await store.delete_expired(now, 10)
    assert [t.id for t in deleted] == [done.id] and deleted[0].images == (IMAGE,)
    assert await store.get_task(done.id) is None
    assert await store.get_task(live.id) is not None  # never delete work in progress
    listed = await store.list_tasks("key_a", limit=10, alive_at=now)
    assert listed == []


async def test_cancel_pending_and_cancel_requests_are_compare_and_swap(store: SqlStore) -> None:
    now = time.time()
    pending = await store.create_task(new_task(now=now))
    assert await store.request_cancel(pending.id) is False  # only processing tasks
    assert await store.cancel_pending(pending.id) is True
    cancelled = await store.get_task(pending.id)
    assert cancelled is not None
    assert (cancelled.status, cancelled.error_code, cancelled.cancelled) == (
        TaskStatus.FAILED,
        "cancelled",
        True,
    )
    assert await store.claim("w", 10, now, 30) == []
    running = await store.create_task(new_task(now=now))
    await store.claim("w", 10, now, 30)
    assert await store.cancel_pending(running.id) is False
    assert await store.schedule_retry(running.id, "w", now + 600)
    assert await store.request_cancel(running.id) is True
    [claimed] = await store.claim("w2", 10, time.time(), 30)  # claimable at once to stop it
    assert claimed.cancel_requested


async def test_an_unchanged_row_reads_as_the_same_task_and_a_change_as_a_new_one(
    store: SqlStore, store_factory: StoreFactory
) -> None:
    """Polls cache their rendered answer by the Task's identity: it must change with the row,
    whichever process wrote it."""
    task = await store.create_task(new_task())
    first = await store.get_task(task.id)
    assert first is not None and await store.get_task(task.id) is first
    other = store_factory()  # another process claims it
    await other.start()
    assert len(await other.claim("w2", 1, time.time(), 30)) == 1
    seen = await store.get_task(task.id)
    assert seen is not first and seen is not None
    assert seen.status is TaskStatus.PROCESSING and seen.lease_owner == "w2"
    assert await other.set_progress(task.id, "w2", 40, None)
    progressed = await store.get_task(task.id)
    assert progressed is not None and progressed.progress == 40
    assert await other.complete(task.id, "w2", [IMAGE])
    done = await store.get_task(task.id)
    assert done is not None and done.status is TaskStatus.COMPLETED and done.images == (IMAGE,)


async def test_concurrent_reads_each_get_their_own_row(store: SqlStore) -> None:
    """On PostgreSQL reads arriving together are grouped into one statement; every caller
    still gets exactly its own row (or None), duplicates and missing ids included."""
    created = [await store.create_task(new_task(key_id=f"key_{i}")) for i in range(40)]
    ids = [t.id for t in created] + [t.id for t in created[:10]] + ["igt_missing"] * 5
    reads = await asyncio.gather(*(store.get_task(i) for i in ids))
    for task_id, read in zip(ids, reads, strict=True):
        if task_id == "igt_missing":
            assert read is None
        else:
            assert read is not None and read.id == task_id
            assert read.key_id == next(t.key_id for t in created if t.id == task_id)


async def test_renewing_many_leases_returns_exactly_the_ones_still_held(store: SqlStore) -> None:
    """Renewals go in chunks; across them, a task another worker holds or that finished is
    reported as not renewed, and only those."""
    ids = [(await store.create_task(new_task())).id for _ in range(1200)]
    claimed = await store.claim("w1", 1200, time.time() + 1, 30)
    assert len(claimed) == 1200
    finished = set(ids[::7])
    assert all(await asyncio.gather(*(store.complete(i, "w1", [IMAGE]) for i in finished)))
    until = time.time() + 300
    renewed = await store.renew_leases("w1", [*ids, "igt_unknown"], until)
    assert renewed == set(ids) - finished
    assert await store.renew_leases("w2", ids[:10], until) == set()
    held = await store.get_task(ids[1])
    assert held is not None and held.lease_expires_at == until


# --- tasks created claimed and held until their first write (``store.held``) -----------------


def claimed_task(owner: str = "w1") -> Task:
    now = time.time()
    return new_task(
        now=now,
        status=TaskStatus.PROCESSING,
        attempts=1,
        lease_owner=owner,
        lease_expires_at=now + 30,
    )


@pytest.fixture
def short_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("imagegate.store.held.HOLD_S", 0.05)


@pytest.fixture
async def other(store_factory: StoreFactory) -> SqlStore:
    """Another process on the same database: it sees only what was written."""
    reader = store_factory()
    await reader.start()
    return reader


async def test_a_held_task_is_written_once_by_its_completion(
    store: SqlStore, other: SqlStore
) -> None:
    task = claimed_task()
    store.hold_claimed(task)
    assert await store.get_task(task.id) == task  # its own run reads it from memory
    assert await other.get_task(task.id) is None
    assert await store.renew_leases("w1", [task.id], time.time() + 60) == {task.id}
    assert await store.renew_leases("w2", [task.id], time.time() + 60) == set()
    assert await store.complete(task.id, "w2", [IMAGE]) is False  # not its lease
    assert await store.complete(task.id, "w1", [IMAGE]) is True
    done = await other.get_task(task.id)
    assert done is not None
    assert (done.status, done.images, done.progress, done.attempts, done.lease_owner) == (
        TaskStatus.COMPLETED,
        (IMAGE,),
        100,
        1,
        None,
    )
    assert done.request == task.request and done.deadline_at == task.deadline_at
    assert await store.complete(task.id, "w1", [IMAGE]) is False  # an ordinary stored task now
    assert store.drop_held(task.id) is False


async def test_a_held_task_still_running_after_the_hold_is_stored_as_it_stands(
    store: SqlStore, other: SqlStore, short_hold: None
) -> None:
    task = claimed_task()
    store.hold_claimed(task)
    deadline = time.monotonic() + 10
    while (found := await other.get_task(task.id)) is None:
        assert time.monotonic() < deadline, "the held task was never written"
        await asyncio.sleep(0.05)
    assert (found.status, found.lease_owner, found.attempts) == (TaskStatus.PROCESSING, "w1", 1)
    # From here on its writes are updates, under the usual guards.
    assert await store.renew_leases("w1", [task.id], time.time() + 60) == {task.id}
    assert await store.fail(task.id, "w1", "upstream said no", "upstream_error") is True
    failed = await other.get_task(task.id)
    assert failed is not None and (failed.status, failed.error) == (
        TaskStatus.FAILED,
        "upstream said no",
    )


async def test_a_held_task_given_back_is_claimable_by_any_worker(store: SqlStore) -> None:
    task = claimed_task()
    store.hold_claimed(task)
    assert await store.release(task.id, "w1") is True
    [again] = await store.claim("w2", 1, time.time(), 30)
    assert (again.id, again.lease_owner, again.attempts) == (task.id, "w2", 1)


async def test_each_first_write_of_a_held_task_inserts_it_as_that_write_leaves_it(
    store: SqlStore, other: SqlStore
) -> None:
    journal = UpstreamState(route="vendor", jobs=[{"task_id": "up-9"}])
    writes = {
        "journal": lambda t: store.save_upstream(t.id, "w1", journal),
        "progress": lambda t: store.set_progress(t.id, "w1", 40, 3),
        "retry": lambda t: store.schedule_retry(t.id, "w1", time.time() + 60),
        "failure": lambda t: store.fail(t.id, None, "past its deadline", "timeout"),
    }
    for name, write in writes.items():
        task = claimed_task()
        store.hold_claimed(task)
        assert await write(task) is True, name
        found = await other.get_task(task.id)
        assert found is not None, name
        if name == "journal":
            assert found.upstream == journal and found.lease_owner == "w1"
        elif name == "progress":
            assert (found.progress, found.queue_position) == (40, 3)
        elif name == "retry":
            assert found.lease_owner is None and found.run_after > time.time() + 30
        else:
            assert (found.status, found.error_code) == (TaskStatus.FAILED, "timeout")


async def test_writes_of_a_held_task_at_once_apply_in_order(
    store: SqlStore, other: SqlStore
) -> None:
    """The second write waits for the first one's insert, then updates what it inserted."""
    for _ in range(10):
        task = claimed_task()
        store.hold_claimed(task)
        progress, done = await asyncio.gather(
            store.set_progress(task.id, "w1", 50, None), store.complete(task.id, "w1", [IMAGE])
        )
        assert progress is done is True
        found = await other.get_task(task.id)
        assert found is not None and (found.status, found.progress) == (TaskStatus.COMPLETED, 100)


async def test_a_held_task_whose_insert_landed_unseen_is_then_updated(store: SqlStore) -> None:
    """An insert whose commit's answer was lost is held again; the next write finds the row
    there (the id is taken) and updates it instead."""
    task = claimed_task()
    store.hold_claimed(task)
    await store.persist(task.id)
    store.hold_claimed(task)  # as if that insert had failed after its commit
    assert await store.complete(task.id, "w1", [IMAGE]) is True
    done = await store.get_task(task.id)
    assert done is not None and done.status is TaskStatus.COMPLETED
    assert store.drop_held(task.id) is False


async def test_a_held_task_dropped_is_never_written(
    store: SqlStore, other: SqlStore, short_hold: None
) -> None:
    task = claimed_task()
    store.hold_claimed(task)
    assert store.drop_held(task.id) is True
    await asyncio.sleep(0.2)
    assert await other.get_task(task.id) is None
    assert await store.get_task(task.id) is None


async def test_held_tasks_completed_together_keep_their_own_images(
    store: SqlStore, other: SqlStore
) -> None:
    """Completions that share one INSERT (a batch) each store their own list of images."""
    held = [claimed_task() for _ in range(20)]
    for task in held:
        store.hold_claimed(task)
    images = {
        t.id: [replace(IMAGE, key=f"{t.id}/{n}.png") for n in range(1 + i % 3)]
        for i, t in enumerate(held)
    }
    assert all(await asyncio.gather(*(store.complete(i, "w1", images[i]) for i in images)))
    for task_id, expected in images.items():
        found = await other.get_task(task_id)
        assert found is not None and found.images == tuple(expected)
