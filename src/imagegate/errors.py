"""The gateway's exception tree, in one place.

    ImagegateError
    ├── APIError                     a client-facing error; carries the contract's envelope fields
    │   ├── InvalidRequest           400 (invalid_value, unknown_parameter, model_not_found)
    │   ├── AuthenticationFailed     401 invalid_api_key
    │   ├── NotFound                 404 not_found / model_not_found
    │   ├── TaskNotFound             404 async_task_not_found (never says whether the id exists)
    │   ├── Conflict                 409 task_not_cancellable / idempotency_key_reused
    │   ├── PayloadTooLarge          413 payload_too_large
    │   ├── RateLimited              429 rate_limit_exceeded
    │   └── StoreUnavailable         503 store_unavailable (the database cannot be reached)
    └── ProviderError                raised by provider adapters only; the worker decides what to do
        ├── ProviderRejected         the vendor refused this request; nothing runs upstream
        │   ├── ContentPolicyViolation   moderation: the task fails, no fallback
        │   └── ProviderAuthError        bad credentials: route unhealthy, fall back
        ├── ProviderUnavailable      transient, certainly nothing started (refused, 503): retry
        │   └── ProviderRateLimited      429, honours retry_after
        ├── ProviderAmbiguous        the request may have started a job (timeout after send,
        │                            502/504): never sent blindly to the same provider again
        └── JobFailed                an accepted job failed upstream, or its result is gone

Vendor exceptions (httpx, JSON decoding) are translated into this tree at the adapter boundary
with ``raise ... from exc``; nothing above the adapters sees a vendor's own error types.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class ImagegateError(Exception):
    """Base of every error the gateway raises on purpose."""


@dataclass(frozen=True)
class FieldError:
    """One problem with one request field, listed under ``validation_errors``."""

    field: str
    message: str


class APIError(ImagegateError):
    """An error answered to the client in the contract's envelope."""

    status: int = 500
    type: str = "server_error"
    code: str | None = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        retry_after: int | None = None,
        field_errors: list[FieldError] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.param = param
        self.retry_after = retry_after
        self.field_errors = field_errors or []


class InvalidRequest(APIError):
    status = 400
    type = "invalid_request_error"
    code = "invalid_value"


class AuthenticationFailed(APIError):
    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"


class NotFound(APIError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"


TASK_NOT_FOUND_MESSAGE = "Task not found or no longer available."


class TaskNotFound(APIError):
    """The one answer for unknown, malformed, expired and foreign task ids alike."""

    status = 404
    type = "invalid_request_error"
    code = "async_task_not_found"

    def __init__(self) -> None:
        super().__init__(TASK_NOT_FOUND_MESSAGE)


class Conflict(APIError):
    status = 409
    type = "invalid_request_error"
    code = "conflict"


class PayloadTooLarge(APIError):
    status = 413
    type = "invalid_request_error"
    code = "payload_too_large"


class RateLimited(APIError):
    status = 429
    type = "rate_limit_exceeded"
    code = "rate_limit_exceeded"


class StoreUnavailable(APIError):
    status = 503
    type = "service_unavailable"
    code = "store_unavailable"

    def __init__(self, message: str = "The task store is unavailable; retry shortly.") -> None:
        super().__init__(message, retry_after=2)


@dataclass
class ProviderError(ImagegateError):
    """A provider call did not produce images; the subclass says what may be done next."""

    message: str
    retry_after: float | None = None
    status: int | None = None
    error_code: str = field(default="upstream_error")

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class ProviderRejected(ProviderError):
    """The vendor refused the request outright; no job exists upstream, so fallback is safe."""


class ContentPolicyViolation(ProviderRejected):
    def __post_init__(self) -> None:
        self.error_code = "content_policy_violation"
        super().__post_init__()


class ProviderAuthError(ProviderRejected):
    """Bad or missing vendor credentials: the route is marked unhealthy."""


class ProviderUnavailable(ProviderError):
    """Transient failure that certainly started nothing upstream (refused connection, 503)."""


class ProviderRateLimited(ProviderUnavailable):
    """HTTP 429; ``retry_after`` carries the vendor's hint when it gave one."""


class ProviderAmbiguous(ProviderError):
    """The request reached the vendor but its outcome is unknown; it may have started a job."""


class JobFailed(ProviderError):
    """An upstream job that was accepted ended in failure, was cancelled, or lost its result."""
