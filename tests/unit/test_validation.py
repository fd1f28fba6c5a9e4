"""Create-request validation: every bad field gets a 400 that names it."""

from __future__ import annotations

from typing import Any

import pytest

from imagegate.catalog import ModelSpec, Route, default_catalog
from imagegate.engine.validation import check_size, validate_create
from imagegate.errors import InvalidRequest

CATALOG = default_catalog()


def _error(body: dict[str, Any]) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        validate_create(body, CATALOG, prefer_async=False)
    return info.value


def test_a_minimal_request_uses_the_default_model() -> None:
    created = validate_create({"prompt": "a cat"}, CATALOG, prefer_async=False)
    assert created.request.model == "local"
    assert created.request.n == 1
    assert not created.wants_async


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"prompt": "x", "n": "two"}, "n", "invalid_value"),
        ({"prompt": "x", "n": 0}, "n", "invalid_value"),
        ({"prompt": "x", "n": 11}, "n", "invalid_value"),
        ({"prompt": "x", "n": True}, "n", "invalid_value"),
        ({"prompt": "x", "size": "abc"}, "size", "invalid_value"),
        ({"prompt": "x", "size": "0x0"}, "size", "invalid_value"),
        ({"prompt": "x", "size": "100000x100000"}, "size", "invalid_value"),
        ({"prompt": ""}, "prompt", "invalid_value"),
        ({"prompt": "   "}, "prompt", "invalid_value"),
        ({"prompt": "x" * 100_000}, "prompt", "invalid_value"),
        ({}, "prompt", "invalid_value"),
        ({"prompt": 5}, "prompt", "invalid_value"),
        ({"prompt": "x", "model": "no-such-model"}, "model", "model_not_found"),
        ({"prompt": "x", "colour": "red"}, "colour", "unknown_parameter"),
        ({"prompt": "x", "response_format": "gif"}, "response_format", "invalid_value"),
        ({"prompt": "x", "output_format": "bmp"}, "output_format", "invalid_value"),
        ({"prompt": "x", "output_compression": 101}, "output_compression", "invalid_value"),
        ({"prompt": "x", "quality": "ultra"}, "quality", "invalid_value"),
        ({"prompt": "x", "async": "yes"}, "async", "invalid_value"),
        ({"prompt": "x", "seed": -1}, "seed", "invalid_value"),
    ],
)
def test_bad_fields_are_named(body: dict[str, Any], param: str, code: str) -> None:
    error = _error(body)
    assert error.param == param
    assert error.code == code
    assert error.status == 400
    assert param in error.message or code == "model_not_found"


def test_every_problem_is_listed_not_only_the_first() -> None:
    error = _error({"prompt": "", "n": 50, "size": "huge"})
    assert [e.field for e in error.field_errors] == ["prompt", "n", "size"]


def test_unsupported_parameter_for_a_model_names_it() -> None:
    spec = ModelSpec(id="m", routes=(Route("local", "local"),), parameters=frozenset({"seed"}))
    catalog = type(CATALOG)(providers=CATALOG.providers, models={"m": spec}, default_model="m")
    with pytest.raises(InvalidRequest) as info:
        validate_create({"prompt": "x", "style": "vivid"}, catalog, prefer_async=False)
    assert info.value.code == "unsupported_parameter"
    assert info.value.param == "style"


def test_fixed_size_lists_are_enforced_and_reported() -> None:
    spec = ModelSpec(id="m", routes=(), sizes=("1024x1024", "1024x768"))
    assert check_size("1024x768", spec) is None
    assert check_size("auto", spec) is None
    reason = check_size("512x512", spec)
    assert reason is not None and "1024x768" in reason


@pytest.mark.parametrize(
    ("body", "prefer", "expected"),
    [({"prompt": "x", "async": True}, False, True), ({"prompt": "x"}, True, True)],
)
def test_async_is_chosen_by_field_or_prefer_header(
    body: dict[str, Any], prefer: bool, expected: bool
) -> None:
    assert validate_create(body, CATALOG, prefer_async=prefer).wants_async is expected
