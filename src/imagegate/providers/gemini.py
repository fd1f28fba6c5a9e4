"""Google's Gemini image models through the Gemini API.

Follows the documented REST call:

    POST {base}/v1beta/models/{model}:generateContent      x-goog-api-key: <key>
    {"contents": [{"parts": [{"text": prompt}]}],
     "generationConfig": {"responseModalities": ["TEXT", "IMAGE"], "seed": ...,
                          "imageConfig": {"aspectRatio": "16:9", "imageSize": "2K"}}}

The answer carries images as ``candidates[].content.parts[].inlineData{mimeType, data}``.
A blocked prompt has ``promptFeedback.blockReason`` and no candidates; a blocked image has a
candidate whose ``finishReason`` names the safety rule. Errors use Google's
``{"error": {code, message, status, details}}``; an invalid key is 400 INVALID_ARGUMENT with
reason ``API_KEY_INVALID``, and RESOURCE_EXHAUSTED may carry a ``RetryInfo.retryDelay``.

Imagen models (``imagen-*``) use the same API's ``:predict``: ``{"instances": [{"prompt"}],
"parameters": {sampleCount, aspectRatio, imageSize}}`` answered by ``predictions[]`` of
``{bytesBase64Encoded, mimeType}``, where a filtered image carries ``raiFilteredReason``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from imagegate.errors import (
    ContentPolicyViolation,
    JobFailed,
    ProviderAuthError,
    ProviderError,
    ProviderRateLimited,
)
from imagegate.providers import _util
from imagegate.providers.base import (
    Completed,
    GeneratedImage,
    Provider,
    ProviderRequest,
    Submitted,
    error_for_status,
    retry_after_seconds,
)

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
ASPECT_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
# Finish and block reasons that mean a safety or policy refusal rather than a failure.
POLICY_REASONS = frozenset(
    {
        "SAFETY",
        "IMAGE_SAFETY",
        "PROHIBITED_CONTENT",
        "IMAGE_PROHIBITED_CONTENT",
        "BLOCKLIST",
        "SPII",
        "RECITATION",
        "IMAGE_RECITATION",
    }
)
AUTH_STATUSES = frozenset({"UNAUTHENTICATED", "PERMISSION_DENIED"})


class GeminiProvider(Provider):
    """Synchronous: one ``generateContent`` (or Imagen ``predict``) call answers the image."""

    kind = "gemini"
    max_n_per_call = 1
    requires_api_key = True
    option_types: ClassVar[Mapping[str, type]] = {}

    def _body(self, request: ProviderRequest) -> dict[str, Any]:
        image_config = _image_config(request)
        if _is_imagen(request.upstream_model):
            parameters = {"sampleCount": request.n, "includeRaiReason": True, **image_config}
            return {"instances": [{"prompt": request.prompt}], "parameters": parameters}
        config: dict[str, Any] = {"responseModalities": ["TEXT", "IMAGE"]}
        if image_config:
            config["imageConfig"] = image_config
        if request.seed is not None:
            config["seed"] = request.seed
        return {"contents": [{"parts": [{"text": request.prompt}]}], "generationConfig": config}

    async def submit(self, request: ProviderRequest) -> Completed | Submitted:
        base = (self.settings.base_url or DEFAULT_BASE_URL).rstrip("/")
        model = request.upstream_model
        method = "predict" if _is_imagen(model) else "generateContent"
        url = f"{base}/v1beta/models/{model}:{method}"
        key = self.settings.api_key
        headers = {"x-goog-api-key": key} if key else {}
        response = await _util.create_request(self, url, self._body(request), headers)
        if response.is_error:
            raise _error(response)
        body = _util.json_object(response, "answer")
        images = _predictions(body) if _is_imagen(model) else _images(body)
        # The model may volunteer extra pictures; a call answers for ``n`` of them only.
        return Completed(images=images[: request.n])


def _is_imagen(model: str) -> bool:
    """Imagen models answer ``:predict``; Gemini image models ``:generateContent``."""
    return model.startswith("imagen-")


def _image_config(request: ProviderRequest) -> dict[str, str]:
    """``aspectRatio`` (given, or nearest to the size) and ``imageSize`` from ``resolution``."""
    config: dict[str, str] = {}
    ratio = request.aspect_ratio
    if ratio is None and request.width and request.height:
        ratio = _util.nearest_ratio(request.width, request.height, ASPECT_RATIOS)
    if ratio:
        config["aspectRatio"] = ratio
    if request.resolution:
        config["imageSize"] = request.resolution.upper()
    return config


def _error(response: httpx.Response) -> ProviderError:
    """Google's error envelope, translated by its ``status`` before the HTTP code."""
    try:
        error: Any = response.json().get("error", {})
    except (ValueError, AttributeError):
        error = {}
    error = error if isinstance(error, dict) else {}
    status = str(error.get("status", ""))
    details = [d for d in error.get("details", []) if isinstance(d, dict)]
    text = f"gemini: {status or 'error'}: {error.get('message', 'no detail')}"
    code = response.status_code
    if status in AUTH_STATUSES or any(d.get("reason") == "API_KEY_INVALID" for d in details):
        return ProviderAuthError(f"{text} (HTTP {code})", status=code)
    if status == "RESOURCE_EXHAUSTED" or code == 429:
        delay = next((d["retryDelay"] for d in details if "retryDelay" in d), None)
        retry_after = _seconds(delay) if delay else retry_after_seconds(response)
        return ProviderRateLimited(f"{text} (HTTP {code})", retry_after=retry_after, status=code)
    return error_for_status(response, text)


