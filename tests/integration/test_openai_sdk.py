"""The official ``openai`` package generates through the gateway, sync and async."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator

import httpx
import openai
import pytest
from PIL import Image

from tests.support.gateway import Gateway


@pytest.fixture
def client(gateway: Gateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=f"{gateway.base_url}/v1", api_key=gateway.key, max_retries=0
    ) as sdk:
        yield sdk


def test_generate_returns_urls(client: openai.OpenAI) -> None:
    result = client.images.generate(model="local", prompt="a paper boat", size="256x256", n=2)
    assert result.data is not None and len(result.data) == 2
    for item in result.data:
        assert item.url is not None and item.revised_prompt == "a paper boat"
        image = Image.open(io.BytesIO(httpx.get(item.url).content))
        assert image.size == (256, 256)


def test_generate_returns_b64_json(client: openai.OpenAI) -> None:
    result = client.images.generate(
        model="local", prompt="a paper boat", size="256x256", response_format="b64_json"
    )
    assert result.data is not None and result.data[0].b64_json
    image = Image.open(io.BytesIO(base64.b64decode(result.data[0].b64_json)))
    assert image.size == (256, 256)


def test_async_extra_body_returns_task_fields(client: openai.OpenAI, gateway: Gateway) -> None:
    result = client.images.generate(
        model="local", prompt="a paper boat", size="256x256", extra_body={"async": True}
    )
    extra = result.model_extra or {}
    assert extra["status"] == "pending"
    assert extra["task_id"] and extra["poll_url"] == f"/v1/tasks/{extra['task_id']}"
    status = httpx.get(gateway.base_url + extra["poll_url"], headers=gateway.headers)
    assert status.json()["task_id"] == extra["task_id"]


def test_sdk_raises_typed_errors(client: openai.OpenAI, gateway: Gateway) -> None:
    with pytest.raises(openai.BadRequestError) as bad:
        client.images.generate(model="no-such-model", prompt="x")
    assert bad.value.code == "model_not_found"
    with (
        openai.OpenAI(base_url=f"{gateway.base_url}/v1", api_key="sk-wrong-0000000") as anon,
        pytest.raises(openai.AuthenticationError),
    ):
        anon.images.generate(model="local", prompt="x")
