"""A fake of the Black Forest Labs FLUX API, as documented.

``POST /v1/{model}`` with ``x-key`` answers ``{"id", "polling_url"}``; ``GET
/v1/get_result?id=`` answers ``{"id", "status", "result", "progress", "details"}`` with the
documented statuses (Pending, Ready, Error, Request Moderated, Content Moderated, Task not
found). ``result.sample`` is a signed delivery URL served here that answers 403 once expired
(``files.ttl_s``, ten minutes by default), after which the task itself is not found either.
HTTP errors use FastAPI's ``{"detail": ...}``: 403 bad key, 402 no credits, 404 unknown
endpoint, 422 invalid body, 429 too many active tasks.
"""

from __future__ import annotations

import json
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.common import FakeVendor, file_response, image_bytes, media_type

PIXEL_MODELS = frozenset({"flux-pro-1.1", "flux-pro", "flux-dev", "flux-2-pro", "flux-2-max"})
RATIO_MODELS = frozenset({"flux-pro-1.1-ultra", "flux-kontext-pro", "flux-kontext-max"})
EXPIRED_BLOB = (
    '<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthenticationFailed</Code>'
    "<Message>Signed expiry time has passed.</Message></Error>"
)


@dataclass
class Job:
    id: str
    model: str
    body: dict[str, Any]
    polls: int = 0
    status: str = "Pending"
    sample: str | None = None


@dataclass
class BFLState(FakeVendor):
    credits: int | None = None  # None: unlimited; 0 answers 402
    max_active: int = 24
    jobs: dict[str, Job] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)

    def active(self) -> int:
        return sum(job.status == "Pending" for job in self.jobs.values())

    def app(self) -> Starlette:
        return create_app(self)


def _detail(status: int, detail: Any) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def _invalid(body: dict[str, Any], model: str) -> JSONResponse | None:
    """FastAPI-style 422 for the body checks the real endpoints make."""
    problems = []
    if not isinstance(body.get("prompt"), str):
        problems.append({"loc": ["body", "prompt"], "msg": "Field required", "type": "missing"})
    for side in ("width", "height") if model in PIXEL_MODELS else ():
        value = body.get(side, 1024)
        if not isinstance(value, int) or value % 32 or not 256 <= value <= 1440:
            message = "Input should be a multiple of 32 between 256 and 1440"
            problems.append({"loc": ["body", side], "msg": message, "type": "value_error"})
    if body.get("output_format", "jpeg") not in ("jpeg", "png"):
        message = "Input should be 'jpeg' or 'png'"
        problems.append({"loc": ["body", "output_format"], "msg": message, "type": "enum"})
    return _detail(422, problems) if problems else None


def _size(job: Job) -> tuple[int, int]:
    if job.model in PIXEL_MODELS:
        return int(job.body.get("width", 1024)), int(job.body.get("height", 768))
    ratio_w, _, ratio_h = str(job.body.get("aspect_ratio", "16:9")).partition(":")
    return 512 * int(ratio_w) // int(ratio_h) // 32 * 32, 512


class _Routes:
    def __init__(self, state: BFLState) -> None:
        self.state = state

    async def refusal(self, request: Request, faults: deque[str]) -> Response | None:
        """The answer to a bad key or a scripted fault, else None."""
        self.state.record(request)
        if request.headers.get("x-key") != self.state.api_key:
            return _detail(403, "Not authenticated - Invalid Authentication")
        return await self.state.scripted(faults, _detail)

    async def submit(self, request: Request) -> Response:
        state = self.state
        state.create_calls += 1
        if (refused := await self.refusal(request, state.faults)) is not None:
            return refused
        model = request.path_params["model"]
        if model not in PIXEL_MODELS | RATIO_MODELS:
            return _detail(404, "Not Found")
        body = json.loads(await request.body())
        state.requests.append(body)
        if (invalid := _invalid(body, model)) is not None:
            return invalid
        if state.credits == 0:
            return _detail(402, "Insufficient credits. Add credits to continue.")
        if state.active() >= state.max_active:
            return _detail(429, f"You have reached the limit of {state.max_active} active tasks.")
        state.submissions += 1
        job = Job(id=secrets.token_hex(16), model=model, body=body)
        state.jobs[job.id] = job
        polling_url = str(request.url_for("get_result").include_query_params(id=job.id))
        return JSONResponse({"id": job.id, "polling_url": polling_url})

    def advance(self, job: Job, request: Request) -> None:
        state = self.state
        job.polls += 1
        if job.status != "Pending" or state.hold or job.polls <= state.polls_to_finish:
            return
        prompt = job.body["prompt"]
        if state.has_word(prompt, state.blocked_words):
            job.status = "Request Moderated"
        elif state.has_word(prompt, state.unsafe_words):
            job.status = "Content Moderated"
        elif state.has_word(prompt, state.failing_words):
            job.status = "Error"
        else:
            fmt = job.body.get("output_format", "jpeg")
            name = state.files.put(image_bytes(*_size(job), fmt, job.id), media_type(fmt), fmt)
            url = request.url_for("delivery", name=name)
            job.sample = str(url.include_query_params(se=int(time.time()) + 600, sig="fake"))
            job.status = "Ready"

    def render(self, job: Job) -> dict[str, Any]:
        answer: dict[str, Any] = {"id": job.id, "status": job.status, "result": None}
        answer |= {"progress": None, "details": None, "preview": None}
        if job.status == "Pending":
            answer["progress"] = min(0.99, job.polls / (self.state.polls_to_finish + 1))
        elif job.status == "Ready":
            answer["result"] = {"sample": job.sample, "prompt": job.body["prompt"]}
            answer["result"] |= {"seed": job.body.get("seed", 42), "duration": 1.5}
        elif job.status.endswith("Moderated"):
            answer["details"] = {"Moderation Reasons": ["Derivative Works"]}
        elif job.status == "Error":
            answer["details"] = {"error": "Generation failed on the worker."}
        return answer

    async def get_result(self, request: Request) -> Response:
        state = self.state
        state.polls += 1
        if (refused := await self.refusal(request, state.poll_faults)) is not None:
            return refused
        job_id = request.query_params.get("id", "")
        job = state.jobs.get(job_id)
        if job is None or self.result_expired(job):
            return JSONResponse({"id": job_id, "status": "Task not found"})
        self.advance(job, request)
        return JSONResponse(self.render(job))

    def result_expired(self, job: Job) -> bool:
        if job.sample is None:
            return False
        name = job.sample.rsplit("/", 1)[-1].split("?", 1)[0]
        return self.state.files.expired(name)

    async def delivery(self, request: Request) -> Response:
        gone = Response(EXPIRED_BLOB, status_code=403, media_type="application/xml")
        return file_response(self.state.files, request.path_params["name"], gone)


def create_app(state: BFLState) -> Starlette:
    routes = _Routes(state)
    return Starlette(
        routes=[
            Route("/v1/get_result", routes.get_result, methods=["GET"], name="get_result"),
            Route("/v1/{model}", routes.submit, methods=["POST"]),
            Route("/delivery/{name}", routes.delivery, name="delivery"),
        ]
    )
