"""The task state machine: the closed status set and the only table of allowed transitions.

Every store write that changes a task's status takes its ``WHERE status IN (...)`` clause from
``sources_of`` here, so the compare-and-swap in SQL and this table cannot disagree.
"""

from __future__ import annotations

from enum import StrEnum


class TaskStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED})

# processing -> processing covers lease renewal, reclaim after a lost lease and internal retries:
# the contract keeps retries inside ``processing``.
TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.PENDING: frozenset({TaskStatus.PROCESSING, TaskStatus.FAILED}),
    TaskStatus.PROCESSING: frozenset(
        {TaskStatus.PROCESSING, TaskStatus.COMPLETED, TaskStatus.FAILED}
    ),
    TaskStatus.COMPLETED: frozenset(),
    TaskStatus.FAILED: frozenset(),
}


def can_transition(source: TaskStatus, target: TaskStatus) -> bool:
    return target in TRANSITIONS[source]


def sources_of(target: TaskStatus) -> tuple[str, ...]:
    """The statuses a task may be in for a write that moves it to ``target``."""
    return tuple(sorted(s.value for s, targets in TRANSITIONS.items() if target in targets))
