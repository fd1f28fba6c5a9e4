"""When a failed request is worth sending again, and how long to wait first.

The rules follow openai-python: retry timeouts (408), conflicts (409), rate limits (429), server
errors (5xx) and transport failures; honour the gateway's ``Retry-After``; otherwise back off
exponentially with jitter so that many clients do not retry in lockstep.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import httpx

from imagegate.client.exceptions import APIError

INITIAL_DELAY = 0.5
MAX_DELAY = 8.0
# A longer Retry-After is still honoured, but capped so a call never hangs for minutes.
MAX_RETRY_AFTER = 60.0

# A 409 with one of these codes is an answer, not a race: sending again cannot change it.
FINAL_CONFLICTS = frozenset({"idempotency_key_reused", "task_not_cancellable"})

Outcome = httpx.Response | httpx.TransportError
"""What one attempt produced: an answer, or the transport error that stood in for one."""


def is_transient(error: APIError | httpx.TransportError) -> bool:
    """True when the same request may succeed if sent again."""
    if isinstance(error, httpx.TransportError):
        return True
    if error.retryable is not None:
        return error.retryable
    if error.status_code == 409:
        return error.code not in FINAL_CONFLICTS
    return error.status_code in (408, 429) or error.status_code >= 500


def backoff(attempt: int, rand: Callable[[], float] = random.random) -> float:
    """Exponential delay for the ``attempt``-th retry (0-based), shortened by up to 25%."""
    delay = min(INITIAL_DELAY * 2.0**attempt, MAX_DELAY)
    return delay * (1 - 0.25 * rand())


def retry_delay(error: APIError | httpx.TransportError, attempt: int) -> float:
    """The gateway's ``Retry-After`` when it sent one, else the jittered backoff."""
    hint = error.retry_after if isinstance(error, APIError) else None
    if hint is not None:
        return min(hint, MAX_RETRY_AFTER)
    return backoff(attempt)
