"""The Gemini adapter against a fake Gemini API over loopback HTTP."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest
from PIL import Image

from imagegate.errors import (
    ContentPolicyViolation,
    JobFailed,
    ProviderAmbiguous,
    ProviderAuthError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
)
from imagegate.providers.base import Completed, ProviderRequest, ProviderSettings
from imagegate.providers.gemini import GeminiProvider
from tests.fakes.gemini import GeminiState
from tests.fakes.scripting import Fault

MODEL = "gemini-2.5-flash-image"


@pytest.fixture
def state() -> GeminiState:
    return GeminiState()


def provider(
    http: httpx.AsyncClient, base_url: str, key: str | None = "gemini-test-key", **kw: Any
) -> GeminiProvider:
    settings = ProviderSettings(name="gemini", kind="gemini", base_url=base_url, api_key=key, **kw)
    return GeminiProvider(settings, http)


def request(prompt: str = "a lighthouse", model: str = MODEL, **kw: Any) -> ProviderRequest:
    return ProviderRequest(upstream_model=model, prompt=prompt, **kw)


async def test_image_comes_back_inline_in_the_requested_ratio(
    http: httpx.AsyncClient, base_url: str, state: GeminiState
) -> None:
    answer = await provider(http, base_url).submit(request(width=1280, height=720, seed=3))

    assert isinstance(answer, Completed)
    assert len(answer.images) == 1
    data = answer.images[0].data
    assert data is not None
    assert Image.open(io.BytesIO(data)).size == (64, 36)
    config = state.bodies[0]["generationConfig"]
    assert config["responseModalities"] == ["TEXT", "IMAGE"]
    assert config["imageConfig"] == {"aspectRatio": "16:9"}
    assert config["seed"] == 3


async def test_extra_pictures_in_an_answer_are_not_passed_on(
    http: httpx.AsyncClient, base_url: str, state: GeminiState
) -> None:
    state.images_per_answer = 3

    answer = await provider(http, base_url).submit(request())

    assert isinstance(answer, Completed)
    assert len(answer.images) == 1
    assert provider(http, base_url).max_n_per_call == 1


async def test_resolution_is_sent_as_image_size(
    http: httpx.AsyncClient, base_url: str, state: GeminiState
) -> None:
    await provider(http, base_url).submit(
        request(model="gemini-3-pro-image-preview", aspect_ratio="4:3", resolution="2k")
    )

    assert state.bodies[0]["generationConfig"]["imageConfig"] == {
        "aspectRatio": "4:3",
        "imageSize": "2K",
    }


async def test_blocked_prompt_is_content_policy(http: httpx.AsyncClient, base_url: str) -> None:
    with pytest.raises(ContentPolicyViolation, match="PROHIBITED_CONTENT"):
        await provider(http, base_url).submit(request("something forbidden"))


async def test_blocked_image_is_content_policy(http: httpx.AsyncClient, base_url: str) -> None:
    with pytest.raises(ContentPolicyViolation, match="IMAGE_SAFETY"):
        await provider(http, base_url).submit(request("an unsafe scene"))


async def test_text_only_answer_fails_the_call(http: httpx.AsyncClient, base_url: str) -> None:
    with pytest.raises(JobFailed):
        await provider(http, base_url).submit(request("describe a lighthouse"))


async def test_invalid_key_is_an_auth_error_despite_http_400(
    http: httpx.AsyncClient, base_url: str
) -> None:
    with pytest.raises(ProviderAuthError, match="API key not valid"):
        await provider(http, base_url, key="wrong").submit(request())


async def test_missing_key_is_an_auth_error(http: httpx.AsyncClient, base_url: str) -> None:
    with pytest.raises(ProviderAuthError, match="PERMISSION_DENIED"):
        await provider(http, base_url, key=None).submit(request())


async def test_unknown_model_is_rejected(http: httpx.AsyncClient, base_url: str) -> None:
    with pytest.raises(ProviderRejected, match="NOT_FOUND"):
        await provider(http, base_url).submit(request(model="gemini-0-nothing"))


async def test_resource_exhausted_carries_the_retry_delay(
    http: httpx.AsyncClient, base_url: str, state: GeminiState
) -> None:
    retry = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "17s"}
    error = {
        "code": 429,
        "message": "Quota exceeded",
        "status": "RESOURCE_EXHAUSTED",
        "details": [retry],
    }
    state.script.add("generate", Fault(429, {"error": error}))

    with pytest.raises(ProviderRateLimited) as caught:
        await provider(http, base_url).submit(request())
    assert caught.value.retry_after == 17.0


async def test_unavailable_is_transient_and_deadline_exceeded_ambiguous(
    http: httpx.AsyncClient, base_url: str, state: GeminiState
) -> None:
    overloaded = {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}
    deadline = {"code": 504, "message": "Deadline exceeded", "status": "DEADLINE_EXCEEDED"}
    state.script.add("generate", Fault(503, {"error": overloaded}))
    state.script.add("generate", Fault(504, {"error": deadline}))
    gemini = provider(http, base_url)

    with pytest.raises(ProviderUnavailable):
        await gemini.submit(request())
    with pytest.raises(ProviderAmbiguous):
        await gemini.submit(request())


async def test_imagen_model_is_called_through_predict(
    http: httpx.AsyncClient, base_url: str, state: GeminiState
) -> None:
    answer = await provider(http, base_url).submit(
        request(model="imagen-4.0-generate-001", width=1920, height=1080)
    )

    assert isinstance(answer, Completed)
    assert len(answer.images) == 1
    data = answer.images[0].data
    assert data is not None
    assert Image.open(io.BytesIO(data)).size == (64, 36)
    assert state.bodies[0]["parameters"]["sampleCount"] == 1
    assert state.bodies[0]["parameters"]["aspectRatio"] == "16:9"


async def test_imagen_filtered_image_is_content_policy(
    http: httpx.AsyncClient, base_url: str
) -> None:
    with pytest.raises(ContentPolicyViolation, match="filtered"):
        await provider(http, base_url).submit(
            request("something forbidden", model="imagen-4.0-generate-001")
        )
