"""Replicate predictions API adapter.

Follows the documented endpoints: ``POST /v1/models/{owner}/{name}/predictions`` for official
models and ``POST /v1/predictions`` with ``version`` for ``owner/name:version``, header
``Authorization: Bearer``, and sync mode ``Prefer: wait=N`` (the answer may already be
``succeeded``); ``GET urls.get`` polls and ``POST urls.cancel`` cancels. Statuses:
``starting``, ``processing``, ``succeeded``, ``failed``, ``canceled``. ``output`` is a URL or
a list of URLs whose files are deleted an hour later (``data_removed``); ``logs`` carry the
model's progress bar. Errors are problem details ``{"title", "detail", "status"}``.
"""

from __future__ import annotations

import re
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
    cancel_job,
    create_request,
    decode_base64,
    dimensions,
    job_url,
    poll_job,
    reduced_ratio,
)
from imagegate.providers.base import (
    Completed,
    GeneratedImage,
    JobRef,
    JobStatus,
    Provider,
    ProviderRequest,
    Submitted,
    decode_json,
    error_for_status,
)

DEFAULT_BASE_URL = "https://api.replicate.com"
# Ratios the popular text-to-image models accept by name; others go as "custom" + pixels.
NAMED_RATIOS = frozenset({"1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "3:4", "4:3", "9:16"})
# The model's tqdm bar in the logs: " 45%|████▌     | 9/20 [...]"; the last one counts.
_PROGRESS = re.compile(r"^\s*(\d{1,3})%\s*\|", re.MULTILINE)
# How safety checkers of hosted models word a refusal ("NSFW content detected", "E005").
_MODERATION = re.compile(r"nsfw|flagged as sensitive|\(E005\)", re.IGNORECASE)


def _problem(response: httpx.Response) -> str:
    """The message of a problem-details body ``{"title", "detail", "status"}``."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return response.reason_phrase or "upstream error"
    parts = [str(body[key]) for key in ("title", "detail") if body.get(key)]
    return ": ".join(parts) or response.reason_phrase or "upstream error"


def _create_error(response: httpx.Response) -> ProviderError:
    message = _problem(response)
    if response.status_code == 402:  # no credit: this route cannot work until topped up
        return ProviderAuthError(f"{message} (HTTP 402)", status=402)
    return error_for_status(response, message)


def _job_error(response: httpx.Response) -> ProviderError:
    return error_for_status(response, _problem(response))


def _outputs(output: Any) -> list[GeneratedImage]:
    items = output if isinstance(output, list) else [output]
    images = []
    for item in items:
        if not isinstance(item, str) or not item:
            raise ProviderAmbiguous("Replicate output is not a file URL")
        if item.startswith("data:"):
            images.append(GeneratedImage(data=decode_base64(item)))
        else:
            images.append(GeneratedImage(url=item))
    return images


def _progress(logs: Any) -> int | None:
    found = _PROGRESS.findall(logs) if isinstance(logs, str) else []
    return min(100, int(found[-1])) if found else None


def _failure(prediction: dict[str, Any]) -> ProviderError:
    if prediction.get("status") == "canceled":
        return JobFailed("Replicate prediction was canceled", error_code="cancelled")
    message = str(prediction.get("error") or "Replicate prediction failed")
    if _MODERATION.search(message):
        return ContentPolicyViolation(message)
    return JobFailed(message)


class ReplicateProvider(Provider):
    """Submit-then-poll with an optional short synchronous wait; cancellable."""

    kind = "replicate"
    max_n_per_call = 1
    submits_jobs = True
    supports_cancel = True
    requires_api_key = True
    poll_interval_s = 1.0
    option_types: ClassVar[Mapping[str, type]] = {
        # Seconds the create call may wait for the result (``Prefer: wait=N``, 1..60); 0 off.
        "wait_s": int,
    }

    @property
    def base_url(self) -> str:
        return (self.settings.base_url or DEFAULT_BASE_URL).rstrip("/")

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.api_key}"}

    def model_input(self, request: ProviderRequest) -> dict[str, Any]:
        """The ``input`` object, in the names the common image models on Replicate use."""
        model_input: dict[str, Any] = {"prompt": request.prompt}
        size = dimensions(request)
        if request.aspect_ratio:
            model_input["aspect_ratio"] = request.aspect_ratio
        elif size:
            ratio = reduced_ratio(*size)
            model_input["aspect_ratio"] = ratio if ratio in NAMED_RATIOS else "custom"
            model_input["width"], model_input["height"] = size
        model_input["output_format"] = (
            "jpg" if request.output_format == "jpeg" else request.output_format
        )
        optional = {
            "output_quality": request.output_compression,
            "seed": request.seed,
            "negative_prompt": request.negative_prompt,
        }
        model_input.update({key: value for key, value in optional.items() if value is not None})
        return model_input

    def _create_url_and_body(self, request: ProviderRequest) -> tuple[str, dict[str, Any]]:
        model, _, version = request.upstream_model.partition(":")
        body: dict[str, Any] = {"input": self.model_input(request)}
        if version:
            body["version"] = version
            return f"{self.base_url}/v1/predictions", body
        return f"{self.base_url}/v1/models/{model}/predictions", body

    async def submit(self, request: ProviderRequest) -> Completed | Submitted:
        url, body = self._create_url_and_body(request)
        headers = self._headers()
        wait_s = int(self.settings.options.get("wait_s", 5))
        if wait_s > 0:
            headers["Prefer"] = f"wait={min(wait_s, 60)}"
        response = await create_request(self, url, body, headers, extra_wait_s=wait_s)
        if response.is_error:
            raise _create_error(response)
        prediction = as_dict(decode_json(response), "prediction")
        job = self._job(prediction)
        status = self._status(prediction)
        if status.state == "succeeded":
            return Completed(status.images)
        return Submitted(job)

    def _job(self, prediction: dict[str, Any]) -> JobRef:
        prediction_id = prediction.get("id")
        if not prediction_id:
            raise ProviderAmbiguous("Replicate answered a prediction without an id")
        urls = prediction.get("urls")
        urls = urls if isinstance(urls, dict) else {}
        own = f"/v1/predictions/{prediction_id}"
        return {
            "id": str(prediction_id),
            "get": job_url(str(urls.get("get") or own), self.base_url),
            "cancel": job_url(str(urls.get("cancel") or f"{own}/cancel"), self.base_url),
        }

    async def poll(self, job: JobRef) -> JobStatus:
        url = job_url(job["get"], self.base_url)
        return await poll_job(self, url, self._headers(), error=_job_error, parse=self._status)

    def _status(self, prediction: dict[str, Any]) -> JobStatus:
        status = prediction.get("status")
        if status == "starting":
            return JobStatus("queued")
        if status == "processing":
            return JobStatus("running", progress=_progress(prediction.get("logs")))
        if status == "succeeded":
            if prediction.get("data_removed") or prediction.get("output") is None:
                raise JobFailed("Replicate removed the prediction's output before we fetched it")
            return JobStatus("succeeded", images=_outputs(prediction["output"]))
        if status in ("failed", "canceled"):
            raise _failure(prediction)
        raise ProviderAmbiguous(f"Replicate prediction has unknown status {status!r}")

    async def cancel(self, job: JobRef) -> None:
        url = job_url(job["cancel"], self.base_url)
        await cancel_job(self, "POST", url, self._headers(), error=_job_error)
