"""The seeds' own client code runs to completion against the gateway."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.integration import seeds_client
from tests.support.gateway import Gateway


@pytest.fixture
def seeds(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(seeds_client, "BASE_URL", gateway.base_url)
    return seeds_client


def _create(gateway: Gateway, size: str) -> dict[str, Any]:
    with gateway.client() as http:
        body: dict[str, Any] = http.post(
            "/v1/images/generations",
            json={"prompt": "a beautiful sunset over mountains", "size": size, "async": True},
        ).json()
    return body


@pytest.mark.parametrize(
    ("poll", "arg", "size"),
    [
        ("poll_image_task", "task_id", "320x192"),
        ("poll_image_generation", "task_id", "128x256"),
        ("poll_url", "poll_url", "256x256"),
    ],
)
def test_seed_polling_function_returns_a_working_image_url(
    gateway: Gateway, seeds: Any, poll: str, arg: str, size: str
) -> None:
    task = _create(gateway, size)
    function: Callable[..., str] = getattr(seeds, poll)
    url = function(task[arg], gateway.key, max_wait=60, interval=1)
    image = Image.open(io.BytesIO(httpx.get(url).content))
    image.load()
    assert f"{image.size[0]}x{image.size[1]}" == size


def test_seed_polling_function_raises_the_task_error(
    gateway_factory: Callable[..., Gateway], monkeypatch: pytest.MonkeyPatch
) -> None:
    failing = gateway_factory(env={"IMAGEGATE_LOCAL_FAILURE_RATE": "1"})
    monkeypatch.setattr(seeds_client, "BASE_URL", failing.base_url)
    task = _create(failing, "64x64")
    with pytest.raises(Exception, match="simulated a generation failure"):
        seeds_client.poll_image_task(task["task_id"], failing.key, max_wait=60, interval=1)