def _seconds(duration: Any) -> float | None:
    """A protobuf Duration in JSON form (``"30s"``, ``"1.5s"``) in seconds."""
    try:
        return float(str(duration).removesuffix("s"))
    except ValueError:
        return None


def _images(body: dict[str, Any]) -> list[GeneratedImage]:
    """The answer's images; a blocked prompt or image is a policy refusal."""
    feedback = body.get("promptFeedback")
    block = feedback.get("blockReason") if isinstance(feedback, dict) else None
    if block:
        raise ContentPolicyViolation(f"gemini blocked the prompt ({block})")
    candidates = body.get("candidates")
    if not isinstance(candidates, list) or not candidates:
        raise JobFailed("gemini answered no candidates")
    candidates = [c for c in candidates if isinstance(c, dict)]
    images = [image for candidate in candidates for image in _inline_images(candidate)]
    if images:
        return images
    reasons = [str(candidate.get("finishReason", "")) for candidate in candidates]
    refused = POLICY_REASONS.intersection(reasons)
    if refused:
        raise ContentPolicyViolation(f"gemini refused the image ({', '.join(sorted(refused))})")
    raise JobFailed(f"gemini answered no image (finishReason {', '.join(reasons) or 'none'})")


def _predictions(body: dict[str, Any]) -> list[GeneratedImage]:
    """Imagen's ``predictions``; an image withheld by its filters carries only a reason."""
    predictions = [p for p in body.get("predictions", []) if isinstance(p, dict)]
    images = [
        GeneratedImage(data=_util.decode_base64(p["bytesBase64Encoded"]))
        for p in predictions
        if isinstance(p.get("bytesBase64Encoded"), str)
    ]
    if images:
        return images
    reasons = [str(p["raiFilteredReason"]) for p in predictions if "raiFilteredReason" in p]
    if reasons:
        raise ContentPolicyViolation(f"imagen filtered the image: {'; '.join(reasons)}")
    raise JobFailed("imagen answered no image")


def _inline_images(candidate: dict[str, Any]) -> list[GeneratedImage]:
    """The ``inlineData`` parts of one candidate; its text parts are commentary."""
    content = candidate.get("content")
    parts = content.get("parts", []) if isinstance(content, dict) else []
    images = []
    for part in parts:
        inline = part.get("inlineData") if isinstance(part, dict) else None
        if isinstance(inline, dict) and isinstance(inline.get("data"), str):
            images.append(GeneratedImage(data=_util.decode_base64(inline["data"])))
    return images
