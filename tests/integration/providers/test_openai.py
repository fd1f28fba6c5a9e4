"""OpenAIProvider against the fake OpenAI Images API over loopback HTTP."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest
from PIL import Image

from imagegate.errors import (
    ContentPolicyViolation,
    ProviderAmbiguous,
    ProviderAuthError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
)
from imagegate.providers.base import ProviderRequest
from imagegate.providers.openai import OpenAIProvider
from tests.fakes.openai_images import OpenAIState
from tests.fakes.server import serve_app
from tests.integration.providers.helpers import build


@pytest.fixture
def state() -> OpenAIState:
    return OpenAIState()


def make(base_url: str, http: httpx.AsyncClient, **changes: Any) -> OpenAIProvider:
    return build(OpenAIProvider, base_url, http, **changes)


def request(**changes: Any) -> ProviderRequest:
    fields = {"upstream_model": "gpt-image-1", "prompt": "a lighthouse at dusk", **changes}
    return ProviderRequest(**fields)


def decoded(data: bytes | None) -> Image.Image:
    assert data is not None
    return Image.open(io.BytesIO(data))


async def test_gpt_image_returns_inline_images_in_the_requested_format(
    base_url: str, http: httpx.AsyncClient, state: OpenAIState
) -> None:
    result = await make(base_url, http).submit(
        request(n=2, size="1536x1024", output_format="jpeg", output_compression=80)
    )
    assert len(result.images) == 2
    image = decoded(result.images[0].data)
    assert (image.format, image.size) == ("JPEG", (1536, 1024))
    sent = state.requests[0]
    assert (sent["output_format"], sent["output_compression"]) == ("jpeg", 80)
    assert not {"response_format", "style"} & sent.keys()


async def test_moderation_option_and_background_reach_gpt_image_models(
    base_url: str, http: httpx.AsyncClient, state: OpenAIState
) -> None:
    provider = make(base_url, http, options={"moderation": "low"})
    await provider.submit(request(background="transparent"))
    assert state.requests[0]["moderation"] == "low"
    assert state.requests[0]["background"] == "transparent"


async def test_dall_e_3_with_n_above_one_makes_one_call_per_image(
    base_url: str, http: httpx.AsyncClient, state: OpenAIState
) -> None:
    result = await make(base_url, http).submit(
        request(upstream_model="dall-e-3", n=3, size="1024x1024", style="vivid")
    )
    assert len(result.images) == 3
    assert state.submissions == 3
    assert all(sent["n"] == 1 and sent["style"] == "vivid" for sent in state.requests)
    assert all(image.revised_prompt for image in result.images)
    assert all("output_format" not in sent for sent in state.requests)


async def test_dall_e_url_answers_point_at_fetchable_images(
    base_url: str, http: httpx.AsyncClient
) -> None:
    provider = make(base_url, http, options={"response_format": "url"})
    result = await provider.submit(request(upstream_model="dall-e-2", n=2, size="512x512"))
    assert all(image.url and image.data is None for image in result.images)
    fetched = await http.get(result.images[0].url or "")
    assert decoded(fetched.content).size == (512, 512)


async def test_expired_dall_e_url_is_refused_by_the_vendor(
    base_url: str, http: httpx.AsyncClient, state: OpenAIState
) -> None:
    provider = make(base_url, http, options={"response_format": "url"})
    result = await provider.submit(request(upstream_model="dall-e-3"))
    state.files.expire_all()
    assert (await http.get(result.images[0].url or "")).status_code == 403


@pytest.mark.parametrize("model", ["gpt-image-1", "dall-e-3"])
async def test_moderation_refusal_is_a_content_policy_violation(
    base_url: str, http: httpx.AsyncClient, model: str
) -> None:
    with pytest.raises(ContentPolicyViolation) as caught:
        await make(base_url, http).submit(request(upstream_model=model, prompt="forbidden"))
    assert caught.value.error_code == "content_policy_violation"


async def test_wrong_key_is_an_auth_error(base_url: str, http: httpx.AsyncClient) -> None:
    with pytest.raises(ProviderAuthError) as caught:
        await make(base_url, http, api_key="sk-wrong").submit(request())
    assert caught.value.status == 401


async def test_rate_limit_carries_retry_after(
    base_url: str, http: httpx.AsyncClient, state: OpenAIState
) -> None:
    state.retry_after_s = 7
    state.fail_next("rate_limit")
    with pytest.raises(ProviderRateLimited) as caught:
        await make(base_url, http).submit(request())
    assert caught.value.retry_after == 7
    assert state.submissions == 0


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("server_error", ProviderUnavailable),
        ("unavailable", ProviderUnavailable),
        ("bad_gateway", ProviderAmbiguous),
        ("malformed", ProviderAmbiguous),
    ],
)
async def test_upstream_faults_map_to_retry_classes(
    base_url: str, http: httpx.AsyncClient, state: OpenAIState, fault: str, error: type
) -> None:
    state.fail_next(fault)
    with pytest.raises(error):
        await make(base_url, http).submit(request())


async def test_answer_slower_than_the_timeout_is_ambiguous(
    base_url: str, http: httpx.AsyncClient, state: OpenAIState
) -> None:
    state.slow_s = 2.0
    state.fail_next("slow")
    with pytest.raises(ProviderAmbiguous):
        await make(base_url, http, timeout_s=0.3).submit(request())


async def test_invalid_parameter_is_rejected_not_retried(
    base_url: str, http: httpx.AsyncClient
) -> None:
    with pytest.raises(ProviderRejected) as caught:
        await make(base_url, http).submit(request(size="999x999"))
    assert not isinstance(caught.value, ProviderAuthError)
    assert "size" in str(caught.value)


async def test_unreachable_upstream_is_unavailable(http: httpx.AsyncClient) -> None:
    with serve_app(OpenAIState().app()) as url:
        pass
    with pytest.raises(ProviderUnavailable):
        await make(url, http).submit(request())
