"""The one table from an error answer to an exception class, and what the exception carries."""

from __future__ import annotations

import httpx
import pytest

from imagegate.client import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InternalServerError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitError,
    TaskNotFound,
)
from imagegate.client.exceptions import error_for_response, retry_after_seconds


def response(status: int, body: object = None, **headers: str) -> httpx.Response:
    request = httpx.Request("GET", "http://gateway.test/v1/tasks/x")
    if isinstance(body, str):
        return httpx.Response(status, text=body, headers=headers, request=request)
    return httpx.Response(status, json=body, headers=headers, request=request)


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (404, NotFoundError),
        (409, ConflictError),
        (413, PayloadTooLargeError),
        (429, RateLimitError),
        (500, InternalServerError),
        (502, InternalServerError),
        (503, InternalServerError),
        (504, InternalServerError),
        (418, APIError),
    ],
)
def test_status_maps_to_its_exception_class(status: int, cls: type[APIError]) -> None:
    assert type(error_for_response(response(status, {"error": {"message": "m"}}))) is cls


def test_async_task_not_found_is_a_task_not_found_and_a_not_found() -> None:
    body = {
        "error": {
            "message": "Task not found or no longer available.",
            "type": "invalid_request_error",
            "code": "async_task_not_found",
            "param": None,
        }
    }
    error = error_for_response(response(404, body))
    assert isinstance(error, TaskNotFound)
    assert isinstance(error, NotFoundError)
    assert error.message == "Task not found or no longer available."


def test_the_envelope_and_request_id_are_exposed() -> None:
    body = {
        "error": {
            "message": "n must be at most 4",
            "type": "invalid_request_error",
            "code": "invalid_value",
            "param": "n",
        },
        "validation_errors": [{"field": "n", "message": "at most 4"}],
    }
    error = error_for_response(response(400, body, **{"x-request-id": "req-1"}))
    assert (error.status_code, error.code, error.param, error.type) == (
        400,
        "invalid_value",
        "n",
        "invalid_request_error",
    )
    assert error.request_id == "req-1"
    assert error.validation_errors == [{"field": "n", "message": "at most 4"}]
    assert "req-1" in str(error)
    assert "invalid_value" in str(error)


def test_a_body_that_is_not_json_still_gives_a_useful_error() -> None:
    error = error_for_response(response(502, "<html>Bad Gateway</html>"))
    assert isinstance(error, InternalServerError)
    assert error.code is None
    assert error.message == "Bad Gateway"


def test_retry_after_accepts_seconds_milliseconds_and_http_dates() -> None:
    assert retry_after_seconds(httpx.Headers({"Retry-After": "3"})) == 3.0
    assert retry_after_seconds(httpx.Headers({"retry-after-ms": "1500"})) == 1.5
    date = httpx.Headers({"Retry-After": "Wed, 21 Oct 2015 07:28:10 GMT"})
    assert retry_after_seconds(date, now=1445412480.0) == 10.0
    assert retry_after_seconds(httpx.Headers({"Retry-After": "soon"})) is None
    assert retry_after_seconds(httpx.Headers()) is None
