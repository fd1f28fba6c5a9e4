"""A fake fal queue (``queue.fal.run``) plus the CDN that serves its result files.

Follows fal's queue protocol: ``POST /{model_id}`` answers the four job URLs, whose status,
result and cancel paths drop the model's sub-path (``fal-ai/flux/dev`` polls under
``fal-ai/flux``); status answers 202 while queued or running and 200 once ``COMPLETED``;
the result URL answers the model's output or its error (``detail: [{loc, msg, type}]``);
``PUT cancel_url`` answers 202 ``CANCELLATION_REQUESTED`` or 400 ``ALREADY_COMPLETED``.
A job advances one step per status poll, so tests walk the states without sleeping.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.common import FileStore, file_response, image_bytes, media_type
from tests.fakes.scripting import Script

MODERATED_WORD = "forbidden"  # the model refuses prompts containing it
NSFW_WORD = "nsfw"  # the safety checker blanks the output and flags it


@dataclass
class FalJob:
    app: str
    input: dict[str, Any]
    polls: int = 0
    cancelled: bool = False
    done: bool = False
    images: list[dict[str, Any]] = field(default_factory=list)
    nsfw: bool = False


@dataclass
class FalState:
    key: str = "fal-test-key"
    queue_polls: int = 2  # status polls answering IN_QUEUE (position counting down)
    progress_polls: int = 1  # then IN_PROGRESS, then COMPLETED
    latency_s: float = 0.0
    submissions: int = 0
    inputs: list[dict[str, Any]] = field(default_factory=list)
    jobs: dict[str, FalJob] = field(default_factory=dict)
    files: FileStore = field(default_factory=FileStore)  # the CDN; its ttl_s expires URLs
    script: Script = field(default_factory=Script)

    def app(self) -> Starlette:
        """The fake's ASGI app, serving this state."""
        return FakeFal(self).app()


def _unauthorised(request: Request, state: FalState) -> Response | None:
    if request.headers.get("authorization") != f"Key {state.key}":
        return JSONResponse({"detail": "Invalid API key"}, status_code=401)
    return None


def _app_of(model_id: str) -> str:
    """``fal-ai/flux/dev`` -> ``fal-ai/flux``: the queue URLs name only owner and app."""
    return "/".join(model_id.split("/")[:2])


