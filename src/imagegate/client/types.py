"""Response models of the HTTP contract; every one keeps fields it does not know.

Gateways add fields over time (``progress``, vendor extras), so the models accept unknown keys
and expose them through pydantic's ``model_extra`` instead of failing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, model_validator

TERMINAL_STATUSES = frozenset({"completed", "failed"})


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class ImageData(_Model):
    """One image: a ``url`` or inline ``b64_json``, and the prompt the model really used."""

    url: str | None = None
    b64_json: str | None = None
    revised_prompt: str | None = None


class ImagesResponse(_Model):
    """A synchronous answer in the OpenAI Images shape."""

    created: int | None = None
    data: list[ImageData] = []


class Task(_Model):
    """A generation task as the status routes describe it.

    ``id`` and ``task_id`` are the same value; some gateways send only one of them, so each is
    filled from the other. ``poll_url`` is absent on gateways that do not send it.
    """

    id: str
    task_id: str
    status: str
    poll_url: str | None = None
    created: int | None = None
    updated: int | None = None
    model: str | None = None
    data: list[ImageData] = []
    error: str | None = None
    error_code: str | None = None
    progress: float | None = None
    queue_position: int | None = None
    cancelled: bool = False

    @model_validator(mode="before")
    @classmethod
    def _same_id(cls, value: Any) -> Any:
        if isinstance(value, dict) and ("id" in value) != ("task_id" in value):
            ident = value.get("id", value.get("task_id"))
            return {**value, "id": ident, "task_id": ident}
        return value

    @property
    def done(self) -> bool:
        """True once the task is ``completed`` or ``failed``; it will not change any more."""
        return self.status in TERMINAL_STATUSES


class TaskList(_Model):
    """One page of the caller's tasks, newest first; pass ``next_cursor`` as ``after``."""

    object: str = "list"
    data: list[Task] = []
    has_more: bool = False
    next_cursor: str | None = None


class Model(_Model):
    """A model the gateway serves; ``imagegate`` describes what it accepts, when present."""

    id: str
    object: str = "model"
    created: int | None = None
    owned_by: str | None = None
    imagegate: dict[str, Any] | None = None


class ModelList(_Model):
    object: str = "list"
    data: list[Model] = []


class GenerateParams(TypedDict, total=False):
    """Optional arguments of ``images.generate``; ``None`` means "do not send"."""

    model: str | None
    n: int | None
    size: str | None
    quality: str | None
    style: str | None
    response_format: Literal["url", "b64_json"] | None
    background: str | None
    output_format: Literal["png", "jpeg", "webp"] | None
    output_compression: int | None
    aspect_ratio: str | None
    resolution: str | None
    seed: int | None
    negative_prompt: str | None
    user: str | None
    async_: bool | None
    idempotency_key: str | None
    extra_body: Mapping[str, Any] | None
    extra_headers: Mapping[str, str] | None


def parse_generation(body: Any) -> ImagesResponse | Task:
    """A create answer is a task when it says so (``task_id``/``poll_url``/``status``)."""
    if isinstance(body, dict) and {"task_id", "poll_url", "status"} & body.keys():
        return Task.model_validate(body)
    return ImagesResponse.model_validate(body)
