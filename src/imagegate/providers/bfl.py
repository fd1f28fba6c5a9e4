"""Black Forest Labs FLUX API adapter.

Follows the documented flow: ``POST {base}/v1/{model}`` with header ``x-key`` answers
``{"id", "polling_url"}``; ``GET`` on that exact ``polling_url`` (the global endpoint routes
to regional clusters, so the URL must not be rebuilt) answers ``{"id", "status", "result",
"progress", "details"}`` with status ``Pending``, ``Ready``, ``Error``, ``Request Moderated``,
``Content Moderated`` or ``Task not found``. ``result.sample`` is a delivery URL valid for
about ten minutes. Documented HTTP errors: 402 (no credits), 403 (key), 422 (invalid body),
429 (too many active tasks), 500, 503. There is no ``n``: one job per image.
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
from imagegate.providers._util import (
    as_dict,
    create_request,
    dimensions,
    job_url,
    poll_job,
    reduced_ratio,
)
from imagegate.providers.base import (
    GeneratedImage,
    JobRef,
    JobStatus,
    Provider,
    ProviderRequest,
    Submitted,
    decode_json,
    error_for_status,
)

DEFAULT_BASE_URL = "https://api.bfl.ai"
MODERATED = frozenset({"Request Moderated", "Content Moderated"})


def _takes_aspect_ratio(model: str) -> bool:
    """Ultra and Kontext endpoints size images by ``aspect_ratio``, the others by pixels."""
    return "ultra" in model or "kontext" in model


def _multiple_of_32(value: int) -> int:
    return max(32, round(value / 32) * 32)


def _detail(response: httpx.Response) -> str:
    """The message of a BFL error body (``{"detail": str | [{"msg", ...}]}``) or the reason."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        return "; ".join(str(item.get("msg", item)) for item in detail)
    return str(detail or response.reason_phrase or "upstream error")


def _submit_error(response: httpx.Response) -> ProviderError:
    message = _detail(response)
    if response.status_code == 402:  # out of credits: this route cannot work until topped up
        return ProviderAuthError(f"{message} (HTTP 402)", status=402)
    return error_for_status(response, message)


def _poll_error(response: httpx.Response) -> ProviderError:
    return error_for_status(response, _detail(response))


def _progress(value: Any) -> int | None:
    if not isinstance(value, int | float):
        return None
    return round(value * 100) if value <= 1 else round(value)


class BFLProvider(Provider):
    """Submit-then-poll; a job is one image."""

    kind = "bfl"
    max_n_per_call = 1
    submits_jobs = True
    requires_api_key = True
    poll_interval_s = 1.0
    option_types: ClassVar[Mapping[str, type]] = {
        "safety_tolerance": int,  # 0 (strict) .. 6 (permissive); the vendor's default is 2
        "prompt_upsampling": bool,
        "raw": bool,  # ultra models: less processed, more natural images
    }

    @property
    def base_url(self) -> str:
        return (self.settings.base_url or DEFAULT_BASE_URL).rstrip("/")

    def _headers(self) -> dict[str, str]:
        return {"x-key": self.settings.api_key or "", "accept": "application/json"}

    def body(self, request: ProviderRequest) -> dict[str, Any]:
        """The documented request body for ``request.upstream_model``'s endpoint."""
        options = self.settings.options
        body: dict[str, Any] = {
            "prompt": request.prompt,
            "output_format": "jpeg" if request.output_format == "jpeg" else "png",
        }
        size = dimensions(request)
        if _takes_aspect_ratio(request.upstream_model):
            ratio = request.aspect_ratio or (reduced_ratio(*size) if size else None)
            if ratio:
                body["aspect_ratio"] = ratio
            if "raw" in options:
                body["raw"] = options["raw"]
        else:
            if size:
                body["width"], body["height"] = (_multiple_of_32(side) for side in size)
            if "prompt_upsampling" in options:
                body["prompt_upsampling"] = options["prompt_upsampling"]
        if request.seed is not None:
            body["seed"] = request.seed
        if "safety_tolerance" in options:
            body["safety_tolerance"] = options["safety_tolerance"]
        return body

    async def submit(self, request: ProviderRequest) -> Submitted:
        url = f"{self.base_url}/v1/{request.upstream_model}"
        response = await create_request(self, url, self.body(request), self._headers())
        if response.is_error:
            raise _submit_error(response)
        answer = as_dict(decode_json(response), "submit answer")
        job_id = answer.get("id")
        if not job_id:
            raise ProviderAmbiguous("BFL accepted the request but answered no id")
        polling_url = answer.get("polling_url") or f"/v1/get_result?id={job_id}"
        return Submitted({"id": str(job_id), "polling_url": job_url(polling_url, self.base_url)})

    async def poll(self, job: JobRef) -> JobStatus:
        url = job_url(job["polling_url"], self.base_url)
        return await poll_job(self, url, self._headers(), error=_poll_error, parse=self._status)

    def _status(self, answer: dict[str, Any]) -> JobStatus:
        status = answer.get("status")
        if status == "Ready":
            sample = as_dict(answer.get("result"), "result").get("sample")
            if not sample:
                raise ProviderAmbiguous("BFL result is Ready but has no sample URL")
            return JobStatus("succeeded", images=[GeneratedImage(url=str(sample))])
        if status in MODERATED:
            raise ContentPolicyViolation(f"BFL: {status} {answer.get('details') or ''}".strip())
        if status == "Task not found":
            raise JobFailed("BFL task not found or expired")
        if status == "Error":
            reason = answer.get("error") or answer.get("details")
            raise JobFailed(f"BFL generation failed: {reason}")
        # Pending, and any interim status the vendor may add later: keep polling.
        return JobStatus("running", progress=_progress(answer.get("progress")))
