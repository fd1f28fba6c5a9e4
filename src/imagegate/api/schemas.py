"""Pydantic models that document the contract in ``/openapi.json``.

Handlers validate bodies with ``engine.validation`` (so errors follow the contract exactly);
these models describe the same shapes for the OpenAPI document.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ImageGenerationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, max_length=4000)
    model: str | None = None
    n: int = Field(default=1, ge=1, le=10)
    size: str | None = Field(default=None, description="'auto' or WIDTHxHEIGHT")
    quality: str | None = None
    style: str | None = None
    response_format: Literal["url", "b64_json"] = "url"
    background: str | None = None
    output_format: Literal["png", "jpeg", "webp"] = "png"
    output_compression: int | None = Field(default=None, ge=0, le=100)
    aspect_ratio: str | None = None
    resolution: str | None = None
    seed: int | None = Field(default=None, ge=0)
    negative_prompt: str | None = None
    user: str | None = None
    async_: bool = Field(default=False, alias="async")


class ImageItem(BaseModel):
    url: str | None = None
    b64_json: str | None = None
    revised_prompt: str | None = None


class ImagesResponse(BaseModel):
    created: int
    data: list[ImageItem]


class TaskObject(BaseModel):
    created: int
    updated: int | None = None
    id: str
    task_id: str
    poll_url: str
    model: str | None = None
    status: Literal["pending", "processing", "completed", "failed"]
    data: list[ImageItem]
    error: str | None = None
    error_code: str | None = None
    cancelled: bool | None = None
    progress: int | None = None
    queue_position: int | None = None
    expires_at: int | None = None


class TaskList(BaseModel):
    object: Literal["list"] = "list"
    data: list[TaskObject]
    has_more: bool
    next_cursor: str | None


class ErrorBody(BaseModel):
    message: str
    type: str
    code: str | None
    param: str | None
    retry_after: int | None = None


class FieldProblem(BaseModel):
    field: str
    message: str


class ErrorEnvelope(BaseModel):
    error: ErrorBody
    validation_errors: list[FieldProblem] | None = None


class ModelCapabilities(BaseModel):
    sizes: list[str] | None
    min_side: int
    max_side: int
    default_size: str
    max_n: int
    max_prompt_length: int
    parameters: list[str]
    qualities: list[str] | None
    styles: list[str] | None
    backgrounds: list[str] | None
    aspect_ratios: list[str] | None
    resolutions: list[str] | None
    output_formats: list[str]
    sync: bool
    async_only: bool
    deadline_s: float
    description: str
    success_rate_24h: float | None = None
    samples_24h: int | None = None


class ModelObject(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str
    imagegate: ModelCapabilities


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelObject]


def errors(*statuses: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI ``responses`` entries for error statuses, all in the envelope shape."""
    return {status: {"model": ErrorEnvelope} for status in statuses}
