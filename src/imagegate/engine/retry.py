"""The retry policy: given a provider failure, decide what happens next. The worker obeys.

Decisions, in order of preference for a task that has not run out of time:
- ``retry``: try the same route later (transient, and certainly nothing started upstream);
- ``fallback``: move to the next route (the provider clearly refused or is down);
- ``fail``: give up with an error code (moderation, a failed job, nothing left to try).

An ambiguous submit is never retried on the same route: it may have started a paid job.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from imagegate.errors import (
    ContentPolicyViolation,
    JobFailed,
    ProviderAmbiguous,
    ProviderAuthError,
    ProviderError,
    ProviderRejected,
    ProviderUnavailable,
)

Action = Literal["retry", "fallback", "fail"]


@dataclass(frozen=True)
class Decision:
    action: Action
    delay_s: float = 0.0
    error_code: str = "upstream_error"


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded by attempts and by the task's deadline."""

    max_attempts: int = 5
    base_s: float = 1.0
    cap_s: float = 60.0

    def backoff(self, attempt: int, hint: float | None = None) -> float:
        """Delay before attempt ``attempt + 1``; a vendor's Retry-After wins when longer."""
        ceiling = min(self.cap_s, self.base_s * 2 ** max(0, attempt - 1))
        delay = random.uniform(ceiling / 2, ceiling)
        return max(delay, hint or 0.0)

    def decide(
        self, error: ProviderError, *, attempt: int, has_fallback: bool, time_left_s: float
    ) -> Decision:
        if isinstance(error, ContentPolicyViolation):
            return Decision("fail", error_code="content_policy_violation")
        if isinstance(error, ProviderAuthError | ProviderRejected | ProviderAmbiguous | JobFailed):
            # A refusal or an accepted-then-failed job will not change by waiting: another
            # route may serve it. An ambiguous submit may only go to a *different* route.
            return Decision("fallback" if has_fallback else "fail", error_code=error.error_code)
        if isinstance(error, ProviderUnavailable):
            delay = self.backoff(attempt, error.retry_after)
            if attempt < self.max_attempts and delay < time_left_s:
                return Decision("retry", delay_s=delay)
            return Decision("fallback" if has_fallback else "fail", error_code=error.error_code)
        return Decision("fail", error_code=error.error_code)
