"""``tasks.wait``: what it polls, how often, and how it ends."""

from __future__ import annotations

import httpx
import pytest

from imagegate.client import AuthenticationError, Task, TaskFailed, TaskNotFound, TaskTimeout
from tests.unit.client.script import Script, answer, error_body, operations, task_body

DONE = task_body("completed", data=[{"url": "http://gateway.test/f/1.png"}])
NOT_FOUND = error_body("async_task_not_found", "Task not found or no longer available.")


def wait(script: Script, target: Task | str, **options: float) -> Task:
    interval = options.get("interval")
    timeout = options.get("timeout", 300.0)
    flow = operations().wait(target, interval, timeout, None, clock=script.clock)
    return script.run(flow)


def test_polls_until_completed_and_returns_the_task() -> None:
    script = Script(
        [answer(200, task_body("pending")), answer(200, task_body("processing")), answer(200, DONE)]
    )
    task = wait(script, "igt_one")
    assert task.status == "completed"
    assert task.data[0].url == "http://gateway.test/f/1.png"
    assert [s.url for s in script.sent] == ["http://gateway.test/v1/tasks/igt_one"] * 3
    assert script.slept == [3.0, 3.0]


def test_polls_the_exact_poll_url_resolved_against_the_base_url() -> None:
    known = Task.model_validate(task_body("pending", poll_url="/v1/images/generations/igt_one"))
    script = Script([answer(200, DONE)])
    wait(script, known)
    assert script.sent[0].url == "http://gateway.test/v1/images/generations/igt_one"


def test_an_absolute_poll_url_is_used_as_is() -> None:
    script = Script([answer(200, DONE)])
    wait(script, "https://other.test/v1/tasks/igt_one")
    assert script.sent[0].url == "https://other.test/v1/tasks/igt_one"


def test_a_task_without_poll_url_is_polled_on_the_unified_route() -> None:
    seeds_task = Task.model_validate({"created": 1, "task_id": "img_abc", "status": "pending"})
    script = Script([answer(200, DONE)])
    wait(script, seeds_task)
    assert script.sent[0].url == "http://gateway.test/v1/tasks/img_abc"


def test_the_gateways_retry_after_sets_the_poll_interval_by_default() -> None:
    script = Script([answer(200, task_body("pending"), {"Retry-After": "5"}), answer(200, DONE)])
    wait(script, "igt_one")
    assert script.slept == [5.0]


def test_an_interval_the_caller_chose_wins_over_retry_after() -> None:
    script = Script([answer(200, task_body("pending"), {"Retry-After": "5"}), answer(200, DONE)])
    wait(script, "igt_one", interval=1.0)
    assert script.slept == [1.0]


def test_a_failed_task_raises_task_failed_with_error_and_code() -> None:
    failed = task_body(
        "failed", error="refused by moderation", error_code="content_policy_violation"
    )
    script = Script([answer(200, failed)])
    with pytest.raises(TaskFailed) as caught:
        wait(script, "igt_one")
    assert caught.value.error == "refused by moderation"
    assert caught.value.error_code == "content_policy_violation"
    assert caught.value.task.id == "igt_one"


def test_an_already_terminal_task_is_returned_without_polling() -> None:
    script = Script([])
    task = wait(script, Task.model_validate(DONE))
    assert task.status == "completed"
    assert script.sent == []


def test_the_deadline_raises_task_timeout_that_says_where_to_resume() -> None:
    script = Script([answer(200, task_body("processing")) for _ in range(4)])
    with pytest.raises(TaskTimeout) as caught:
        wait(script, "igt_one", interval=3.0, timeout=7.0)
    assert caught.value.task_id == "igt_one"
    assert caught.value.poll_url == "/v1/tasks/igt_one"
    assert caught.value.task is not None
    assert caught.value.task.status == "processing"
    assert script.slept == [3.0, 3.0, 1.0]
    assert len(script.sent) == 4


def test_transient_errors_back_off_and_polling_goes_on() -> None:
    script = Script(
        [
            answer(503, error_body("store_unavailable"), {"Retry-After": "2"}),
            httpx.ConnectError("refused"),
            answer(429, error_body("rate_limit_exceeded")),
            answer(200, DONE),
        ]
    )
    task = wait(script, "igt_one")
    assert task.status == "completed"
    assert script.slept[0] == 2.0
    assert len(script.sent) == 4


def test_an_unknown_task_raises_task_not_found_at_once() -> None:
    script = Script([answer(404, NOT_FOUND)])
    with pytest.raises(TaskNotFound):
        wait(script, "igt_gone")
    assert len(script.sent) == 1


def test_a_revoked_key_raises_authentication_error() -> None:
    script = Script([answer(401, error_body("invalid_api_key"))])
    with pytest.raises(AuthenticationError):
        wait(script, "igt_one")


def test_on_update_sees_every_polled_state() -> None:
    seen: list[str] = []
    script = Script([answer(200, task_body("pending")), answer(200, DONE)])
    flow = operations().wait(
        "igt_one", 3.0, 300.0, lambda t: seen.append(t.status), clock=script.clock
    )
    script.run(flow)
    assert seen == ["pending", "completed"]
