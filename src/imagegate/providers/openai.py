"""OpenAI Images API adapter.

Follows the documented ``POST /v1/images/generations`` ("Create image") and the documented
error object ``{"error": {"message", "type", "param", "code"}}``. GPT image models
(``gpt-image-*``, ``chatgpt-image-*``) always answer ``b64_json`` and take ``background``,
``output_format``, ``output_compression`` and ``moderation``; DALL·E models answer ``url``
(valid for 60 minutes) or ``b64_json`` per ``response_format``, and ``dall-e-3`` accepts only
``n=1`` and is the one model with ``style``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, ClassVar

import httpx

from imagegate.errors import ProviderAmbiguous, ProviderAuthError, ProviderError
from imagegate.providers._util import as_dict, create_request, decode_base64
from imagegate.providers.base import (
    Completed,
    GeneratedImage,
    Provider,
    ProviderRequest,
    decode_json,
    error_for_status,
)

DEFAULT_BASE_URL = "https://api.openai.com"

# Error codes OpenAI documents for a refused prompt or image (DALL·E, then GPT image models).
MODERATION_CODES = frozenset({"content_policy_violation", "moderation_blocked"})
# Codes that arrive as 429/400 but mean the account cannot pay: retrying will not help.
BILLING_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached"})


def error_object(response: httpx.Response) -> dict[str, Any]:
    """The ``error`` object of an OpenAI-style error body, or ``{}`` when there is none."""
    try:
        body = response.json()
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def openai_error(response: httpx.Response) -> ProviderError:
    """Translate an OpenAI-style error answer by its ``code`` first, then its HTTP status."""
    error = error_object(response)
    code = error.get("code")
    message = str(error.get("message") or response.reason_phrase or "upstream error")
    details = ", ".join(str(part) for part in (code, error.get("param")) if part)
    text = f"{message} [{details}]" if details else message
    if code in MODERATION_CODES:
        return error_for_status(response, text, moderation=True)
    if code in BILLING_CODES:
        status = response.status_code
        return ProviderAuthError(f"{text} (HTTP {status})", status=status)
    return error_for_status(response, text)


def parse_images(body: Any) -> list[GeneratedImage]:
    """The images of an OpenAI images answer ``{"created", "data": [{url|b64_json, ...}]}``."""
    data = as_dict(body, "images answer").get("data")
    if not isinstance(data, list) or not data:
        raise ProviderAmbiguous("upstream images answer holds no images")
    return [_image(as_dict(item, "image entry")) for item in data]


def _image(item: dict[str, Any]) -> GeneratedImage:
    revised = item.get("revised_prompt") or None
    if item.get("b64_json"):
        return GeneratedImage(data=decode_base64(str(item["b64_json"])), revised_prompt=revised)
    if item.get("url"):
        return GeneratedImage(url=str(item["url"]), revised_prompt=revised)
    raise ProviderAmbiguous("upstream image entry has neither url nor b64_json")


def _size(request: ProviderRequest) -> str | None:
    if request.size:
        return request.size
    if request.width and request.height:
        return f"{request.width}x{request.height}"
    return None


class OpenAIProvider(Provider):
    """Synchronous: one call returns the images; ``dall-e-3`` gets one call per image."""

    kind = "openai"
    max_n_per_call = 10
    requires_api_key = True
    option_types: ClassVar[Mapping[str, type]] = {
        "moderation": str,  # GPT image models: "auto" (default) or "low"
        "response_format": str,  # DALL·E models: "b64_json" (default here) or "url"
        "organization": str,
    }

    async def submit(self, request: ProviderRequest) -> Completed:
        if request.upstream_model == "dall-e-3" and request.n > 1:
            single = replace(request, n=1)
            results = await asyncio.gather(
                *(self._generate(single) for _ in range(request.n)), return_exceptions=True
            )
            images: list[GeneratedImage] = []
            for result in results:
                if isinstance(result, BaseException):
                    raise result
                images.extend(result)
            return Completed(images)
        return Completed(await self._generate(request))

    async def _generate(self, request: ProviderRequest) -> list[GeneratedImage]:
        base_url = (self.settings.base_url or DEFAULT_BASE_URL).rstrip("/")
        url = f"{base_url}/v1/images/generations"
        response = await create_request(self, url, self.body(request), self._headers())
        if response.is_error:
            raise openai_error(response)
        return parse_images(decode_json(response))

    def _headers(self) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.settings.api_key}"}
        if organization := self.settings.options.get("organization"):
            headers["OpenAI-Organization"] = str(organization)
        return headers

    def body(self, request: ProviderRequest) -> dict[str, Any]:
        """The documented request body, with only the fields the model family accepts."""
        model = request.upstream_model
        options = self.settings.options
        fields: dict[str, Any] = {"size": _size(request), "quality": request.quality}
        fields["user"] = request.user
        if model.startswith("dall-e"):
            fields["response_format"] = options.get("response_format", "b64_json")
            fields["style"] = request.style if model == "dall-e-3" else None
        else:
            fields["background"] = request.background
            fields["output_format"] = request.output_format
            fields["moderation"] = options.get("moderation")
            if request.output_format in ("jpeg", "webp"):
                fields["output_compression"] = request.output_compression
        body: dict[str, Any] = {"model": model, "prompt": request.prompt, "n": request.n}
        body.update({key: value for key, value in fields.items() if value is not None})
        return body
