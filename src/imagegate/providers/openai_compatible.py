"""Adapter for any OpenAI-compatible images upstream, including another imagegate.

Follows ``POST /v1/images/generations`` with the OpenAI request and error shapes. An upstream
that implements the asynchronous task contract (imagegate's, after the gateway whose task
routes it restates) answers a task object ``{task_id, poll_url, status, data, error}``
instead of images; we then follow the exact ``poll_url`` (``GET``) until ``completed`` or
``failed`` and cancel with ``DELETE /v1/tasks/{id}``. ``Prefer: respond-async`` asks for the
task form; an upstream that ignores the header simply answers with images.
"""

from __future__ import annotations

from typing import Any, Literal

import httpx

from imagegate.catalog import OPTIONAL_PARAMETERS
from imagegate.errors import (
    ContentPolicyViolation,
    JobFailed,
    ProviderAmbiguous,
)
from imagegate.providers._util import (
    as_dict,
    cancel_job,
    create_request,
    job_url,
    poll_job,
)
from imagegate.providers.base import (
    Completed,
    JobRef,
    JobStatus,
    Provider,
    ProviderRequest,
    ProviderSettings,
    Submitted,
    decode_json,
)
from imagegate.providers.openai import openai_error, parse_images

# Request fields forwarded when set (every optional parameter of the contract, and ``user``);
# ``output_format`` only when it is not the default, which plain OpenAI servers all share.
_FORWARDED = (*sorted(OPTIONAL_PARAMETERS), "user")
_ACTIVE: dict[str, Literal["queued", "running"]] = {"pending": "queued", "processing": "running"}


def _is_task(body: dict[str, Any]) -> bool:
    return "task_id" in body or "poll_url" in body


class OpenAICompatibleProvider(Provider):
    """Sync answers become ``Completed``; task answers become ``Submitted`` and are polled."""

    kind = "openai_compatible"
    max_n_per_call = 10
    submits_jobs = True
    idempotent_submit = True  # the task contract deduplicates by Idempotency-Key
    supports_cancel = True
    poll_interval_s = 3.0

    def __init__(self, settings: ProviderSettings, http: httpx.AsyncClient) -> None:
        if not settings.base_url:  # there is no default upstream: fail at start, not per task
            raise ValueError(f"provider {settings.name!r} of kind openai_compatible needs base_url")
        super().__init__(settings, http)
        self.base_url = settings.base_url.rstrip("/")

    def _headers(self) -> dict[str, str]:
        if self.settings.api_key:
            return {"Authorization": f"Bearer {self.settings.api_key}"}
        return {}

    def body(self, request: ProviderRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": request.upstream_model,
            "prompt": request.prompt,
            "n": request.n,
        }
        if request.size or (request.width and request.height):
            body["size"] = request.size or f"{request.width}x{request.height}"
        if request.output_format != "png":
            body["output_format"] = request.output_format
        for name in _FORWARDED:
            if (value := getattr(request, name)) is not None:
                body[name] = value
        return body

    async def submit(self, request: ProviderRequest) -> Completed | Submitted:
        headers = {**self._headers(), "Prefer": "respond-async"}
        if request.idempotency_token:
            # The upstream returns the same task for the same key: a resubmit is harmless.
            headers["Idempotency-Key"] = request.idempotency_token
        url = f"{self.base_url}/v1/images/generations"
        response = await create_request(self, url, self.body(request), headers)
        if response.is_error:
            raise openai_error(response)
        body = as_dict(decode_json(response), "images answer")
        if not _is_task(body):
            return Completed(parse_images(body))
        job = self._job(body)
        status = self._status(body)
        if status.state == "succeeded":
            return Completed(status.images)
        return Submitted(job)

    def _job(self, task: dict[str, Any]) -> JobRef:
        task_id = str(task.get("task_id") or task.get("id") or "")
        poll_url = task.get("poll_url") or (f"/v1/tasks/{task_id}" if task_id else None)
        if not task_id or not poll_url:
            raise ProviderAmbiguous("upstream task answer has no task_id")
        return {"task_id": task_id, "poll_url": job_url(str(poll_url), self.base_url)}

    async def poll(self, job: JobRef) -> JobStatus:
        url = job_url(job["poll_url"], self.base_url)
        return await poll_job(self, url, self._headers(), error=openai_error, parse=self._status)

    def _status(self, task: dict[str, Any]) -> JobStatus:
        status = task.get("status")
        if status == "completed":
            return JobStatus("succeeded", images=parse_images(task))
        if status == "failed":
            raise _task_failure(task)
        if status not in _ACTIVE:
            raise ProviderAmbiguous(f"upstream task has unknown status {status!r}")
        progress, position = task.get("progress"), task.get("queue_position")
        return JobStatus(
            _ACTIVE[status],
            progress=int(progress) if isinstance(progress, int | float) else None,
            queue_position=position if isinstance(position, int) else None,
        )

    async def cancel(self, job: JobRef) -> None:
        url = f"{self.base_url}/v1/tasks/{job['task_id']}"
        await cancel_job(self, "DELETE", url, self._headers(), error=openai_error)


def _task_failure(task: dict[str, Any]) -> JobFailed | ContentPolicyViolation:
    message = str(task.get("error") or "upstream task failed")
    code = task.get("error_code")
    if code == "content_policy_violation":
        return ContentPolicyViolation(message)
    return JobFailed(message, error_code="cancelled" if code == "cancelled" else "upstream_error")
