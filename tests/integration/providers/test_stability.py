"""The Stability adapter against a fake v2beta Stable Image API over loopback HTTP."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest
from PIL import Image

from imagegate.errors import (
    ContentPolicyViolation,
    JobFailed,
    ProviderAuthError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
)
from imagegate.providers.base import Completed, ProviderRequest, ProviderSettings, Submitted
from imagegate.providers.stability import StabilityProvider
from tests.fakes.scripting import Fault
from tests.fakes.stability import StabilityState
from tests.integration.providers.helpers import poll_to_end


@pytest.fixture
def state() -> StabilityState:
    return StabilityState()


def provider(
    http: httpx.AsyncClient, base_url: str, key: str = "sk-stability-test", **kw: Any
) -> StabilityProvider:
    settings = ProviderSettings(
        name="stability", kind="stability", base_url=base_url, api_key=key, **kw
    )
    return StabilityProvider(settings, http)


def request(prompt: str = "a lighthouse", model: str = "core", **kw: Any) -> ProviderRequest:
    return ProviderRequest(upstream_model=model, prompt=prompt, **kw)


def decoded(data: bytes | None) -> Image.Image:
    assert data is not None
    return Image.open(io.BytesIO(data))


async def test_core_answers_image_bytes_with_the_requested_shape(
    http: httpx.AsyncClient, base_url: str, state: StabilityState
) -> None:
    answer = await provider(http, base_url).submit(
        request(width=1920, height=1080, seed=5, negative_prompt="fog", output_format="webp")
    )

    assert isinstance(answer, Completed)
    image = decoded(answer.images[0].data)
    assert image.format == "WEBP"
    assert image.size == (64, 36)
    sent = state.forms[0]
    assert sent["aspect_ratio"] == "16:9"
    assert sent["seed"] == "5"
    assert sent["negative_prompt"] == "fog"
    assert "model" not in sent
    assert state.accepts == ["image/*"]


async def test_sd3_variant_is_sent_as_the_model_field(
    http: httpx.AsyncClient, base_url: str, state: StabilityState
) -> None:
    answer = await provider(http, base_url).submit(request(model="sd3.5-large"))

    assert isinstance(answer, Completed)
    assert state.forms[0]["model"] == "sd3.5-large"


async def test_refused_prompt_is_content_policy(http: httpx.AsyncClient, base_url: str) -> None:
    with pytest.raises(ContentPolicyViolation):
        await provider(http, base_url).submit(request("something forbidden"))


async def test_filtered_output_is_content_policy(http: httpx.AsyncClient, base_url: str) -> None:
    with pytest.raises(ContentPolicyViolation):
        await provider(http, base_url).submit(request("to be filtered"))


async def test_wrong_key_is_an_auth_error(http: httpx.AsyncClient, base_url: str) -> None:
    with pytest.raises(ProviderAuthError):
        await provider(http, base_url, key="sk-wrong").submit(request())


async def test_out_of_credits_marks_the_route_unusable(
    http: httpx.AsyncClient, base_url: str, state: StabilityState
) -> None:
    body = {"id": "x", "name": "payment_required", "errors": ["lacks sufficient credits"]}
    state.script.add("generate", Fault(402, body))

    with pytest.raises(ProviderAuthError, match="payment_required"):
        await provider(http, base_url).submit(request())


async def test_bad_request_is_rejected_with_the_vendor_reason(
    http: httpx.AsyncClient, base_url: str
) -> None:
    with pytest.raises(ProviderRejected, match="prompt: cannot be empty"):
        await provider(http, base_url).submit(request(prompt=""))


async def test_rate_limit_and_server_errors(
    http: httpx.AsyncClient, base_url: str, state: StabilityState
) -> None:
    state.script.add("generate", Fault(429, {"name": "rate_limit_exceeded"}, {"Retry-After": "60"}))
    state.script.add("generate", Fault(500, {"name": "internal_error", "errors": ["oops"]}))
    stability = provider(http, base_url)

    with pytest.raises(ProviderRateLimited) as caught:
        await stability.submit(request())
    assert caught.value.retry_after == 60.0
    with pytest.raises(ProviderUnavailable):
        await stability.submit(request())
    assert state.submissions == 0


async def test_async_model_is_submitted_then_polled_to_its_image(
    http: httpx.AsyncClient, base_url: str, state: StabilityState
) -> None:
    state.async_paths.add("generate/ultra")
    stability = provider(http, base_url, options={"async_models": ["ultra"]})

    answer = await stability.submit(request(model="ultra", aspect_ratio="3:2"))

    assert isinstance(answer, Submitted)
    statuses = await poll_to_end(stability, answer.job)
    assert [s.state for s in statuses] == ["running", "running", "succeeded"]
    assert decoded(statuses[-1].images[0].data).size == (60, 40)
    assert state.accepts == ["application/json"]
    assert state.submissions == 1


async def test_expired_async_result_fails_the_job(http: httpx.AsyncClient, base_url: str) -> None:
    with pytest.raises(JobFailed):
        await provider(http, base_url).poll({"id": "0" * 64})


async def test_async_result_filtered_is_content_policy(
    http: httpx.AsyncClient, base_url: str, state: StabilityState
) -> None:
    state.async_paths.add("generate/core")
    stability = provider(http, base_url, options={"async_models": ["core"]})
    answer = await stability.submit(request("to be filtered"))

    assert isinstance(answer, Submitted)
    with pytest.raises(ContentPolicyViolation):
        await poll_to_end(stability, answer.job)
