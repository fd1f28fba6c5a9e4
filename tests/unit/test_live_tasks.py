"""The rules by which the store trusts a remembered live task (``store.live``)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from imagegate.engine.states import TaskStatus
from imagegate.store import live
from imagegate.store.live import LiveTasks
from tests.integration.test_store import new_task


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1000.0]
    monkeypatch.setattr(live.time, "monotonic", lambda: now[0])
    return now


def test_nothing_is_kept_until_the_listener_listens() -> None:
    tasks, task = LiveTasks(), new_task()
    tasks.keep(task, tasks.mark())
    assert tasks.get(task.id) is None
    tasks.trust()
    tasks.keep(task, tasks.mark())
    assert tasks.get(task.id) is task


def test_a_read_sent_before_a_notice_is_not_kept() -> None:
    tasks, task, other = LiveTasks(), new_task(), new_task()
    tasks.trust()
    mark = tasks.mark()
    tasks.changed(other.id)  # any notice: the read may predate the change it announced
    tasks.keep(task, mark)
    assert tasks.get(task.id) is None


def test_a_read_sent_before_the_listener_reconnected_is_not_kept() -> None:
    tasks, task = LiveTasks(), new_task()
    tasks.trust()
    mark = tasks.mark()
    tasks.distrust()
    tasks.trust()
    tasks.keep(task, mark)
    assert tasks.get(task.id) is None


def test_a_notice_forgets_its_task_and_only_it() -> None:
    tasks, one, two = LiveTasks(), new_task(), new_task()
    tasks.trust()
    tasks.keep(one, tasks.mark())
    tasks.keep(two, tasks.mark())
    tasks.changed(one.id)
    assert tasks.get(one.id) is None
    assert tasks.get(two.id) is two


def test_losing_the_listener_forgets_everything() -> None:
    tasks, task = LiveTasks(), new_task()
    tasks.trust()
    tasks.keep(task, tasks.mark())
    tasks.distrust()
    assert tasks.get(task.id) is None
    tasks.trust()  # what was read before the reconnect stays forgotten
    assert tasks.get(task.id) is None


def test_a_task_is_trusted_for_ttl_at_most(clock: list[float]) -> None:
    tasks, task = LiveTasks(ttl_s=1.0), new_task()
    tasks.trust()
    tasks.keep(task, tasks.mark())
    clock[0] += 0.9
    assert tasks.get(task.id) is task
    clock[0] += 0.2
    assert tasks.get(task.id) is None


def test_finished_tasks_are_not_kept() -> None:
    tasks, task = LiveTasks(), new_task()
    tasks.trust()
    done = replace(task, status=TaskStatus.COMPLETED)
    tasks.keep(done, tasks.mark())
    assert tasks.get(done.id) is None


def test_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live, "SIZE", 3)
    tasks = LiveTasks()
    tasks.trust()
    kept = [new_task() for _ in range(4)]
    for task in kept:
        tasks.keep(task, tasks.mark())
    assert [tasks.get(t.id) for t in kept] == [None, None, None, kept[3]]
