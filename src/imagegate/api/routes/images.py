"""``POST /v1/images/generations``: synchronous and asynchronous creation (CONTRACT §2)."""

from __future__ import annotations

import base64
import json
import re
import time
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response
from starlette.types import Receive, Scope

from imagegate.api import deps
from imagegate.api.errors import envelope
from imagegate.api.lean import Route, lean
from imagegate.api.render import URLMaker, task_body
from imagegate.api.schemas import ImageGenerationRequest, ImagesResponse, TaskObject, errors
from imagegate.engine.service import SyncResult
from imagegate.engine.states import TaskStatus
from imagegate.engine.validation import validate_create
from imagegate.errors import APIError, InvalidRequest
from imagegate.runtime import Runtime

router = APIRouter()

_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
# How a failed synchronous task is answered: (HTTP status, error type).
_SYNC_FAILURE = {
    "content_policy_violation": (400, "invalid_request_error"),
    "timeout": (504, "timeout_error"),
    "cancelled": (409, "invalid_request_error"),
}


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status, headers, media_type="application/json")


def _decode_body(raw: bytes, content_type: str) -> dict[str, Any]:
    if content_type.split(";")[0].strip().lower() not in ("application/json", ""):
        raise UnsupportedMediaType("Content-Type must be application/json.")
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidRequest(
            f"The request body is not valid JSON: {exc}", code="invalid_json"
        ) from exc
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_json")
    return body


class UnsupportedMediaType(APIError):
    status = 415
    type = "invalid_request_error"
    code = "unsupported_media_type"


def _idempotency_key(request: Request) -> str | None:
    value = request.headers.get("idempotency-key")
    if value is None:
        return None
    if not _IDEMPOTENCY_KEY.match(value):
        raise InvalidRequest(
            "Idempotency-Key must be 1-255 printable ASCII characters.", param="Idempotency-Key"
        )
    return value


def _prefers_async(request: Request) -> bool:
    prefer = request.headers.get("prefer", "")
    return any(p.strip().lower() == "respond-async" for p in prefer.split(","))


@router.post(
    "/v1/images/generations",
    summary="Create images (synchronously, or as a task to poll)",
    response_model=ImagesResponse | TaskObject,
    responses=errors(400, 401, 409, 413, 415, 429, 502, 503, 504),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": ImageGenerationRequest.model_json_schema()}},
        }
    },
)
async def create_image(request: Request, key_id: str = Depends(deps.key_id)) -> Response:
    """Documents the route; requests reach ``create_routes`` first, ahead of FastAPI's routing
    (this answers where that layer defers, under a root path)."""
    return await create_answer(deps.runtime(request), request, key_id)


def create_routes(rt: Runtime) -> list[Route]:
    """The lean layer's route for ``POST /v1/images/generations``."""

    async def respond(scope: Scope, _: str, receive: Receive) -> Response:
        request = Request(scope, receive)
        key_id = await rt.keys.authenticate(request.headers.get("authorization"))
        return await create_answer(rt, request, key_id)

    return [("POST", "/v1/images/generations", lean(respond))]


async def create_answer(rt: Runtime, request: Request, key_id: str) -> Response:
    """Create images for ``key_id``: the images when they are ready within the sync limit,
    else (or when asked to be asynchronous) the task object to poll."""
    body = _decode_body(await request.body(), request.headers.get("content-type", ""))
    create = validate_create(body, rt.catalog, prefer_async=_prefers_async(request))
    idempotency_key = _idempotency_key(request)
    urls = deps.urls_for(rt, request)
    if create.wants_async:
        task = await rt.service.create(key_id, create, body=body, idempotency_key=idempotency_key)
        return _json(task_body(task, urls))
    result = await rt.service.run(
        key_id,
        create,
        body=body,
        idempotency_key=idempotency_key,
        within_s=rt.settings.sync_timeout,
    )
    return await _sync_answer(rt, result, urls)


async def _sync_answer(rt: Runtime, result: SyncResult, urls: URLMaker) -> Response:
    """The OpenAI images shape when done; the task object when the sync limit passed."""
    task = result.task
    if task.status is TaskStatus.COMPLETED:
        return _json(await _images_body(rt, result, urls))
    if task.status is TaskStatus.FAILED:
        code = task.error_code or "upstream_error"
        status, type_ = _SYNC_FAILURE.get(code, (502, "upstream_error"))
        return envelope(
            status,
            task.error or "Image generation failed.",
            type_=type_,
            code=code,
            extra={"task_id": task.id},
        )
    headers = {"Retry-After": str(rt.settings.poll_after), "Cache-Control": "no-store"}
    return _json(task_body(task, urls), headers=headers)


async def _images_body(rt: Runtime, result: SyncResult, urls: URLMaker) -> dict[str, Any]:
    task = result.task
    data: list[dict[str, Any]] = []
    expires = urls.expires_at()
    for image in task.images:
        if task.request.response_format == "b64_json":
            raw = result.blobs.get(image.key) or await rt.storage.get(image.key)
            item = {"b64_json": base64.b64encode(raw).decode()}
        else:
            item = {"url": urls.url(image.key, expires)}
        item["revised_prompt"] = image.revised_prompt or task.request.prompt
        data.append(item)
    return {"created": int(task.created_at or time.time()), "data": data}
