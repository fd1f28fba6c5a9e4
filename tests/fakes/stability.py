"""A fake Stability AI v2beta Stable Image API.

Follows the documented protocol: multipart/form-data to
``/v2beta/stable-image/generate/{core,ultra,sd3}`` with ``authorization: Bearer``; ``accept:
image/*`` answers the bytes with ``finish-reason`` and ``seed`` headers, ``application/json``
answers ``{image, finish_reason, seed}``; errors are ``{id, name, errors}`` (403
``content_moderation`` for refused prompts). Paths listed in ``async_paths`` answer ``{id}``
instead, and ``/v2beta/results/{id}`` answers 202 ``in-progress`` for ``result_polls`` polls,
then the image; an unknown id is 404.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.common import image_bytes, media_type
from tests.fakes.scripting import Script, form_fields

MODERATED_WORD = "forbidden"  # refused before generating: 403 content_moderation
FILTERED_WORD = "filtered"  # generated, then filtered: finish_reason CONTENT_FILTERED
SIZES = {"1:1": (64, 64), "16:9": (64, 36), "9:16": (36, 64), "3:2": (60, 40), "2:3": (40, 60)}


@dataclass
class Generation:
    fields: dict[str, str]
    polls: int = 0


@dataclass
class StabilityState:
    key: str = "sk-stability-test"
    async_paths: set[str] = field(default_factory=set)
    result_polls: int = 2
    latency_s: float = 0.0
    submissions: int = 0
    forms: list[dict[str, str]] = field(default_factory=list)
    accepts: list[str] = field(default_factory=list)
    generations: dict[str, Generation] = field(default_factory=dict)
    script: Script = field(default_factory=Script)

    def app(self) -> Starlette:
        """The fake's ASGI app, serving this state."""
        return FakeStability(self).app()


def error(status: int, name: str, *errors: str) -> JSONResponse:
    return JSONResponse({"id": secrets.token_hex(16), "name": name, "errors": list(errors)}, status)


def answer_image(fields: dict[str, str], accept: str) -> Response:
    """The finished image in the representation the client asked for."""
    fmt = fields.get("output_format", "png")
    width, height = SIZES.get(fields.get("aspect_ratio", "1:1"), (64, 64))
    seed = fields.get("seed", "0")
    reason = "CONTENT_FILTERED" if FILTERED_WORD in fields["prompt"] else "SUCCESS"
    data = image_bytes(width, height, fmt, seed=seed)
    if accept.startswith("application/json"):
        encoded = base64.b64encode(data).decode()
        return JSONResponse({"image": encoded, "finish_reason": reason, "seed": int(seed)})
    headers = {"finish-reason": reason, "seed": seed}
    return Response(data, media_type=media_type(fmt), headers=headers)


class FakeStability:
    def __init__(self, state: StabilityState) -> None:
        self.state = state

    async def gate(self, request: Request, route: str) -> Response | None:
        if self.state.latency_s:
            await asyncio.sleep(self.state.latency_s)
        if request.headers.get("authorization") != f"Bearer {self.state.key}":
            return error(401, "unauthorized", "authorization: invalid or missing header value")
        return await self.state.script.intercept(route)

    async def generate(self, request: Request) -> Response:
        if (early := await self.gate(request, "generate")) is not None:
            return early
        fields = await form_fields(request)
        if fields is None:
            return error(400, "bad_request", "content-type: must be multipart/form-data")
        if not fields.get("prompt"):
            return error(400, "bad_request", "prompt: cannot be empty")
        if MODERATED_WORD in fields["prompt"]:
            return error(
                403,
                "content_moderation",
                "Your request was flagged by our content moderation system, as a result your "
                "request was denied and you were not charged.",
            )
        self.state.submissions += 1
        self.state.forms.append(fields)
        accept = request.headers.get("accept", "image/*")
        self.state.accepts.append(accept)
        if request.path_params["path"] in self.state.async_paths:
            generation_id = secrets.token_hex(32)
            self.state.generations[generation_id] = Generation(fields)
            return JSONResponse({"id": generation_id})
        return answer_image(fields, accept)

    async def result(self, request: Request) -> Response:
        if (early := await self.gate(request, "result")) is not None:
            return early
        generation = self.state.generations.get(request.path_params["id"])
        if generation is None:
            return error(404, "not_found", "id: generation not found or expired")
        generation.polls += 1
        if generation.polls <= self.state.result_polls:
            return JSONResponse({"id": request.path_params["id"], "status": "in-progress"}, 202)
        return answer_image(generation.fields, request.headers.get("accept", "image/*"))

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v2beta/stable-image/{path:path}", self.generate, methods=["POST"]),
                Route("/v2beta/results/{id}", self.result, methods=["GET"]),
            ]
        )
