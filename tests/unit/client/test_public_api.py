"""The SDK's public names: what ``import imagegate`` promises its users."""

from __future__ import annotations

import subprocess
import sys

import pytest

import imagegate
import imagegate.client

PUBLIC = {
    "Client",
    "AsyncClient",
    "ImagesResponse",
    "ImageData",
    "Task",
    "TaskList",
    "Model",
    "ModelList",
    "GenerateParams",
    "ImagegateClientError",
    "APIConnectionError",
    "APITimeoutError",
    "APIError",
    "APIResponseValidationError",
    "BadRequestError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "TaskNotFound",
    "ConflictError",
    "PayloadTooLargeError",
    "UnprocessableEntityError",
    "RateLimitError",
    "InternalServerError",
    "TaskError",
    "TaskFailed",
    "TaskTimeout",
}


def test_all_lists_exactly_the_public_sdk_names() -> None:
    assert set(imagegate.__all__) == PUBLIC
    assert imagegate.__all__ == imagegate.client.__all__


def test_every_public_name_is_importable_from_the_top_level() -> None:
    for name in imagegate.__all__:
        assert getattr(imagegate, name) is getattr(imagegate.client, name)


def test_every_sdk_error_shares_one_base_class() -> None:
    errors = [
        getattr(imagegate, n)
        for n in PUBLIC
        if n.endswith(("Error", "Failed", "Timeout", "NotFound"))
    ]
    assert all(issubclass(e, imagegate.ImagegateClientError) for e in errors)


def test_the_server_starts_without_loading_the_sdk() -> None:
    code = "import sys, imagegate.runtime; print('imagegate.client' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True)
    assert loaded.stdout.strip() == b"False"


def test_a_name_the_sdk_does_not_have_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Clinet'"):
        imagegate.Clinet  # noqa: B018
