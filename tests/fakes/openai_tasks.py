"""A fake OpenAI-compatible upstream with the asynchronous task contract (an imagegate peer).

``POST /v1/images/generations`` answers a task object ``{created, id, task_id, poll_url,
status: "pending", data: [placeholders]}`` when asked with ``Prefer: respond-async`` (or
``"async": true``), else the plain OpenAI images answer. ``GET /v1/tasks/{id}`` (and
``/v1/images/generations/{id}``) walks ``pending`` -> ``processing`` -> ``completed`` or
``failed``; ``DELETE /v1/tasks/{id}`` cancels. ``Idempotency-Key`` returns the same task for
the same body and 409 ``idempotency_key_reused`` for another. Unknown ids answer the
contract's exact ``async_task_not_found`` 404.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.common import FakeVendor, file_response, image_bytes, media_type
from tests.fakes.openai_images import openai_error

NOT_FOUND = "Task not found or no longer available."


@dataclass
class Task:
    id: str
    body: dict[str, Any]
    created: int
    status: str = "pending"
    polls: int = 0
    data: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    error_code: str | None = None
    cancelled: bool = False


@dataclass
class TasksState(FakeVendor):
    honours_async: bool = True  # False: behaves like a plain OpenAI-compatible server
    tasks: dict[str, Task] = field(default_factory=dict)
    idempotency: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (body, id)

    def app(self) -> Starlette:
        return create_app(self)


def _error(status: int, message: str) -> Response:
    if status == 429:
        return openai_error(429, message, type_="rate_limit_exceeded", code="rate_limit_exceeded")
    return openai_error(status, message, type_="upstream_error", code="upstream_error")


def _not_found() -> JSONResponse:
    return openai_error(404, NOT_FOUND, code="async_task_not_found")


def _images(body: dict[str, Any], request: Request, state: TasksState) -> list[dict[str, Any]]:
    width, height = map(int, str(body.get("size") or "1024x1024").split("x"))
    fmt = body.get("output_format", "png")
    data = []
    for index in range(int(body.get("n", 1))):
        raw = image_bytes(width, height, fmt, seed=f"{body['prompt']}#{index}")
        name = state.files.put(raw, media_type(fmt), suffix=fmt)
        url = str(request.url_for("file", name=name))
        data.append({"url": url, "revised_prompt": body["prompt"]})
    return data


def _render(task: Task) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "created": task.created,
        "updated": int(time.time()),
        "id": task.id,
        "task_id": task.id,
        "poll_url": f"/v1/tasks/{task.id}",
        "model": task.body.get("model"),
        "status": task.status,
    }
    if task.status == "failed":
        answer |= {"data": [], "error": task.error, "error_code": task.error_code}
        if task.cancelled:
            answer["cancelled"] = True
    elif task.status == "completed":
        answer["data"] = task.data
    else:
        placeholder = {"url": "", "revised_prompt": task.body.get("prompt")}
        answer["data"] = [placeholder] * int(task.body.get("n", 1))
    if task.status == "pending":
        answer["queue_position"] = 1
    if task.status == "processing":
        answer["progress"] = 50
    return answer


def _advance(task: Task, request: Request, state: TasksState) -> None:
    """One poll's worth of progress: pending, then processing, then the outcome."""
    task.polls += 1
    if task.status not in ("pending", "processing") or state.hold:
        return
    if task.polls <= state.polls_to_finish:
        task.status = "pending" if task.polls == 1 else "processing"
        return
    prompt = task.body["prompt"]
    if state.has_word(prompt, state.unsafe_words):
        task.status, task.error_code = "failed", "content_policy_violation"
        task.error = "The generated image was blocked by the safety system."
    elif state.has_word(prompt, state.failing_words):
        task.status, task.error_code = "failed", "upstream_error"
        task.error = "All providers failed to generate the image."
    else:
        task.status, task.data = "completed", _images(task.body, request, state)


class _Routes:
    """The fake's handlers, bound to one state object."""

    def __init__(self, state: TasksState) -> None:
        self.state = state

    def authorised(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {self.state.api_key}"

    async def create(self, request: Request) -> Response:
        state = self.state
        state.create_calls += 1
        state.record(request)
        if not self.authorised(request):
            return openai_error(401, "Invalid API key.", code="invalid_api_key")
        if (faulted := await state.scripted(state.faults, _error)) is not None:
            return faulted
        raw = (await request.body()).decode()
        body = json.loads(raw)
        prefer_async = "respond-async" in request.headers.get("prefer", "")
        wants_task = (body.pop("async", False) or prefer_async) and state.honours_async
        if state.has_word(body.get("prompt", ""), state.blocked_words):
            message = "Your request was rejected by the safety system."
            return openai_error(400, message, code="content_policy_violation")
        key = request.headers.get("idempotency-key")
        if key and key in state.idempotency:
            return self.replay(key, raw)
        state.submissions += 1
        if not wants_task:
            data = _images(body, request, state)
            return JSONResponse({"created": int(time.time()), "data": data})
        task = Task(id=f"task_{secrets.token_urlsafe(16)}", body=body, created=int(time.time()))
        state.tasks[task.id] = task
        if key:
            state.idempotency[key] = (raw, task.id)
        return JSONResponse(_render(task))

    def replay(self, key: str, raw: str) -> Response:
        previous_body, task_id = self.state.idempotency[key]
        if previous_body != raw:
            return openai_error(409, "Key reused.", code="idempotency_key_reused")
        return JSONResponse(_render(self.state.tasks[task_id]))

    async def status(self, request: Request) -> Response:
        state = self.state
        state.polls += 1
        state.record(request)
        if (faulted := await state.scripted(state.poll_faults, _error)) is not None:
            return faulted
        task = state.tasks.get(request.path_params["task_id"])
        if task is None or not self.authorised(request):
            return _not_found()
        _advance(task, request, state)
        return JSONResponse(_render(task), headers={"Retry-After": "3"})

    async def cancel(self, request: Request) -> Response:
        self.state.cancels += 1
        task = self.state.tasks.get(request.path_params["task_id"])
        if task is None or not self.authorised(request):
            return _not_found()
        if task.status not in ("pending", "processing"):
            message = "The task can no longer be cancelled."
            return openai_error(409, message, code="task_not_cancellable")
        task.status, task.cancelled = "failed", True
        task.error, task.error_code = "Cancelled by the client.", "cancelled"
        return JSONResponse(_render(task))

    async def file(self, request: Request) -> Response:
        gone = openai_error(404, "Not found.", code="not_found")
        return file_response(self.state.files, request.path_params["name"], gone)


def create_app(state: TasksState) -> Starlette:
    routes = _Routes(state)
    return Starlette(
        routes=[
            Route("/v1/images/generations", routes.create, methods=["POST"]),
            Route("/v1/tasks/{task_id}", routes.status, methods=["GET"]),
            Route("/v1/images/generations/{task_id}", routes.status, methods=["GET"]),
            Route("/v1/tasks/{task_id}", routes.cancel, methods=["DELETE"]),
            Route("/files/{name}", routes.file, name="file"),
        ]
    )
