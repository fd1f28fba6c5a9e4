"""Render tasks and results in the contract's shapes (CONTRACT §2-3)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from imagegate.engine.models import Task
from imagegate.engine.states import TaskStatus
from imagegate.storage.base import Storage

# Signed URLs expire on minute boundaries, so repeated polls of a finished task within the
# same minute render byte-identical bodies (and the same ETag).
_EXPIRY_STEP_S = 60


@dataclass(frozen=True)
class URLMaker:
    """Turns storage keys into absolute, signed, expiring URLs."""

    storage: Storage
    base_url: str
    ttl_s: float

    def expires_at(self, now: float | None = None) -> int:
        moment = (time.time() if now is None else now) + self.ttl_s
        return int(math.ceil(moment / _EXPIRY_STEP_S) * _EXPIRY_STEP_S)

    def url(self, key: str, expires_at: int) -> str:
        url = self.storage.url(key, expires_at)
        return self.base_url + url if url.startswith("/") else url


def poll_url(task_id: str) -> str:
    return f"/v1/tasks/{task_id}"


def task_body(task: Task, urls: URLMaker, expires_at: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "created": int(task.created_at),
        "updated": int(task.updated_at),
        "id": task.id,
        "task_id": task.id,
        "poll_url": poll_url(task.id),
        "model": task.model,
        "status": task.status.value,
    }
    if task.status is TaskStatus.COMPLETED:
        expires = expires_at or urls.expires_at()
        body["data"] = [
            {"url": urls.url(image.key, expires), "revised_prompt": image.revised_prompt}
            for image in task.images
        ]
        body["expires_at"] = expires
    elif task.status is TaskStatus.FAILED:
        body["data"] = []
        body["error"] = task.error or "Image generation failed."
        body["error_code"] = task.error_code or "upstream_error"
        if task.cancelled:
            body["cancelled"] = True
    else:
        placeholder = {"url": "", "revised_prompt": task.request.prompt}
        body["data"] = [dict(placeholder) for _ in range(task.request.n)]
        if task.progress is not None:
            body["progress"] = task.progress
        if task.queue_position is not None:
            body["queue_position"] = task.queue_position
    return body


def etag(task: Task, expires_at: int) -> str:
    return f'W/"{task.id}.{int(task.updated_at * 1000)}.{expires_at}"'