class FakeFal:
    """The fake's handlers, bound to one ``FalState``."""

    def __init__(self, state: FalState) -> None:
        self.state = state

    async def gate(self, request: Request, route: str) -> Response | None:
        if self.state.latency_s:
            await asyncio.sleep(self.state.latency_s)
        return _unauthorised(request, self.state) or await self.state.script.intercept(route)

    async def submit(self, request: Request) -> Response:
        if (early := await self.gate(request, "submit")) is not None:
            return early
        model_id = request.path_params["model_id"]
        body = await request.json()
        if not isinstance(body.get("prompt"), str):
            detail = [{"loc": ["body", "prompt"], "msg": "field required", "type": "missing"}]
            return JSONResponse({"detail": detail}, status_code=422)
        self.state.submissions += 1
        self.state.inputs.append(body)
        request_id = str(uuid.uuid4())
        self.state.jobs[request_id] = FalJob(app=_app_of(model_id), input=body)
        base = f"{str(request.base_url).rstrip('/')}/{_app_of(model_id)}/requests/{request_id}"
        return JSONResponse(
            {
                "request_id": request_id,
                "response_url": base,
                "status_url": f"{base}/status",
                "cancel_url": f"{base}/cancel",
                "status": "IN_QUEUE",
                "queue_position": self.state.queue_polls,
            }
        )

    def find(self, request: Request) -> FalJob | None:
        job = self.state.jobs.get(request.path_params["request_id"])
        app = f"{request.path_params['owner']}/{request.path_params['app']}"
        return job if job is not None and job.app == app else None

    async def status(self, request: Request) -> Response:
        if (early := await self.gate(request, "status")) is not None:
            return early
        job = self.find(request)
        if job is None:
            return JSONResponse({"detail": "Request not found"}, status_code=404)
        job.polls += 1
        if job.cancelled:
            job.done = True
            answer = {"status": "COMPLETED", "error": "Request cancelled by the client"}
            return JSONResponse({**answer, "error_type": "client_cancelled"})
        if job.polls <= self.state.queue_polls:
            position = self.state.queue_polls - job.polls
            return JSONResponse({"status": "IN_QUEUE", "queue_position": position}, 202)
        if job.polls <= self.state.queue_polls + self.state.progress_polls:
            return JSONResponse({"status": "IN_PROGRESS", "logs": None}, 202)
        if not job.done:
            job.done = True
            self.complete(request, job)
        return JSONResponse({"status": "COMPLETED", "logs": None, "metrics": {}})

    def complete(self, request: Request, job: FalJob) -> None:
        size = job.input.get("image_size", "landscape_4_3")
        width, height = (size["width"], size["height"]) if isinstance(size, dict) else (64, 48)
        fmt = job.input.get("output_format", "jpeg")
        job.nsfw = NSFW_WORD in job.input["prompt"]
        suffix = "jpg" if fmt == "jpeg" else fmt
        for index in range(int(job.input.get("num_images", 1))):
            seed = "blank" if job.nsfw else f"{id(job)}/{index}"
            data = image_bytes(width, height, fmt, seed=seed)
            name = self.state.files.put(data, media_type(fmt), suffix)
            url = f"{str(request.base_url).rstrip('/')}/cdn/files/{name}"
            job.images.append({"url": url, "width": width, "height": height})

    async def result(self, request: Request) -> Response:
        if (early := await self.gate(request, "result")) is not None:
            return early
        job = self.find(request)
        if job is None:
            return JSONResponse({"detail": "Request not found"}, status_code=404)
        if not job.done:
            return JSONResponse({"detail": "Request is still in progress"}, status_code=400)
        if job.cancelled:
            body = {"detail": "Request cancelled by the client", "error_type": "client_cancelled"}
            return JSONResponse(body, status_code=499)
        if MODERATED_WORD in job.input["prompt"]:
            detail = [
                {
                    "loc": ["body", "prompt"],
                    "msg": "The content could not be processed because it was flagged.",
                    "type": "content_policy_violation",
                    "url": "https://docs.fal.ai/errors#content_policy_violation",
                }
            ]
            return JSONResponse({"detail": detail}, status_code=422)
        return JSONResponse(
            {
                "images": job.images,
                "seed": job.input.get("seed", 42),
                "has_nsfw_concepts": [job.nsfw] * len(job.images),
                "prompt": job.input["prompt"],
            }
        )

    async def cancel(self, request: Request) -> Response:
        if (early := await self.gate(request, "cancel")) is not None:
            return early
        job = self.find(request)
        if job is None:
            return JSONResponse({"status": "NOT_FOUND"}, status_code=404)
        if job.done:
            return JSONResponse({"status": "ALREADY_COMPLETED"}, status_code=400)
        job.cancelled = True
        return JSONResponse({"status": "CANCELLATION_REQUESTED"}, status_code=202)

    async def cdn(self, request: Request) -> Response:
        gone = Response("Not Found", status_code=404)
        return file_response(self.state.files, request.path_params["name"], gone)

    def app(self) -> Starlette:
        requests = "/{owner}/{app}/requests/{request_id}"
        return Starlette(
            routes=[
                Route("/cdn/files/{name}", self.cdn, methods=["GET"]),
                Route(f"{requests}/status", self.status, methods=["GET"]),
                Route(f"{requests}/cancel", self.cancel, methods=["PUT"]),
                Route(requests, self.result, methods=["GET"]),
                Route("/{model_id:path}", self.submit, methods=["POST"]),
            ]
        )
