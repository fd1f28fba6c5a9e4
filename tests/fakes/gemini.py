"""A fake Gemini API ``generateContent`` for image models.

Follows the documented protocol: ``POST /v1beta/models/{model}:generateContent`` with
``x-goog-api-key``; images come back as ``inlineData`` parts beside a text part; a blocked
prompt answers ``promptFeedback.blockReason`` without candidates, a blocked image a candidate
with ``finishReason: IMAGE_SAFETY`` and no content. Errors use Google's envelope: a wrong key
is 400 INVALID_ARGUMENT with reason API_KEY_INVALID, a missing one 403 PERMISSION_DENIED, an
unknown model 404 NOT_FOUND. Imagen models answer ``:predict`` with ``predictions`` of
``bytesBase64Encoded`` images, or a ``raiFilteredReason`` for an image their filters withheld.
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.common import image_bytes
from tests.fakes.scripting import Script

MODELS = frozenset({"gemini-2.5-flash-image", "gemini-3-pro-image-preview"})
IMAGEN_MODELS = frozenset({"imagen-4.0-generate-001"})
BLOCKED_WORD = "forbidden"  # the prompt is blocked: promptFeedback.blockReason
UNSAFE_WORD = "unsafe"  # the image is blocked: finishReason IMAGE_SAFETY
TEXT_ONLY_WORD = "describe"  # the model answers text and no image
SIZES = {"1:1": (64, 64), "16:9": (64, 36), "9:16": (36, 64), "4:3": (64, 48), "3:4": (48, 64)}


@dataclass
class GeminiState:
    key: str = "gemini-test-key"
    latency_s: float = 0.0
    images_per_answer: int = 1  # the model may answer several pictures for one prompt
    submissions: int = 0
    bodies: list[dict[str, Any]] = field(default_factory=list)
    script: Script = field(default_factory=Script)

    def app(self) -> Starlette:
        """The fake's ASGI app, serving this state."""
        return FakeGemini(self).app()


def google_error(code: int, status: str, message: str, *details: dict[str, Any]) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "status": status}}
    if details:
        body["error"]["details"] = list(details)
    return JSONResponse(body, status_code=code)


def key_error(key: str | None) -> JSONResponse:
    if key is None:
        return google_error(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers.")
    info = {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "API_KEY_INVALID",
        "domain": "googleapis.com",
    }
    return google_error(
        400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", info
    )


def candidate_for(prompt: str, config: dict[str, Any], count: int) -> dict[str, Any]:
    """The one candidate the model answers for ``prompt``."""
    if UNSAFE_WORD in prompt:
        return {"finishReason": "IMAGE_SAFETY", "index": 0}
    parts: list[dict[str, Any]] = [{"text": "Here is the picture you asked for."}]
    if TEXT_ONLY_WORD not in prompt and "IMAGE" in config.get("responseModalities", []):
        ratio = config.get("imageConfig", {}).get("aspectRatio", "1:1")
        width, height = SIZES.get(ratio, (64, 64))
        for index in range(count):
            data = image_bytes(width, height, "png", seed=f"{config.get('seed')}/{index}")
            inline = {"mimeType": "image/png", "data": base64.b64encode(data).decode()}
            parts.append({"inlineData": inline})
    return {"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}


class FakeGemini:
    def __init__(self, state: GeminiState) -> None:
        self.state = state

    async def generate(self, request: Request) -> Response:
        if self.state.latency_s:
            await asyncio.sleep(self.state.latency_s)
        key = request.headers.get("x-goog-api-key")
        if key != self.state.key:
            return key_error(key)
        if (scripted := await self.state.script.intercept("generate")) is not None:
            return scripted
        model, _, method = request.path_params["target"].partition(":")
        body = await request.json()
        if method == "predict" and model in IMAGEN_MODELS:
            return self.predict(body)
        if method != "generateContent" or model not in MODELS:
            message = f"models/{model} is not found for API version v1beta."
            return google_error(404, "NOT_FOUND", message)
        try:
            prompt = body["contents"][0]["parts"][0]["text"]
        except (KeyError, IndexError, TypeError):
            return google_error(400, "INVALID_ARGUMENT", "* contents: contents is not specified")
        self.state.submissions += 1
        self.state.bodies.append(body)
        usage = {"promptTokenCount": 7, "totalTokenCount": 7}
        if BLOCKED_WORD in prompt:
            feedback = {"blockReason": "PROHIBITED_CONTENT"}
            return JSONResponse({"promptFeedback": feedback, "usageMetadata": usage})
        candidate = candidate_for(
            prompt, body.get("generationConfig", {}), self.state.images_per_answer
        )
        return JSONResponse(
            {"candidates": [candidate], "usageMetadata": usage, "modelVersion": model}
        )

    def predict(self, body: dict[str, Any]) -> Response:
        """Imagen: one prediction per sample; a filtered one says why instead of an image."""
        try:
            prompt = body["instances"][0]["prompt"]
        except (KeyError, IndexError, TypeError):
            return google_error(400, "INVALID_ARGUMENT", "* instances: prompt is required")
        self.state.submissions += 1
        self.state.bodies.append(body)
        parameters = body.get("parameters", {})
        if BLOCKED_WORD in prompt:
            reason = "Your current safety filter threshold filtered out the generated image."
            return JSONResponse({"predictions": [{"raiFilteredReason": reason}]})
        width, height = SIZES.get(parameters.get("aspectRatio", "1:1"), (64, 64))
        predictions = [
            {
                "bytesBase64Encoded": base64.b64encode(
                    image_bytes(width, height, "png", seed=f"{prompt}/{index}")
                ).decode(),
                "mimeType": "image/png",
            }
            for index in range(int(parameters.get("sampleCount", 4)))
        ]
        return JSONResponse({"predictions": predictions})

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1beta/models/{target}", self.generate, methods=["POST"])])
