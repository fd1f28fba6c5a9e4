"""The transition table: the closed status set and which moves are allowed."""

from __future__ import annotations

import pytest

from imagegate.engine.states import TERMINAL, TRANSITIONS, TaskStatus, can_transition, sources_of


def test_status_set_is_closed_to_the_four_contract_values() -> None:
    assert {s.value for s in TaskStatus} == {"pending", "processing", "completed", "failed"}


@pytest.mark.parametrize("terminal", sorted(TERMINAL))
def test_terminal_states_have_no_way_out(terminal: TaskStatus) -> None:
    assert TRANSITIONS[terminal] == frozenset()
    assert all(not can_transition(terminal, target) for target in TaskStatus)


def test_pending_can_start_or_be_cancelled_but_not_complete() -> None:
    assert can_transition(TaskStatus.PENDING, TaskStatus.PROCESSING)
    assert can_transition(TaskStatus.PENDING, TaskStatus.FAILED)
    assert not can_transition(TaskStatus.PENDING, TaskStatus.COMPLETED)


def test_processing_keeps_retries_inside_processing() -> None:
    assert can_transition(TaskStatus.PROCESSING, TaskStatus.PROCESSING)
    assert not can_transition(TaskStatus.PROCESSING, TaskStatus.PENDING)


def test_sql_guards_come_from_the_table() -> None:
    assert sources_of(TaskStatus.COMPLETED) == ("processing",)
    assert sources_of(TaskStatus.FAILED) == ("pending", "processing")
    assert sources_of(TaskStatus.PROCESSING) == ("pending", "processing")
    assert sources_of(TaskStatus.PENDING) == ()
