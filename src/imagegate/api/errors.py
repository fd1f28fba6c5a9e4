"""The contract's error envelope, for our errors and for the framework's own (404, 405, 422, 500).

No response leaves the server in another shape: not Starlette's ``{"detail": ...}``, not an
HTML page, not a stack trace.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from imagegate.errors import APIError

log = logging.getLogger("imagegate.api")

_HTTP_CODES = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "not_found"),
    405: ("invalid_request_error", "method_not_allowed"),
    413: ("invalid_request_error", "payload_too_large"),
    415: ("invalid_request_error", "unsupported_media_type"),
}


def envelope(
    status: int,
    message: str,
    *,
    type_: str,
    code: str | None,
    param: str | None = None,
    retry_after: int | None = None,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    error: dict[str, Any] = {"message": message, "type": type_, "code": code, "param": param}
    if retry_after is not None:
        error["retry_after"] = retry_after
    body: dict[str, Any] = {"error": error, **(extra or {})}
    all_headers = dict(headers or {})
    if retry_after is not None:
        all_headers["Retry-After"] = str(retry_after)
    return Response(
        json.dumps(body), status_code=status, media_type="application/json", headers=all_headers
    )


def api_error_response(exc: APIError) -> Response:
    extra: dict[str, Any] = {}
    if exc.field_errors:
        extra["validation_errors"] = [
            {"field": e.field, "message": e.message} for e in exc.field_errors
        ]
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return envelope(
        exc.status,
        exc.message,
        type_=exc.type,
        code=exc.code,
        param=exc.param,
        retry_after=exc.retry_after,
        extra=extra,
        headers=headers,
    )


async def _api_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, APIError)
    return api_error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    type_, code = _HTTP_CODES.get(exc.status_code, ("invalid_request_error", None))
    if exc.status_code == 404:
        message = f"Unknown route: {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"Method {request.method} is not allowed on {request.url.path}"
    else:
        message = str(exc.detail)
    headers = dict(exc.headers) if exc.headers else None
    return envelope(exc.status_code, message, type_=type_, code=code, headers=headers)


async def _validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = [
        {
            "field": ".".join(str(p) for p in err["loc"][1:]) or str(err["loc"][0]),
            "message": err["msg"],
        }
        for err in exc.errors()
    ]
    first = problems[0] if problems else {"field": None, "message": "Invalid request"}
    return envelope(
        400,
        f"Invalid value for '{first['field']}': {first['message']}",
        type_="invalid_request_error",
        code="invalid_value",
        param=first["field"],
        extra={"validation_errors": problems},
    )


async def _unexpected(_: Request, exc: Exception) -> Response:
    return internal_error(exc)


def internal_error(exc: Exception) -> Response:
    """A 500 in the envelope, the error logged with its traceback (never sent to the client)."""
    log.exception("unhandled error", exc_info=exc)
    return envelope(
        500,
        "The server had an error while processing your request.",
        type_="server_error",
        code="internal_error",
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(APIError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
