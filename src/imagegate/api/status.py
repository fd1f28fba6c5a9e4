"""The status answer (CONTRACT §3): one task as JSON, with its caching headers.

The hot path of every client. ``GET`` is served by ``status_routes`` through the lean layer
ahead of FastAPI's routing; FastAPI's own routes (``routes/tasks.py``) document the paths
and give the same ``answer`` where the lean layer defers to routing. No pydantic: a cached
key lookup, one indexed read (none for a finished task, see ``TaskService.get``) and one
``json.dumps``. A finished task is an immutable snapshot that answers ``If-None-Match``
with 304."""

from __future__ import annotations

import json
from dataclasses import dataclass

from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from imagegate.api.deps import urls_for
from imagegate.api.errors import api_error_response, internal_error
from imagegate.api.lean import Handler
from imagegate.api.render import URLMaker, etag, task_body
from imagegate.engine.models import Task
from imagegate.errors import APIError
from imagegate.runtime import Runtime

# The three paths of one task, most specific first (FastAPI matched them in this order too).
STATUS_PREFIXES = ("/v1/tasks/", "/v1/images/generations/", "/v1/images/")

_JSON = (b"content-type", b"application/json")
_LIVE = (b"cache-control", b"no-store")
_FINISHED = (b"cache-control", b"private, max-age=0")


@dataclass(frozen=True)
class Answer:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


async def answer(rt: Runtime, request: Request, task_id: str) -> Answer:
    """Authenticate, read and render; an ``APIError`` is for the caller to send as such."""
    headers = request.headers
    key_id = await rt.keys.authenticate(headers.get("authorization"))
    task = await rt.service.get(key_id, task_id)
    urls = urls_for(rt, request)
    if not task.terminal:
        body = json.dumps(task_body(task, urls)).encode()
        retry_after = (b"retry-after", str(rt.settings.poll_after).encode())
        return Answer(200, [_LIVE, retry_after, _length(body), _JSON], body)
    expires = urls.expires_at()
    key = (task.id, task.updated_at, expires, urls)
    done = _SNAPSHOTS.get(key)
    if done is None:
        if len(_SNAPSHOTS) >= _SNAPSHOTS_MAX:
            _SNAPSHOTS.clear()
        done = _SNAPSHOTS[key] = _snapshot(task, urls, expires)
    tag, full = done
    if headers.get("if-none-match") == tag:
        return Answer(304, full.headers[:2], b"")
    return full


# A finished task renders the same bytes until its URLs' expiry moves on (once a minute), so
# its answer is kept: polls of finished tasks skip signing, json.dumps and the ETag.
_SNAPSHOTS: dict[tuple[str, float, int, URLMaker], tuple[str, Answer]] = {}
_SNAPSHOTS_MAX = 4096


def _snapshot(task: Task, urls: URLMaker, expires: int) -> tuple[str, Answer]:
    tag = etag(task, expires)
    body = json.dumps(task_body(task, urls, expires)).encode()
    headers = [(b"etag", tag.encode()), _FINISHED, _length(body), _JSON]
    return tag, Answer(200, headers, body)


def _length(body: bytes) -> tuple[bytes, bytes]:
    return (b"content-length", str(len(body)).encode())


def status_routes(rt: Runtime) -> list[tuple[str, Handler]]:
    """The lean layer's routes for ``GET`` of a task under each of its three paths."""

    async def handle(scope: Scope, task_id: str, receive: Receive, send: Send) -> None:
        try:
            result = await answer(rt, Request(scope), task_id)
        except APIError as exc:
            await api_error_response(exc)(scope, receive, send)
            return
        except Exception as exc:
            await internal_error(exc)(scope, receive, send)
            return
        start = {"type": "http.response.start", "status": result.status}
        await send({**start, "headers": result.headers})
        await send({"type": "http.response.body", "body": result.body})

    return [(prefix, handle) for prefix in STATUS_PREFIXES]
