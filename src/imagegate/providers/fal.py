"""fal.ai through its queue API.

Follows fal's documented queue endpoints (Model APIs > Inference > Queue):

    POST https://queue.fal.run/{model_id}     -> {request_id, status_url, response_url, cancel_url}
    GET  status_url                           -> {status: IN_QUEUE | IN_PROGRESS | COMPLETED,
                                                  queue_position, ...} (202 until done, then 200)
    GET  response_url                         -> the model's output, or the model's own error
    PUT  cancel_url                           -> 202 CANCELLATION_REQUESTED | 400 ALREADY_COMPLETED

Auth is ``Authorization: Key <key>``. The URLs fal returns are used as given: fal documents that
status, result and cancel paths drop the model's sub-path, so rebuilding them is a bug. fal keeps
a result for minutes to an hour and its CDN files expire, so images must be fetched promptly.
Model errors carry ``detail: [{loc, msg, type}]``; ``type == "content_policy_violation"`` is a
moderation refusal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from imagegate.errors import (
    ContentPolicyViolation,
    JobFailed,
    ProviderAmbiguous,
    ProviderError,
    ProviderUnavailable,
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
)

DEFAULT_BASE_URL = "https://queue.fal.run"

# fal's named sizes; a request for exactly one of these sends the name, anything else the pixels.
IMAGE_SIZE_NAMES = {
    (512, 512): "square",
    (1024, 1024): "square_hd",
    (768, 1024): "portrait_4_3",
    (576, 1024): "portrait_16_9",
    (1024, 768): "landscape_4_3",
    (1024, 576): "landscape_16_9",
}
_JOB_URLS = ("status_url", "response_url", "cancel_url")


class FalProvider(Provider):
    """Submit-then-poll adapter for any fal text-to-image endpoint."""

    kind = "fal"
    max_n_per_call = 4
    submits_jobs = True
    supports_cancel = True
    poll_interval_s = 1.0
    requires_api_key = True
    option_types: ClassVar[Mapping[str, type]] = {"extra_input": dict}

    @property
    def _base_url(self) -> str:
        return (self.settings.base_url or DEFAULT_BASE_URL).rstrip("/")

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Key {self.settings.api_key or ''}"}

    def _input(self, request: ProviderRequest) -> dict[str, Any]:
        body: dict[str, Any] = {"prompt": request.prompt, "num_images": request.n}
        if request.width and request.height:
            size = (request.width, request.height)
            body["image_size"] = IMAGE_SIZE_NAMES.get(
                size, {"width": request.width, "height": request.height}
            )
        elif request.aspect_ratio:
            body["aspect_ratio"] = request.aspect_ratio
        optional = {
            "seed": request.seed,
            "negative_prompt": request.negative_prompt,
            "output_format": request.output_format,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        body.update(self.settings.options.get("extra_input", {}))
        return body

    async def submit(self, request: ProviderRequest) -> Completed | Submitted:
        url = f"{self._base_url}/{request.upstream_model.strip('/')}"
        response = await _util.create_request(self, url, self._input(request), self._headers())
        if response.is_error:
            raise _model_error(response, "fal rejected the request")
        body = _util.json_object(response, "queue answer")
        missing = [key for key in ("request_id", *_JOB_URLS) if not isinstance(body.get(key), str)]
        if missing:
            raise ProviderAmbiguous(f"fal queue answer lacks {', '.join(missing)}")
        # We send our key to these URLs, so each must stay on fal's own site.
        job = {key: _util.job_url(body[key], self._base_url) for key in _JOB_URLS}
        return Submitted(job={"request_id": body["request_id"], **job})

    async def poll(self, job: JobRef) -> JobStatus:
        status = await _util.poll_job(
            self,
            job["status_url"],
            self._headers(),
            error=lambda r: error_for_status(r, "fal status check failed"),
            parse=_queue_status,
        )
        if status.state != "succeeded":
            return status
        return JobStatus("succeeded", images=await self._result(job))

    async def _result(self, job: JobRef) -> list[GeneratedImage]:
        response = await _util.job_request(self, "GET", job["response_url"], self._headers())
        if response.status_code in (404, 410):
            raise JobFailed("fal no longer holds this result (it expired)", status=404)
        if response.is_error:
            raise _result_error(response)
        return _images(_util.polled_json(response, "result"))

    async def cancel(self, job: JobRef) -> None:
        response = await _util.job_request(self, "PUT", job["cancel_url"], self._headers())
        # 400 ALREADY_COMPLETED and 404 NOT_FOUND leave nothing to stop: the next poll tells.
        if response.is_error and response.status_code not in (400, 404):
            raise _util.poll_error(error_for_status(response, "fal cancel failed"))


def _queue_status(status: dict[str, Any]) -> JobStatus:
    """A status answer; ``succeeded`` here still has its images to fetch."""
    state = status.get("status")
    if state == "IN_QUEUE":
        position = status.get("queue_position")
        return JobStatus("queued", queue_position=position if isinstance(position, int) else None)
    if state == "IN_PROGRESS":
        return JobStatus("running")
    if state == "COMPLETED" and not status.get("error"):
        return JobStatus("succeeded")
    if state in ("COMPLETED", "FAILED", "CANCELED", "CANCELLED"):
        raise _completed_error(status)
    raise ProviderUnavailable(f"fal answered an unknown queue status {state!r}")


def _detail_types(body: Any) -> tuple[list[str], str]:
    """The error ``type`` codes and a readable message from a fal error body."""
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, str):
        return [str(body.get("error_type", ""))], detail
    if not isinstance(detail, list):
        return [], ""
    items = [item for item in detail if isinstance(item, dict)]
    types = [str(item.get("type", "")) for item in items]
    return types, "; ".join(str(item.get("msg", "")) for item in items)


def _error_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _model_error(response: httpx.Response, context: str) -> ProviderError:
    """A rejected submit: moderation when fal says so, otherwise by HTTP status."""
    types, message = _detail_types(_error_body(response))
    text = f"{context}: {message}" if message else context
    return error_for_status(response, text, moderation="content_policy_violation" in types)


def _result_error(response: httpx.Response) -> ProviderError:
    """The model ran and answered an error at the result URL: the job failed."""
    types, message = _detail_types(_error_body(response))
    text = f"fal job failed: {message or f'HTTP {response.status_code}'}"
    if "content_policy_violation" in types:
        return ContentPolicyViolation(text, status=response.status_code)
    if response.status_code in (401, 403, 429) or response.status_code >= 500:
        return _util.poll_error(error_for_status(response, "fal result fetch failed"))
    return JobFailed(text, status=response.status_code)


def _completed_error(status: dict[str, Any]) -> ProviderError:
    message = f"fal job ended with {status.get('error_type') or status.get('status')}: "
    message += str(status.get("error") or "no detail")
    if status.get("error_type") == "content_policy_violation":
        return ContentPolicyViolation(message)
    return JobFailed(message)


def _images(result: dict[str, Any]) -> list[GeneratedImage]:
    """Images of a fal output; its safety checker blanks flagged images, which we refuse."""
    files = result.get("images")
    if not isinstance(files, list) and isinstance(result.get("image"), dict):
        files = [result["image"]]
    if not isinstance(files, list) or not files:
        raise JobFailed("fal result holds no images")
    flags = result.get("has_nsfw_concepts")
    if isinstance(flags, list) and any(flags):
        raise ContentPolicyViolation("fal's safety checker flagged the generated image")
    images = []
    for item in files:
        url = item.get("url") if isinstance(item, dict) else None
        if not isinstance(url, str) or not url:
            raise JobFailed("fal result holds an image without a URL")
        images.append(_util.image_from_url(url))
    return images
