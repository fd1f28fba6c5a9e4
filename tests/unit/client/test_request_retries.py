"""Which answers the SDK sends again, how long it waits, and what it raises in the end."""

from __future__ import annotations

import httpx
import pytest

from imagegate.client import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    ConflictError,
    InternalServerError,
    RateLimitError,
)
from imagegate.client._retry import MAX_DELAY, MAX_RETRY_AFTER, backoff
from tests.unit.client.script import Script, answer, error_body, operations, task_body


def test_server_errors_are_retried_until_success() -> None:
    script = Script([answer(500), answer(502), answer(200, task_body("pending"))])
    task = script.run(operations(max_retries=2).get_task("igt_one"))
    assert task.status == "pending"
    assert len(script.sent) == 3
    assert len(script.slept) == 2


def test_retries_stop_after_max_retries_with_the_last_error() -> None:
    script = Script([answer(503, error_body("all_providers_failed")) for _ in range(3)])
    with pytest.raises(InternalServerError) as caught:
        script.run(operations(max_retries=2).get_task("igt_one"))
    assert caught.value.code == "all_providers_failed"
    assert len(script.sent) == 3


def test_retry_after_header_sets_the_pause() -> None:
    limited = answer(429, error_body("rate_limit_exceeded"), {"Retry-After": "7"})
    script = Script([limited, answer(200, task_body("pending"))])
    script.run(operations().get_task("igt_one"))
    assert script.slept == [7.0]


def test_retry_after_in_the_error_body_is_used_when_the_header_is_missing() -> None:
    body = error_body("rate_limit_exceeded")
    body["error"]["retry_after"] = 4
    script = Script([answer(429, body), answer(200, task_body("pending"))])
    script.run(operations().get_task("igt_one"))
    assert script.slept == [4.0]


def test_a_huge_retry_after_is_capped() -> None:
    limited = answer(429, error_body("rate_limit_exceeded"), {"Retry-After": "86400"})
    script = Script([limited, answer(200, task_body("pending"))])
    script.run(operations().get_task("igt_one"))
    assert script.slept == [MAX_RETRY_AFTER]


def test_rate_limit_error_exposes_retry_after_when_retries_are_spent() -> None:
    limited = answer(429, error_body("rate_limit_exceeded"), {"Retry-After": "2"})
    script = Script([limited])
    with pytest.raises(RateLimitError) as caught:
        script.run(operations(max_retries=0).get_task("igt_one"))
    assert caught.value.retry_after == 2.0


@pytest.mark.parametrize("code", ["idempotency_key_reused", "task_not_cancellable"])
def test_final_conflicts_are_not_retried(code: str) -> None:
    script = Script([answer(409, error_body(code))])
    with pytest.raises(ConflictError) as caught:
        script.run(operations().cancel_task("igt_one"))
    assert caught.value.code == code
    assert len(script.sent) == 1


def test_other_conflicts_are_retried() -> None:
    script = Script([answer(409, error_body("busy")), answer(200, task_body("failed"))])
    script.run(operations().cancel_task("igt_one"))
    assert len(script.sent) == 2


def test_the_gateways_retryable_false_wins_over_the_status() -> None:
    body = error_body("internal_error", kind="server_error")
    body["error"]["retryable"] = False
    script = Script([answer(500, body)])
    with pytest.raises(InternalServerError):
        script.run(operations().get_task("igt_one"))
    assert len(script.sent) == 1


def test_client_errors_are_not_retried() -> None:
    script = Script([answer(401, error_body("invalid_api_key"))])
    with pytest.raises(AuthenticationError):
        script.run(operations().get_task("igt_one"))
    assert len(script.sent) == 1


def test_network_errors_are_retried_then_raised_as_connection_errors() -> None:
    refused = httpx.ConnectError("refused")
    script = Script([refused, refused, refused])
    with pytest.raises(APIConnectionError) as caught:
        script.run(operations(max_retries=2).get_task("igt_one"))
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert len(script.sent) == 3


def test_timeouts_are_raised_as_timeout_errors() -> None:
    script = Script([httpx.ReadTimeout("slow")])
    with pytest.raises(APITimeoutError):
        script.run(operations(max_retries=0).get_task("igt_one"))


def test_backoff_grows_exponentially_with_at_most_a_quarter_of_jitter() -> None:
    assert backoff(0, rand=lambda: 0.0) == 0.5
    assert backoff(1, rand=lambda: 0.0) == 1.0
    assert backoff(2, rand=lambda: 1.0) == 2.0 * 0.75
    assert backoff(30, rand=lambda: 0.0) == MAX_DELAY
