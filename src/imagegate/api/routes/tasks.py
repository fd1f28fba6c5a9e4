"""Task routes: status under three paths (one handler), list, cancel (CONTRACT §3, §3b, §4).

``GET`` of a task is answered by ``api/status.py`` ahead of FastAPI's routing (the hot path of
every client). The status routes declared here document it, and answer with the same
``status.answer`` where the lean layer defers to routing (an app served under a root path).
"""

from __future__ import annotations

import base64
import binascii
import json

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from imagegate.api import deps, status
from imagegate.api.render import task_body
from imagegate.api.schemas import TaskList, TaskObject, errors
from imagegate.engine.states import TaskStatus
from imagegate.errors import InvalidRequest

router = APIRouter()

_STATUS_DOC = {
    "response_model": TaskObject,
    "responses": {**errors(401, 404, 503), 304: {"description": "Not modified (terminal task)"}},
}


async def _status(request: Request, task_id: str) -> Response:
    result = await status.answer(deps.runtime(request), request, task_id)
    response = Response(status_code=result.status)
    response.body = result.body
    response.raw_headers = list(result.headers)
    return response


@router.get("/v1/tasks/{task_id:path}", summary="Get a task", **_STATUS_DOC)  # type: ignore[arg-type]
async def get_task(request: Request, task_id: str) -> Response:
    return await _status(request, task_id)


@router.get(
    "/v1/images/generations/{task_id:path}",
    summary="Get an image task (same as /v1/tasks/{id})",
    **_STATUS_DOC,  # type: ignore[arg-type]
)
async def get_image_generation(request: Request, task_id: str) -> Response:
    return await _status(request, task_id)


@router.get(
    "/v1/images/{task_id:path}",
    summary="Get an image task (same as /v1/tasks/{id})",
    **_STATUS_DOC,  # type: ignore[arg-type]
)
async def get_image(request: Request, task_id: str) -> Response:
    return await _status(request, task_id)


def encode_cursor(created_at: float, task_id: str) -> str:
    return base64.urlsafe_b64encode(f"{created_at!r}|{task_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, _, task_id = raw.partition("|")
        return float(created), task_id
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidRequest("'after' is not a cursor this server issued.", param="after") from exc


@router.get(
    "/v1/tasks",
    summary="List the calling key's tasks, newest first",
    response_model=TaskList,
    responses=errors(400, 401, 503),
)
async def list_tasks(
    request: Request,
    key_id: str = Depends(deps.key_id),
    limit: int = Query(default=20, ge=1, le=100),
    after: str | None = Query(default=None, max_length=200),
    status: TaskStatus | None = Query(default=None),
) -> Response:
    rt = deps.runtime(request)
    before = decode_cursor(after) if after else None
    tasks = await rt.service.list(key_id, limit=limit + 1, before=before, status=status)
    page, more = tasks[:limit], len(tasks) > limit
    urls = deps.url_maker(request)
    body = {
        "object": "list",
        "data": [task_body(t, urls) for t in page],
        "has_more": more,
        "next_cursor": encode_cursor(page[-1].created_at, page[-1].id) if more else None,
    }
    return Response(json.dumps(body), media_type="application/json")


@router.delete(
    "/v1/tasks/{task_id:path}",
    summary="Cancel a task",
    response_model=TaskObject,
    responses=errors(401, 404, 409, 503),
)
async def cancel_task(
    request: Request, task_id: str, key_id: str = Depends(deps.key_id)
) -> Response:
    rt = deps.runtime(request)
    task = await rt.service.cancel(key_id, task_id)
    body = task_body(task, deps.url_maker(request))
    return Response(json.dumps(body), media_type="application/json")
