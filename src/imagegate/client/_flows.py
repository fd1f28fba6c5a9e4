"""The SDK's logic without I/O: every call is a generator of steps that a client drives.

A flow yields ``Send`` (perform this HTTP request, send me back the response or the transport
error) and ``Sleep`` (pause this long); it returns the call's result or raises the SDK's error.
``Client`` drives flows with blocking I/O and ``AsyncClient`` with ``await``, so retries,
backoff, polling, deadlines and parsing exist once and are unit-tested without a network.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypeVar
from urllib.parse import quote

import httpx

from imagegate.client._retry import Outcome, is_transient, retry_delay
from imagegate.client.exceptions import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APITimeoutError,
    TaskFailed,
    TaskTimeout,
    error_for_response,
    retry_after_seconds,
)
from imagegate.client.types import Task

T = TypeVar("T")

# The seeds' recommendation (3-5 s), used when neither the caller nor the gateway chose.
DEFAULT_POLL_INTERVAL = 3.0


@dataclass(frozen=True, slots=True)
class Send:
    """Perform one HTTP request; the driver answers with ``httpx.Response | TransportError``."""

    method: str
    url: str
    timeout: httpx.Timeout
    headers: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str | int] | None = None
    json: Any = None

    def build(self, http: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        """The request, through the caller's client so its own defaults and hooks apply."""
        return http.build_request(
            self.method,
            self.url,
            json=self.json,
            params=self.params,
            headers=self.headers,
            timeout=self.timeout,
        )


@dataclass(frozen=True, slots=True)
class Sleep:
    """Pause; the driver answers with ``None``."""

    seconds: float


Step = Send | Sleep
Flow = Generator[Step, Outcome | None, T]


def exchange(step: Send) -> Flow[Outcome]:
    outcome = yield step
    assert outcome is not None, "a driver answers every Send"
    return outcome


def request(step: Send, max_retries: int) -> Flow[httpx.Response]:
    """Send until a success, a final error, or ``max_retries`` retries are spent."""
    attempt = 0
    while True:
        outcome = yield from exchange(step)
        if isinstance(outcome, httpx.Response) and not outcome.is_error:
            return outcome
        failure = failure_of(outcome)
        if attempt >= max_retries or not is_transient(failure):
            raise_failure(failure, step.url)
        yield Sleep(retry_delay(failure, attempt))
        attempt += 1


def failure_of(outcome: Outcome) -> APIError | httpx.TransportError:
    if isinstance(outcome, httpx.TransportError):
        return outcome
    return error_for_response(outcome)


def raise_failure(failure: APIError | httpx.TransportError, url: str) -> NoReturn:
    """Raise the SDK's own error; an httpx error only ever appears as ``__cause__``."""
    if isinstance(failure, httpx.TimeoutException):
        raise APITimeoutError(f"request to {url} timed out", url=url) from failure
    if isinstance(failure, httpx.TransportError):
        raise APIConnectionError(f"cannot reach {url}: {failure}", url=url) from failure
    raise failure


def parse(reader: Callable[[Any], T], response: httpx.Response) -> T:
    """The body read by ``reader``; a body of another shape is the gateway's fault, said plainly.

    pydantic's ``ValidationError`` is a ``ValueError``, like a JSON decoding error.
    """
    try:
        return reader(response.json())
    except ValueError as exc:
        envelope = {"message": f"unexpected answer from {response.request.url}: {exc}"}
        raise APIResponseValidationError(response, envelope) from exc


def task_path(task_id: str) -> str:
    return f"/v1/tasks/{quote(task_id, safe='')}"


@dataclass(frozen=True, slots=True)
class Waiting:
    """What ``tasks.wait`` polls and for how long."""

    send: Send
    task_id: str
    poll_url: str
    interval: float | None
    timeout: float
    on_update: Callable[[Task], object] | None
    clock: Callable[[], float]


def wait(plan: Waiting, known: Task | None) -> Flow[Task]:
    """Poll until the task is terminal; transient failures back off until the deadline."""
    if known is not None and known.done:
        return finish(known)
    deadline = plan.clock() + plan.timeout
    failures = 0
    while True:
        outcome = yield from exchange(plan.send)
        polled, delay = read_poll(outcome, failures, plan)
        if polled is None:
            failures += 1
        else:
            failures, known = 0, polled
            if plan.on_update is not None:
                plan.on_update(polled)
            if polled.done:
                return finish(polled)
        remaining = deadline - plan.clock()
        if remaining <= 0:
            raise TaskTimeout(plan.task_id, plan.poll_url, plan.timeout, known)
        yield Sleep(min(delay, remaining))


def read_poll(outcome: Outcome, failures: int, plan: Waiting) -> tuple[Task | None, float]:
    """The polled task and the pause before the next poll, or ``None`` and a backoff delay."""
    if isinstance(outcome, httpx.Response) and not outcome.is_error:
        return parse(Task.model_validate, outcome), poll_interval(plan.interval, outcome)
    failure = failure_of(outcome)
    if not is_transient(failure):
        raise_failure(failure, plan.send.url)
    return None, retry_delay(failure, failures)


def poll_interval(chosen: float | None, response: httpx.Response) -> float:
    """The caller's interval wins (as in openai-python's polling helpers); else the gateway's."""
    if chosen is not None:
        return chosen
    hint = retry_after_seconds(response.headers)
    return DEFAULT_POLL_INTERVAL if hint is None else hint


def finish(task: Task) -> Task:
    if task.status == "completed":
        return task
    raise TaskFailed(task)
