"""A self-hosted ComfyUI server, driven through its HTTP API.

Follows the routes of ComfyUI's ``server.py``:

    POST /prompt   {prompt: <API-format graph>, client_id, prompt_id}
                   -> {prompt_id, number, node_errors} | 400 {error, node_errors}
    GET  /history/{prompt_id}   {} until the prompt finished, then {prompt_id: {outputs, status}}
    GET  /queue                 {queue_running: [[number, prompt_id, ...]], queue_pending: [...]}
    GET  /view?filename=&subfolder=&type=   an output image
    POST /interrupt {prompt_id}  stops the running prompt; POST /queue {delete: [id]} a pending one

The graph comes from a workflow template (provider option ``workflow`` inline or
``workflow_file``; a plain txt2img graph ships with the package) whose ``{{placeholders}}``
are filled per request: prompt, negative_prompt, seed, width, height, batch_size, steps, cfg,
checkpoint. ComfyUI accepts a client-chosen ``prompt_id`` but does not deduplicate it, so the
id is derived from the request's idempotency token and looked up before any resubmission.
A prompt in neither the history nor the queue is lost (a restart, a cleared queue): after a
grace period the job fails instead of being polled forever.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlencode

import httpx

from imagegate.errors import JobFailed, ProviderError
from imagegate.providers import _util
from imagegate.providers.base import (
    Completed,
    GeneratedImage,
    JobRef,
    JobStatus,
    Provider,
    ProviderRequest,
    ProviderSettings,
    Submitted,
    error_for_status,
    send,
)

DEFAULT_BASE_URL = "http://127.0.0.1:8188"
DEFAULT_LOST_AFTER_S = 10.0
_ID_NAMESPACE = uuid.UUID("7f0e1d2c-3b4a-5968-8776-a5b4c3d2e1f0")


def load_workflow(options: Mapping[str, Any]) -> dict[str, Any]:
    """The workflow template named by the options, else the packaged txt2img graph."""
    if isinstance(options.get("workflow"), dict):
        return dict(options["workflow"])
    if options.get("workflow_file"):
        text = Path(options["workflow_file"]).read_text(encoding="utf-8")
    else:
        text = resources.files(__package__).joinpath("comfyui_txt2img.json").read_text("utf-8")
    workflow = json.loads(text)
    if not isinstance(workflow, dict):
        raise ValueError("a ComfyUI workflow must be a JSON object in API format")
    return workflow


def fill(template: Any, values: Mapping[str, Any]) -> Any:
    """Copy ``template`` with ``{{name}}`` placeholders replaced.

    A string that is exactly one placeholder takes the value's own type (a seed stays an int);
    a placeholder inside longer text is replaced by the value's text.
    """
    if isinstance(template, dict):
        return {key: fill(value, values) for key, value in template.items()}
    if isinstance(template, list):
        return [fill(value, values) for value in template]
    if not isinstance(template, str) or "{{" not in template:
        return template
    whole = template.strip()
    if whole.startswith("{{") and whole.endswith("}}") and whole.count("{{") == 1:
        name = whole[2:-2].strip()
        if name in values:
            return values[name]
    for key, value in values.items():
        template = template.replace("{{" + key + "}}", str(value))
    return template


class ComfyUIProvider(Provider):
    """Submit-then-poll adapter for one ComfyUI server and one workflow template."""

    kind = "comfyui"
    max_n_per_call = 4
    submits_jobs = True
    # The prompt id comes from the idempotency token and is looked up before posting.
    idempotent_submit = True
    supports_cancel = True
    poll_interval_s = 1.0
    option_types: ClassVar[Mapping[str, type]] = {
        "workflow": dict,
        "workflow_file": str,
        "checkpoint": str,
        "steps": int,
        "cfg": float,
        "lost_after_s": float,
    }

    def __init__(self, settings: ProviderSettings, http: httpx.AsyncClient) -> None:
        super().__init__(settings, http)
        self.workflow = load_workflow(settings.options)
        self.client_id = f"imagegate-{settings.name}"
        self.lost_after_s = float(settings.options.get("lost_after_s", DEFAULT_LOST_AFTER_S))
        self._missing_since: dict[str, float] = {}

    @property
    def _base_url(self) -> str:
        return (self.settings.base_url or DEFAULT_BASE_URL).rstrip("/")

    def _values(self, request: ProviderRequest, prompt_id: str) -> dict[str, Any]:
        options = self.settings.options
        seed = request.seed if request.seed is not None else uuid.UUID(prompt_id).int % 2**32
        return {
            "prompt": request.prompt,
            "negative_prompt": request.negative_prompt or "",
            "seed": seed,
            "width": request.width or 1024,
            "height": request.height or 1024,
            "batch_size": request.n,
            "steps": int(options.get("steps", 20)),
            "cfg": float(options.get("cfg", 7.0)),
            "checkpoint": options.get("checkpoint", request.upstream_model),
        }

    async def submit(self, request: ProviderRequest) -> Completed | Submitted:
        token = request.idempotency_token
        prompt_id = str(uuid.uuid5(_ID_NAMESPACE, token) if token else uuid.uuid4())
        job = {"prompt_id": prompt_id}
        if token and await self._known(prompt_id):
            return Submitted(job=job)
        body = {
            "prompt": fill(self.workflow, self._values(request, prompt_id)),
            "client_id": self.client_id,
            "prompt_id": prompt_id,
        }
        response = await _util.create_request(
            self, f"{self._base_url}/prompt", body, self._headers()
        )
        if response.is_error:
            raise _prompt_error(response)
        answer = _util.json_object(response, "prompt answer")
        if answer.get("prompt_id") != prompt_id:
            # An older ComfyUI ignores client ids; follow the id it chose.
            job = {"prompt_id": str(answer.get("prompt_id"))}
        return Submitted(job=job)

    async def poll(self, job: JobRef) -> JobStatus:
        prompt_id = job["prompt_id"]
        entry = await self._history(prompt_id)
        if entry is None:
            status = _queue_status(await self._queue(), prompt_id)
            if status is not None:
                self._missing_since.pop(prompt_id, None)
                return status
            # It may have finished between the two reads: history is written first.
            entry = await self._history(prompt_id)
        if entry is None:
            return self._lost(prompt_id)
        self._missing_since.pop(prompt_id, None)
        return JobStatus("succeeded", images=self._outputs(entry))

    async def cancel(self, job: JobRef) -> None:
        prompt_id = job["prompt_id"]
        queue = await self._queue()
        if prompt_id in _ids(queue.get("queue_running")):
            await self._checked("POST", "/interrupt", json={"prompt_id": prompt_id})
        elif prompt_id in _ids(queue.get("queue_pending")):
            await self._checked("POST", "/queue", json={"delete": [prompt_id]})

    def _lost(self, prompt_id: str) -> JobStatus:
        first = self._missing_since.setdefault(prompt_id, time.monotonic())
        if time.monotonic() - first < self.lost_after_s:
            return JobStatus("running")
        self._missing_since.pop(prompt_id, None)
        raise JobFailed("comfyui lost the prompt: it is neither queued nor in the history")

    def _outputs(self, entry: dict[str, Any]) -> list[GeneratedImage]:
        _raise_if_failed(entry)
        outputs = entry.get("outputs")
        files = [
            image
            for node in (outputs.values() if isinstance(outputs, dict) else [])
            if isinstance(node, dict)
            for image in node.get("images", [])
            if isinstance(image, dict) and image.get("type", "output") == "output"
        ]
        if not files:
            raise JobFailed("comfyui finished the prompt without saving an image")
        return [GeneratedImage(url=self._view_url(image)) for image in files]

    def _view_url(self, image: dict[str, Any]) -> str:
        query = {key: str(image.get(key, "")) for key in ("filename", "subfolder", "type")}
        return f"{self._base_url}/view?{urlencode(query)}"

    async def _known(self, prompt_id: str) -> bool:
        if await self._history(prompt_id) is not None:
            return True
        queue = await self._queue()
        return prompt_id in _ids(queue.get("queue_running")) | _ids(queue.get("queue_pending"))

    async def _history(self, prompt_id: str) -> dict[str, Any] | None:
        body = await self._checked("GET", f"/history/{prompt_id}")
        entry = body.get(prompt_id)
        return entry if isinstance(entry, dict) else None

    async def _queue(self) -> dict[str, Any]:
        return await self._checked("GET", "/queue")

    async def _checked(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """A call that starts nothing; its failures are transient or auth problems."""
        req = self.http.build_request(
            method,
            self._base_url + path,
            headers=self._headers(),
            timeout=_util.request_timeout(self.settings),
            **kwargs,
        )
        response = await send(self.http, req, starts_job=False)
        if response.is_error:
            raise _util.poll_error(error_for_status(response, f"comfyui {path} failed"))
        if not response.content:
            return {}
        return _util.polled_json(response, f"comfyui {path} answer")

    def _headers(self) -> dict[str, str]:
        key = self.settings.api_key
        return {"Authorization": f"Bearer {key}"} if key else {}


def _ids(items: Any) -> set[str]:
    """Prompt ids of a ``/queue`` list, whose items are ``[number, prompt_id, ...]``."""
    if not isinstance(items, list):
        return set()
    return {str(item[1]) for item in items if isinstance(item, list) and len(item) > 1}


def _queue_status(queue: dict[str, Any], prompt_id: str) -> JobStatus | None:
    running, pending = queue.get("queue_running"), queue.get("queue_pending")
    if prompt_id in _ids(running):
        return JobStatus("running")
    if not isinstance(pending, list):
        return None
    numbers = {
        str(item[1]): item[0] for item in pending if isinstance(item, list) and len(item) > 1
    }
    if prompt_id not in numbers:
        return None
    ahead = sum(1 for number in numbers.values() if number < numbers[prompt_id])
    return JobStatus("queued", queue_position=ahead + len(_ids(running)))


def _raise_if_failed(entry: dict[str, Any]) -> None:
    """A history entry whose status is ``error`` failed or was interrupted."""
    status = entry.get("status")
    if not isinstance(status, dict) or status.get("status_str") != "error":
        return
    events = {
        message[0]: message[1]
        for message in status.get("messages", [])
        if isinstance(message, list) and len(message) == 2 and isinstance(message[1], dict)
    }
    if "execution_interrupted" in events:
        raise JobFailed("comfyui prompt was interrupted")
    error = events.get("execution_error", {})
    detail = f"{error.get('exception_type', 'error')}: {error.get('exception_message', '')}"
    raise JobFailed(f"comfyui workflow failed in node {error.get('node_id', '?')}: {detail}")


def _prompt_error(response: httpx.Response) -> ProviderError:
    """ComfyUI's 400 ``{error, node_errors}``: the graph or its inputs were refused."""
    try:
        body: Any = response.json()
    except ValueError:
        body = {}
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else error
    return error_for_status(response, f"comfyui refused the prompt: {message or 'no detail'}")
