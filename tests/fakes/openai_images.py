"""A fake of the OpenAI Images API (``POST /v1/images/generations``), as documented.

Errors use OpenAI's object ``{"error": {"message", "type", "param", "code"}}``. GPT image
models answer ``b64_json`` only and refuse ``response_format``; DALL·E models answer ``url``
(served here, valid ``files.ttl_s``) or ``b64_json`` and refuse the GPT-only fields;
``dall-e-3`` accepts ``n=1`` only. A blocked word in the prompt is refused with
``content_policy_violation`` (DALL·E) or ``moderation_blocked`` (GPT image models).
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.common import FakeVendor, file_response, image_bytes, media_type

SIZES = {
    "dall-e-2": {"256x256", "512x512", "1024x1024"},
    "dall-e-3": {"1024x1024", "1792x1024", "1024x1792"},
    "gpt-image-1": {"auto", "1024x1024", "1536x1024", "1024x1536"},
}
SIZES["gpt-image-1-mini"] = SIZES["gpt-image-1.5"] = SIZES["gpt-image-1"]
GPT_ONLY = ("background", "output_format", "output_compression", "moderation")


@dataclass
class OpenAIState(FakeVendor):
    requests: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> Starlette:
        return create_app(self)


def openai_error(
    status: int,
    message: str,
    *,
    type_: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
) -> JSONResponse:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return JSONResponse(body, status_code=status)


def _plain_error(status: int, message: str) -> Response:
    type_ = "server_error" if status >= 500 else "requests"
    code = "rate_limit_exceeded" if status == 429 else None
    return openai_error(status, message, type_=type_, code=code)


def _refusal(body: dict[str, Any], state: OpenAIState) -> JSONResponse | None:
    """The documented 400 for a request the model does not accept, else None."""
    model = body.get("model", "dall-e-2")
    if model not in SIZES:
        return openai_error(400, f"Invalid value: '{model}'.", code="invalid_value", param="model")
    if not isinstance(body.get("prompt"), str) or not body["prompt"]:
        return openai_error(400, "Missing required parameter: 'prompt'.", param="prompt")
    gpt = model.startswith("gpt-image")
    refused = ["response_format"] if gpt else [name for name in GPT_ONLY if name in body]
    if "style" in body and model != "dall-e-3":
        refused.append("style")
    for name in refused:
        if name in body:
            message = f"Unknown parameter: '{name}'."
            return openai_error(400, message, code="unknown_parameter", param=name)
    if model == "dall-e-3" and body.get("n", 1) != 1:
        return openai_error(400, "Invalid 'n': dall-e-3 supports n=1 only.", param="n")
    if body.get("size", "1024x1024") not in SIZES[model]:
        allowed = ", ".join(sorted(SIZES[model]))
        message = f"Invalid value: '{body.get('size')}'. Supported values are: {allowed}."
        return openai_error(400, message, code="invalid_value", param="size")
    if state.has_word(body["prompt"], state.blocked_words | state.unsafe_words):
        if gpt:
            message = "Your request was rejected by the safety system."
            return openai_error(
                400, message, type_="image_generation_user_error", code="moderation_blocked"
            )
        message = "Your request was rejected as a result of our safety system."
        return openai_error(400, message, code="content_policy_violation")
    return None


def _images(body: dict[str, Any], request: Request, state: OpenAIState) -> list[dict[str, Any]]:
    model = body["model"]
    size = body.get("size", "1024x1024")
    width, height = (1024, 1024) if size == "auto" else map(int, size.split("x"))
    fmt = body.get("output_format", "png") if model.startswith("gpt-image") else "png"
    wants_url = not model.startswith("gpt-image") and body.get("response_format", "url") == "url"
    data = []
    for index in range(int(body.get("n", 1))):
        raw = image_bytes(width, height, fmt, seed=f"{body['prompt']}#{index}")
        if wants_url:
            name = state.files.put(raw, media_type(fmt), suffix=fmt)
            item: dict[str, Any] = {"url": str(request.url_for("file", name=name))}
        else:
            item = {"b64_json": base64.b64encode(raw).decode()}
        if model == "dall-e-3":
            item["revised_prompt"] = f"A detailed picture: {body['prompt']}"
        data.append(item)
    return data


def create_app(state: OpenAIState) -> Starlette:
    async def generations(request: Request) -> Response:
        state.create_calls += 1
        state.record(request)
        if request.headers.get("authorization") != f"Bearer {state.api_key}":
            return openai_error(401, "Incorrect API key provided.", code="invalid_api_key")
        if (faulted := await state.scripted(state.faults, _plain_error)) is not None:
            return faulted
        try:
            body = json.loads(await request.body())
        except ValueError:
            return openai_error(400, "We could not parse the JSON body of your request.")
        state.requests.append(body)
        if (refused := _refusal(body, state)) is not None:
            return refused
        state.submissions += 1
        return JSONResponse({"created": int(time.time()), "data": _images(body, request, state)})

    async def file(request: Request) -> Response:
        # Expired DALL·E links answer like an expired signed blob URL.
        gone = Response("AuthenticationFailed: signed expiry time has passed", status_code=403)
        return file_response(state.files, request.path_params["name"], gone)

    return Starlette(
        routes=[
            Route("/v1/images/generations", generations, methods=["POST"]),
            Route("/files/{name}", file, name="file"),
        ]
    )
