"""``GET /v1/models`` and ``/v1/models/{id}``: what each model accepts (CONTRACT §5)."""

from __future__ import annotations

import json
import time
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from imagegate.api import deps
from imagegate.api.schemas import ModelList, ModelObject, errors
from imagegate.catalog import ModelSpec
from imagegate.errors import NotFound
from imagegate.store.base import ModelStats

router = APIRouter()

MIN_SAMPLES = 10  # fewer finished tasks than this in 24 h: ranked after every measured model


def model_object(spec: ModelSpec, default_deadline_s: float) -> dict[str, Any]:
    return {
        "id": spec.id,
        "object": "model",
        "created": spec.created,
        "owned_by": spec.owned_by,
        "imagegate": {
            "sizes": list(spec.sizes) if spec.sizes is not None else None,
            "min_side": spec.min_side,
            "max_side": spec.max_side,
            "default_size": spec.default_size,
            "max_n": spec.max_n,
            "max_prompt_length": spec.max_prompt_length,
            "parameters": sorted(spec.parameters),
            "qualities": _opt(spec.qualities),
            "styles": _opt(spec.styles),
            "backgrounds": _opt(spec.backgrounds),
            "aspect_ratios": _opt(spec.aspect_ratios),
            "resolutions": _opt(spec.resolutions),
            "output_formats": list(spec.output_formats),
            "sync": not spec.async_only,
            "async_only": spec.async_only,
            "deadline_s": spec.deadline_s or default_deadline_s,
            "description": spec.description,
        },
    }


def _opt(values: tuple[str, ...] | None) -> list[str] | None:
    return list(values) if values is not None else None


def rank(objects: list[dict[str, Any]], stats: list[ModelStats]) -> list[dict[str, Any]]:
    """Order by observed 24 h success rate; models with too few samples go last."""
    by_model = {s.model: s for s in stats}
    for obj in objects:
        s = by_model.get(obj["id"])
        samples = (s.completed + s.failed) if s else 0
        obj["imagegate"]["samples_24h"] = samples
        obj["imagegate"]["success_rate_24h"] = (s.completed / samples) if s and samples else None

    def key(obj: dict[str, Any]) -> tuple[int, float, str]:
        caps = obj["imagegate"]
        measured = caps["samples_24h"] >= MIN_SAMPLES
        return (0 if measured else 1, -(caps["success_rate_24h"] or 0.0), obj["id"])

    return sorted(objects, key=key)


@router.get(
    "/v1/models", summary="List models", response_model=ModelList, responses=errors(400, 401)
)
async def list_models(
    request: Request,
    _: str = Depends(deps.key_id),
    recommended_for: Literal["image"] | None = Query(default=None),
) -> Response:
    rt = deps.runtime(request)
    deadline = rt.settings.default_deadline
    objects = [model_object(spec, deadline) for spec in rt.catalog.models.values()]
    if recommended_for == "image":
        objects = rank(objects, await rt.store.model_stats(time.time() - 86400))
    body = {"object": "list", "data": objects}
    return Response(json.dumps(body), media_type="application/json")


@router.get(
    "/v1/models/{model_id:path}",
    summary="Get a model",
    response_model=ModelObject,
    responses=errors(401, 404),
)
async def get_model(request: Request, model_id: str, _: str = Depends(deps.key_id)) -> Response:
    rt = deps.runtime(request)
    spec = rt.catalog.model(model_id)
    if spec is None:
        raise NotFound(
            f"The model '{model_id}' does not exist.", code="model_not_found", param="model"
        )
    body = model_object(spec, rt.settings.default_deadline)
    return Response(json.dumps(body), media_type="application/json")
