"""Stability AI's v2beta Stable Image API.

Follows the documented endpoints:

    POST /v2beta/stable-image/generate/{core | ultra | sd3}   multipart/form-data
         authorization: Bearer <key>; accept: image/* (bytes, with ``finish-reason`` and
         ``seed`` headers) or application/json ({image: base64, finish_reason, seed})
    GET  /v2beta/results/{id}    the async pattern: 202 {id, status: "in-progress"} while
         running, 200 with the image when done, 404 once unknown or expired (results live 24 h)

``finish_reason == "CONTENT_FILTERED"`` and the 403 ``content_moderation`` error are
moderation. Errors look like ``{"id", "name", "errors": [...]}``. ``sd3`` takes the model
variant (``sd3.5-large``, ...) as a form field. An upstream model listed in the provider
option ``async_models`` (or any answer shaped ``{"id"}`` without an image) is followed by
polling ``/v2beta/results/{id}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from imagegate.errors import (
    ContentPolicyViolation,
    JobFailed,
    ProviderAmbiguous,
    ProviderAuthError,
    ProviderError,
)
from imagegate.providers import _util
from imagegate.providers.base import (
    Completed,
    GeneratedImage,
    JobRef,
    JobStatus,
    Provider,
    ProviderRequest,
    Submitted,
    error_for_status,
    send,
)

DEFAULT_BASE_URL = "https://api.stability.ai"
ASPECT_RATIOS = ("16:9", "1:1", "21:9", "2:3", "3:2", "4:5", "5:4", "9:16", "9:21")
_ENDPOINTS = ("core", "ultra", "sd3")


class StabilityProvider(Provider):
    """One image per call; synchronous endpoints complete at once, async ones are polled."""

    kind = "stability"
    max_n_per_call = 1
    submits_jobs = True
    poll_interval_s = 2.0
    requires_api_key = True
    option_types: ClassVar[Mapping[str, type]] = {"async_models": list, "style_preset": str}

    @property
    def _base_url(self) -> str:
        return (self.settings.base_url or DEFAULT_BASE_URL).rstrip("/")

    def _headers(self, accept: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self.settings.api_key or ''}", "accept": accept}

    def _is_async(self, model: str) -> bool:
        return model in self.settings.options.get("async_models", [])

    def _form(self, request: ProviderRequest) -> dict[str, str]:
        model = request.upstream_model
        ratio = request.aspect_ratio
        if ratio is None and request.width and request.height:
            ratio = _util.nearest_ratio(request.width, request.height, ASPECT_RATIOS)
        fields = {
            "prompt": request.prompt,
            "output_format": request.output_format,
            "aspect_ratio": ratio,
            "negative_prompt": request.negative_prompt,
            "seed": None if request.seed is None else str(request.seed),
            "style_preset": request.style or self.settings.options.get("style_preset"),
            "model": model if model.startswith("sd3") and model != "sd3" else None,
        }
        return {key: value for key, value in fields.items() if value is not None}

    def _path(self, model: str) -> str:
        if "/" in model:
            return f"/v2beta/stable-image/{model.strip('/')}"
        endpoint = "sd3" if model.startswith("sd3") else model
        if endpoint not in _ENDPOINTS:
            raise ProviderAuthError(
                f"stability model {model!r} is not one of core, ultra, sd3* or a path"
            )
        return f"/v2beta/stable-image/generate/{endpoint}"

    async def submit(self, request: ProviderRequest) -> Completed | Submitted:
        is_async = self._is_async(request.upstream_model)
        accept = "application/json" if is_async else "image/*"
        req = self.http.build_request(
            "POST",
            self._base_url + self._path(request.upstream_model),
            # ``files`` forces multipart/form-data, as the API requires, even with no file.
            files={"none": ("", b"")},
            data=self._form(request),
            headers=self._headers(accept),
            timeout=_util.request_timeout(self.settings),
        )
        response = await send(self.http, req, starts_job=True)
        if response.is_error:
            raise _error(response, "stability rejected the request")
        if _is_json(response):
            body = _util.json_object(response, "generation answer")
            if "image" not in body and isinstance(body.get("id"), str):
                return Submitted(job={"id": body["id"]})
        return Completed(images=[_image(response)])

    async def poll(self, job: JobRef) -> JobStatus:
        url = f"{self._base_url}/v2beta/results/{job['id']}"
        response = await _util.job_request(self, "GET", url, self._headers("image/*"))
        if response.status_code == 202:
            return JobStatus("running")
        if response.status_code == 404:
            raise JobFailed("stability no longer holds this generation (it expired)", status=404)
        if response.is_error:
            raise _util.poll_error(_error(response, "stability result check failed"))
        try:
            return JobStatus("succeeded", images=[_image(response)])
        except ProviderAmbiguous as exc:
            raise _util.poll_error(exc) from exc


def _is_json(response: httpx.Response) -> bool:
    content_type: str = response.headers.get("content-type", "")
    return content_type.startswith("application/json")


def _error(response: httpx.Response, context: str) -> ProviderError:
    """Stability's ``{id, name, errors}`` body, translated; ``content_moderation`` is policy."""
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    name = str(body.get("name", "")) if isinstance(body, dict) else ""
    errors = body.get("errors") if isinstance(body, dict) else None
    detail = "; ".join(str(e) for e in errors) if isinstance(errors, list) else ""
    text = f"{context}: {name} {detail}".rstrip() if name or detail else context
    if response.status_code == 402:
        # Out of credits: nothing this request can fix, and the route is unusable until topped up.
        return ProviderAuthError(f"{text} (HTTP 402)", status=402)
    return error_for_status(response, text, moderation=name == "content_moderation")


def _image(response: httpx.Response) -> GeneratedImage:
    """The image of a finished generation, raw bytes or base64 JSON, unless it was filtered."""
    if _is_json(response):
        body = _util.json_object(response, "generation result")
        reason = body.get("finish_reason")
        encoded = body.get("image")
    else:
        reason = response.headers.get("finish-reason")
        encoded = None
    if reason == "CONTENT_FILTERED":
        raise ContentPolicyViolation("stability filtered the generated image")
    if reason not in (None, "SUCCESS"):
        raise JobFailed(f"stability generation finished with {reason}")
    if encoded is not None:
        if not isinstance(encoded, str):
            raise ProviderAmbiguous("stability answered an image that is not base64 text")
        return GeneratedImage(data=_util.decode_base64(encoded))
    if not response.headers.get("content-type", "").startswith("image/") or not response.content:
        raise ProviderAmbiguous("stability answered neither an image nor JSON")
    return GeneratedImage(data=response.content)
