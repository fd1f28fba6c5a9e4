"""The status answer (CONTRACT §3): one task as JSON, with its caching headers.

The hot path of every client. ``GET`` is served by ``status_routes`` through the lean layer
ahead of FastAPI's routing; FastAPI's own routes (``routes/tasks.py``) document the paths
and give the same ``answer`` where the lean layer defers to routing. No pydantic: a cached
key lookup, one indexed read (none for a finished task, see ``TaskService.get``, nor for a
live task that cannot have changed since, see ``store.live``) and, only when the task
changed since its last poll, one ``json.dumps``. A finished task is an immutable snapshot
that answers ``If-None-Match`` with 304."""

from __future__ import annotations

import json
from dataclasses import dataclass

from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from imagegate.api.deps import urls_for
from imagegate.api.lean import Route, lean
from imagegate.api.render import URLMaker, etag, task_body
from imagegate.engine.models import Task
from imagegate.runtime import Runtime

# The three paths of one task, most specific first (FastAPI matched them in this order too).
STATUS_PREFIXES = ("/v1/tasks/", "/v1/images/generations/", "/v1/images/")

_JSON = (b"content-type", b"application/json")
_LIVE = (b"cache-control", b"no-store")
_FINISHED = (b"cache-control", b"private, max-age=0")


@dataclass(frozen=True)
class Answer:
    """A rendered response, sent as it is (an ASGI app)."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = {"type": "http.response.start", "status": self.status}
        await send({**start, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})


async def answer(rt: Runtime, request: Request, task_id: str) -> Answer:
    """Authenticate, read and render; an ``APIError`` is for the caller to send as such."""
    authorization, if_none_match = _read_headers(request.scope)
    key_id = await rt.keys.authenticate(authorization)
    task = await rt.service.get(key_id, task_id, recent=True)
    urls = urls_for(rt, request)
    expires = urls.expires_at() if task.terminal else 0
    done = _RENDERED.get(task.id)
    if done is None or done.task is not task or done.expires != expires or done.urls is not urls:
        if len(_RENDERED) >= _RENDERED_MAX:
            _RENDERED.clear()
        done = _RENDERED[task.id] = _render(task, urls, expires, rt.settings.poll_after)
    if done.tag is not None and if_none_match == done.tag:
        return Answer(304, done.answer.headers[:2], b"")
    return done.answer


@dataclass(frozen=True)
class _Rendered:
    """One task's answer, valid while the store hands back the very same ``Task`` (it reads an
    unchanged row as the same object) and, for a finished task, its URLs' expiry stays."""

    task: Task
    urls: URLMaker
    expires: int  # 0 for a live task (no URLs)
    tag: str | None  # the ETag of a finished task
    answer: Answer


# Polls of one task mostly find it unchanged, so its rendered answer is kept: a poll then
# skips building the body, json.dumps and, for a finished task, signing and the ETag.
_RENDERED: dict[str, _Rendered] = {}
_RENDERED_MAX = 4096


def _render(task: Task, urls: URLMaker, expires: int, poll_after: int) -> _Rendered:
    if not task.terminal:
        body = json.dumps(task_body(task, urls)).encode()
        retry_after = (b"retry-after", str(poll_after).encode())
        live = Answer(200, [_LIVE, retry_after, _length(body), _JSON], body)
        return _Rendered(task, urls, expires, None, live)
    tag = etag(task, expires)
    body = json.dumps(task_body(task, urls, expires)).encode()
    headers = [(b"etag", tag.encode()), _FINISHED, _length(body), _JSON]
    return _Rendered(task, urls, expires, tag, Answer(200, headers, body))


def _read_headers(scope: Scope) -> tuple[str | None, str | None]:
    """``Authorization`` and ``If-None-Match`` in one pass over the raw headers."""
    authorization = if_none_match = None
    for name, value in scope["headers"]:
        if name == b"authorization" and authorization is None:
            authorization = value.decode("latin-1")
        elif name == b"if-none-match" and if_none_match is None:
            if_none_match = value.decode("latin-1")
    return authorization, if_none_match


def _length(body: bytes) -> tuple[bytes, bytes]:
    return (b"content-length", str(len(body)).encode())


def status_routes(rt: Runtime) -> list[Route]:
    """The lean layer's routes for ``GET`` of a task under each of its three paths."""

    async def respond(scope: Scope, task_id: str, _: Receive) -> Answer:
        return await answer(rt, Request(scope), task_id)

    handle = lean(respond)
    return [("GET", prefix, handle) for prefix in STATUS_PREFIXES]
