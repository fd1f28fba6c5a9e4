"""Validate a create request's JSON object against the contract and the chosen model.

Pure functions: the API hands in the decoded body, gets an ``ImageRequest`` back or an
``InvalidRequest`` naming the first bad field, with every problem listed in ``field_errors``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from imagegate.catalog import Catalog, ModelSpec
from imagegate.engine.models import ImageRequest
from imagegate.errors import FieldError, InvalidRequest

MAX_N = 10
_SIZE = re.compile(r"^([1-9][0-9]{0,5})x([1-9][0-9]{0,5})$")

_STRING_FIELDS = (
    "model",
    "prompt",
    "size",
    "quality",
    "style",
    "response_format",
    "background",
    "output_format",
    "aspect_ratio",
    "resolution",
    "negative_prompt",
    "user",
)
_INT_FIELDS = ("n", "output_compression", "seed")
KNOWN_FIELDS = frozenset((*_STRING_FIELDS, *_INT_FIELDS, "async"))
_ENUMS = {
    "quality": "qualities",
    "style": "styles",
    "background": "backgrounds",
    "aspect_ratio": "aspect_ratios",
    "resolution": "resolutions",
}


@dataclass(frozen=True)
class CreateRequest:
    request: ImageRequest
    spec: ModelSpec
    wants_async: bool


class _Problems:
    """Collects field problems; the first one decides the error's code and param."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str, str]] = []

    def add(self, field: str, message: str, code: str = "invalid_value") -> None:
        self.items.append((field, message, code))

    def raise_if_any(self) -> None:
        if not self.items:
            return
        field, message, code = self.items[0]
        raise InvalidRequest(
            message,
            code=code,
            param=field,
            field_errors=[FieldError(f, m) for f, m, _ in self.items],
        )


def _check_types(body: dict[str, Any], problems: _Problems) -> None:
    for name in sorted(set(body) - KNOWN_FIELDS):
        problems.add(name, f"Unrecognized request argument supplied: {name}", "unknown_parameter")
    for name in _STRING_FIELDS:
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            problems.add(name, f"'{name}' must be a string")
    for name in _INT_FIELDS:
        value = body.get(name)
        if isinstance(value, float) and value.is_integer():
            body[name] = int(value)  # JSON has one number type: 2.0 is the integer 2
        elif value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            problems.add(name, f"'{name}' must be an integer")
    if body.get("async") is not None and not isinstance(body["async"], bool):
        problems.add("async", "'async' must be a boolean")


def _resolve_model(body: dict[str, Any], catalog: Catalog) -> ModelSpec:
    model_id = body.get("model") or catalog.default_model
    if not model_id:
        raise InvalidRequest("'model' is required", param="model", code="invalid_value")
    spec = catalog.model(model_id)
    if spec is None:
        message = f"The model '{model_id}' does not exist. GET /v1/models lists the models."
        raise InvalidRequest(
            message,
            code="model_not_found",
            param="model",
            field_errors=[FieldError("model", message)],
        )
    return spec


def _check_prompt(body: dict[str, Any], spec: ModelSpec, problems: _Problems) -> None:
    prompt = body.get("prompt")
    if prompt is None:
        problems.add("prompt", "'prompt' is required")
    elif not prompt.strip():
        problems.add("prompt", "'prompt' must not be empty")
    elif len(prompt) > spec.max_prompt_length:
        problems.add(
            "prompt",
            f"'prompt' is {len(prompt)} characters; {spec.id} accepts at most "
            f"{spec.max_prompt_length}",
        )


def _check_n(body: dict[str, Any], spec: ModelSpec, problems: _Problems) -> None:
    n = body.get("n", 1)
    limit = min(MAX_N, spec.max_n)
    if not 1 <= n <= limit:
        problems.add("n", f"'n' must be between 1 and {limit} for {spec.id}, got {n}")


def check_size(size: str, spec: ModelSpec) -> str | None:
    """Why ``size`` is not acceptable for ``spec``, or None when it is."""
    if size == "auto":
        return None
    if spec.sizes is not None:
        if size in spec.sizes:
            return None
        return f"'size' must be one of {', '.join(('auto', *spec.sizes))} for {spec.id}"
    match = _SIZE.match(size)
    if not match:
        return "'size' must be 'auto' or WIDTHxHEIGHT, for example 1024x1024"
    lo, hi = spec.min_side, spec.max_side
    if not all(lo <= int(side) <= hi for side in match.groups()):
        return f"'size' sides must be between {lo} and {hi} pixels for {spec.id}"
    return None


def _check_enums(body: dict[str, Any], spec: ModelSpec, problems: _Problems) -> None:
    for name, attr in _ENUMS.items():
        value = body.get(name)
        if value is None:
            continue
        if name not in spec.parameters:
            problems.add(name, f"{spec.id} does not support '{name}'", "unsupported_parameter")
            continue
        allowed: tuple[str, ...] | None = getattr(spec, attr)
        if allowed is not None and value not in allowed:
            problems.add(name, f"'{name}' must be one of {', '.join(allowed)} for {spec.id}")


def _check_options(body: dict[str, Any], spec: ModelSpec, problems: _Problems) -> None:
    _check_enums(body, spec, problems)
    for name in ("seed", "negative_prompt", "output_compression"):
        if body.get(name) is not None and name not in spec.parameters:
            problems.add(name, f"{spec.id} does not support '{name}'", "unsupported_parameter")
    if body.get("response_format", "url") not in ("url", "b64_json"):
        problems.add("response_format", "'response_format' must be 'url' or 'b64_json'")
    if body.get("output_format", "png") not in spec.output_formats:
        allowed = ", ".join(spec.output_formats)
        problems.add("output_format", f"'output_format' must be one of {allowed} for {spec.id}")
    compression = body.get("output_compression")
    if compression is not None and not 0 <= compression <= 100:
        problems.add("output_compression", "'output_compression' must be between 0 and 100")
    seed = body.get("seed")
    if seed is not None and not 0 <= seed < 2**63:
        problems.add("seed", "'seed' must be between 0 and 2^63-1")


def validate_create(body: dict[str, Any], catalog: Catalog, *, prefer_async: bool) -> CreateRequest:
    """Check a decoded create body; raise ``InvalidRequest`` naming the field at fault."""
    problems = _Problems()
    _check_types(body, problems)
    problems.raise_if_any()
    spec = _resolve_model(body, catalog)
    _check_prompt(body, spec, problems)
    _check_n(body, spec, problems)
    if body.get("size") is not None and (why := check_size(body["size"], spec)):
        problems.add("size", why)
    _check_options(body, spec, problems)
    problems.raise_if_any()
    fields = {k: v for k, v in body.items() if k != "async" and v is not None}
    fields["model"] = spec.id
    request = ImageRequest.from_json(fields)
    wants_async = bool(body.get("async")) or prefer_async or spec.async_only
    return CreateRequest(request=request, spec=spec, wants_async=wants_async)
