"""The retry policy's decisions: what is retried, what falls back, what fails, and how long
the worker waits."""

from __future__ import annotations

import pytest

from imagegate import errors as e
from imagegate.engine.retry import Decision, RetryPolicy

POLICY = RetryPolicy(max_attempts=5, base_s=1.0, cap_s=60.0)


def decide(
    error: e.ProviderError, attempt: int = 1, fallback: bool = True, left: float = 600
) -> Decision:
    return POLICY.decide(error, attempt=attempt, has_fallback=fallback, time_left_s=left)


def test_moderation_fails_at_once_even_with_a_fallback() -> None:
    decision = decide(e.ContentPolicyViolation("blocked"))
    assert (decision.action, decision.error_code) == ("fail", "content_policy_violation")


@pytest.mark.parametrize(
    "error",
    [e.ProviderRejected("bad size"), e.ProviderAuthError("bad key"), e.JobFailed("job died")],
)
def test_refusals_and_failed_jobs_move_to_the_next_route_or_fail(error: e.ProviderError) -> None:
    assert decide(error).action == "fallback"
    last = decide(error, fallback=False)
    assert (last.action, last.error_code) == ("fail", "upstream_error")


def test_an_ambiguous_submit_is_never_retried_on_the_same_route() -> None:
    for attempt in (1, 2, 10):
        assert decide(e.ProviderAmbiguous("502 after send"), attempt=attempt).action == "fallback"
        assert decide(e.ProviderAmbiguous("timeout"), attempt, fallback=False).action == "fail"


def test_a_transient_failure_is_retried_with_backoff() -> None:
    decision = decide(e.ProviderUnavailable("503"), attempt=3)
    assert decision.action == "retry"
    assert 2.0 <= decision.delay_s <= 4.0  # full jitter over the upper half of base * 2^(n-1)


def test_a_rate_limit_waits_at_least_the_vendors_retry_after() -> None:
    decision = decide(e.ProviderRateLimited("429", retry_after=17.0), attempt=1)
    assert decision.action == "retry" and decision.delay_s >= 17.0


def test_retries_stop_after_max_attempts() -> None:
    assert decide(e.ProviderUnavailable("503"), attempt=5).action == "fallback"
    assert decide(e.ProviderUnavailable("503"), attempt=5, fallback=False).action == "fail"


def test_no_retry_is_scheduled_past_the_deadline() -> None:
    decision = decide(e.ProviderRateLimited("429", retry_after=30.0), left=10.0, fallback=False)
    assert (decision.action, decision.error_code) == ("fail", "upstream_error")


@pytest.mark.parametrize("attempt", [1, 2, 5, 8, 30])
def test_backoff_grows_exponentially_up_to_the_cap(attempt: int) -> None:
    ceiling = min(60.0, 2.0 ** (attempt - 1))
    for _ in range(50):
        assert ceiling / 2 <= POLICY.backoff(attempt) <= ceiling
