"""Everything the SDK raises, and the one table that maps an HTTP status to its class.

    ImagegateClientError
    ├── APIConnectionError           no HTTP answer at all (refused, reset, DNS)
    │   └── APITimeoutError          the request timed out
    ├── APIError                     the gateway answered with an error envelope
    │   ├── BadRequestError          400 (invalid_value, unknown_parameter, model_not_found, ...)
    │   ├── AuthenticationError      401 invalid_api_key
    │   ├── PermissionDeniedError    403
    │   ├── NotFoundError            404
    │   │   └── TaskNotFound         404 async_task_not_found (unknown, expired or not yours)
    │   ├── ConflictError            409 task_not_cancellable, idempotency_key_reused
    │   ├── PayloadTooLargeError     413
    │   ├── UnprocessableEntityError 422
    │   ├── RateLimitError           429 (``retry_after`` from the answer)
    │   ├── InternalServerError      5xx
    │   └── APIResponseValidationError  a 2xx answer that is not the contract's shape
    └── TaskError                    a task reached an outcome the caller did not want
        ├── TaskFailed               the task ended ``failed`` (``error``, ``error_code``, ``task``)
        └── TaskTimeout              ``wait`` gave up; ``task_id``/``poll_url`` let you resume

Transport errors from httpx are translated into ``APIConnectionError`` with ``raise ... from``;
callers never need to import httpx to handle a failure.
"""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from imagegate.client.types import Task


class ImagegateClientError(Exception):
    """Base of every error the SDK raises."""


class APIConnectionError(ImagegateClientError):
    """The request got no HTTP answer; safe to retry later."""

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url


class APITimeoutError(APIConnectionError):
    """The request timed out before an answer arrived."""


class APIError(ImagegateClientError):
    """An error answer in the contract's envelope; ``request_id`` is what to quote in a report."""

    def __init__(self, response: httpx.Response, envelope: dict[str, Any]) -> None:
        self.response = response
        self.status_code = response.status_code
        self.request_id: str | None = response.headers.get("x-request-id")
        self.message = str(envelope.get("message") or response.reason_phrase or "error")
        self.type: str | None = _text(envelope.get("type"))
        self.code: str | None = _text(envelope.get("code"))
        self.param: str | None = _text(envelope.get("param"))
        self.retryable: bool | None = _flag(envelope.get("retryable"))
        self.retry_after: float | None = retry_after_seconds(response.headers)
        if self.retry_after is None:
            self.retry_after = _number(envelope.get("retry_after"))
        self.validation_errors: list[dict[str, Any]] = _validation_errors(response)
        super().__init__(str(self))

    def __str__(self) -> str:
        code = f" {self.code}" if self.code else ""
        rid = f" (request id {self.request_id})" if self.request_id else ""
        return f"HTTP {self.status_code}{code}: {self.message}{rid}"


class BadRequestError(APIError):
    pass


class AuthenticationError(APIError):
    pass


class PermissionDeniedError(APIError):
    pass


class NotFoundError(APIError):
    pass


class TaskNotFound(NotFoundError):
    """The gateway does not reveal whether the id ever existed: unknown, expired or not yours."""


class ConflictError(APIError):
    pass


class PayloadTooLargeError(APIError):
    pass


class UnprocessableEntityError(APIError):
    pass


class RateLimitError(APIError):
    """429; ``retry_after`` is the gateway's hint in seconds, when it gave one."""


class InternalServerError(APIError):
    pass


class APIResponseValidationError(APIError):
    """A success answer whose body is not what the contract promises (a proxy page, ...)."""


class TaskError(ImagegateClientError):
    """A task did not end the way ``wait`` promises to return."""


class TaskFailed(TaskError):
    """The task ended ``failed``; ``error_code`` is machine-readable (``cancelled``, ...)."""

    def __init__(self, task: Task) -> None:
        self.task = task
        self.task_id = task.id
        self.error = task.error or "the task failed"
        self.error_code = task.error_code
        code = f" ({self.error_code})" if self.error_code else ""
        super().__init__(f"task {task.id} failed: {self.error}{code}")


class TaskTimeout(TaskError):
    """``wait`` hit its deadline; the task may still finish: wait again with ``poll_url``."""

    def __init__(self, task_id: str, poll_url: str, timeout: float, task: Task | None) -> None:
        self.task_id = task_id
        self.poll_url = poll_url
        self.timeout = timeout
        self.task = task
        status = f" (last status: {task.status})" if task is not None else ""
        super().__init__(f"task {task_id} did not finish within {timeout:g}s{status}")


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}
_BY_CODE: dict[str, type[APIError]] = {"async_task_not_found": TaskNotFound}


def error_envelope(response: httpx.Response) -> dict[str, Any]:
    """The ``error`` object of an answer, or ``{}`` when the body is not the contract's shape."""
    try:
        body = response.json()
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return error
    return {"message": error} if isinstance(error, str) else {}


def error_for_response(response: httpx.Response) -> APIError:
    """The exception for an error answer: by code where one is more precise, else by status."""
    envelope = error_envelope(response)
    code = _text(envelope.get("code"))
    cls = _BY_CODE.get(code or "") or _BY_STATUS.get(response.status_code)
    if cls is None:
        cls = InternalServerError if response.status_code >= 500 else APIError
    return cls(response, envelope)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _flag(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def retry_after_seconds(headers: httpx.Headers, now: float | None = None) -> float | None:
    """The wait a ``Retry-After`` (seconds or HTTP date) or ``retry-after-ms`` header asks for."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(float(millis) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(when.timestamp() - current, 0.0)


def _validation_errors(response: httpx.Response) -> list[dict[str, Any]]:
    try:
        body = response.json()
    except ValueError:
        return []
    found = body.get("validation_errors") if isinstance(body, dict) else None
    return [item for item in found if isinstance(item, dict)] if isinstance(found, list) else []
