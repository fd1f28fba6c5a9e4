"""BFLProvider against the fake FLUX API over loopback HTTP."""

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
from imagegate.providers.base import JobRef, ProviderRequest
from imagegate.providers.bfl import BFLProvider
from tests.fakes.bfl import BFLState
from tests.integration.providers.helpers import build, poll_to_end, submitted


@pytest.fixture
def state() -> BFLState:
    return BFLState()


def make(base_url: str, http: httpx.AsyncClient, **changes: Any) -> BFLProvider:
    return build(BFLProvider, base_url, http, **changes)


def request(**changes: Any) -> ProviderRequest:
    return ProviderRequest(
        **{"upstream_model": "flux-pro-1.1", "prompt": "a fox in snow", **changes}
    )


async def job_for(provider: BFLProvider, **changes: Any) -> JobRef:
    return await submitted(provider, request(**changes))


async def test_job_is_polled_at_its_polling_url_until_ready(
    base_url: str, http: httpx.AsyncClient, state: BFLState
) -> None:
    provider = make(base_url, http)
    job = await job_for(provider, width=1000, height=750, seed=3, output_format="png")
    assert job["polling_url"] == f"{base_url}/v1/get_result?id={job['id']}"
    seen = await poll_to_end(provider, job)
    assert [status.state for status in seen] == ["running", "running", "succeeded"]
    assert [status.progress for status in seen[:2]] == [33, 67]
    image = Image.open(io.BytesIO((await http.get(seen[-1].images[0].url or "")).content))
    assert (image.format, image.size) == ("PNG", (992, 736))
    sent = state.requests[0]
    assert (sent["width"], sent["height"], sent["seed"]) == (992, 736, 3)
    assert state.headers_seen[-1]["x-key"] == "test-key"


async def test_ultra_models_are_sized_by_aspect_ratio_with_options(
    base_url: str, http: httpx.AsyncClient, state: BFLState
) -> None:
    options = {"raw": True, "safety_tolerance": 4}
    provider = make(base_url, http, options=options)
    await provider.submit(request(upstream_model="flux-pro-1.1-ultra", size="1536x1024"))
    sent = state.requests[0]
    assert sent["aspect_ratio"] == "3:2"
    assert not {"width", "height"} & sent.keys()
    assert (sent["raw"], sent["safety_tolerance"], sent["output_format"]) == (True, 4, "png")


async def test_webp_is_asked_as_png_since_the_api_has_jpeg_and_png_only(
    base_url: str, http: httpx.AsyncClient, state: BFLState
) -> None:
    await make(base_url, http).submit(request(output_format="webp"))
    assert state.requests[0]["output_format"] == "png"


@pytest.mark.parametrize("prompt", ["forbidden scene", "an unsafe scene"])
async def test_request_and_content_moderation_are_content_policy_violations(
    base_url: str, http: httpx.AsyncClient, prompt: str
) -> None:
    provider = make(base_url, http)
    job = await job_for(provider, prompt=prompt)
    with pytest.raises(ContentPolicyViolation, match="Moderated"):
        await poll_to_end(provider, job)


async def test_generation_error_is_a_failed_job(base_url: str, http: httpx.AsyncClient) -> None:
    provider = make(base_url, http)
    job = await job_for(provider, prompt="explode")
    with pytest.raises(JobFailed, match="failed on the worker"):
        await poll_to_end(provider, job)


async def test_expired_result_url_answers_403_and_the_task_is_gone(
    base_url: str, http: httpx.AsyncClient, state: BFLState
) -> None:
    provider = make(base_url, http)
    job = await job_for(provider)
    sample = (await poll_to_end(provider, job))[-1].images[0].url or ""
    state.files.expire_all()
    assert (await http.get(sample)).status_code == 403
    with pytest.raises(JobFailed, match="not found"):
        await provider.poll(job)


async def test_wrong_key_and_no_credits_are_auth_errors(
    base_url: str, http: httpx.AsyncClient, state: BFLState
) -> None:
    with pytest.raises(ProviderAuthError) as caught:
        await make(base_url, http, api_key="wrong").submit(request())
    assert caught.value.status == 403
    state.credits = 0
    with pytest.raises(ProviderAuthError) as caught:
        await make(base_url, http).submit(request())
    assert caught.value.status == 402


async def test_too_many_active_tasks_is_rate_limited(
    base_url: str, http: httpx.AsyncClient, state: BFLState
) -> None:
    state.max_active = 1
    provider = make(base_url, http)
    await provider.submit(request())
    with pytest.raises(ProviderRateLimited):
        await provider.submit(request())
    assert state.submissions == 1


async def test_scripted_rate_limit_carries_retry_after(
    base_url: str, http: httpx.AsyncClient, state: BFLState
) -> None:
    state.fail_next("rate_limit")
    with pytest.raises(ProviderRateLimited) as caught:
        await make(base_url, http).submit(request())
    assert caught.value.retry_after == state.retry_after_s


async def test_invalid_body_is_rejected_with_the_vendors_reason(
    base_url: str, http: httpx.AsyncClient
) -> None:
    with pytest.raises(ProviderRejected, match="multiple of 32") as caught:
        await make(base_url, http).submit(request(width=4096, height=4096))
    assert caught.value.status == 422


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("unavailable", ProviderUnavailable),
        ("bad_gateway", ProviderAmbiguous),
        ("malformed", ProviderAmbiguous),
    ],
)
async def test_submit_faults_map_to_retry_classes(
    base_url: str, http: httpx.AsyncClient, state: BFLState, fault: str, error: type
) -> None:
    state.fail_next(fault)
    with pytest.raises(error):
        await make(base_url, http).submit(request())


async def test_poll_faults_are_transient_and_polling_resumes(
    base_url: str, http: httpx.AsyncClient, state: BFLState
) -> None:
    provider = make(base_url, http)
    job = await job_for(provider)
    state.fail_next_poll("server_error", "malformed")
    for _ in range(2):
        with pytest.raises(ProviderUnavailable):
            await provider.poll(job)
    assert (await poll_to_end(provider, job))[-1].images


async def test_slow_submit_is_ambiguous(
    base_url: str, http: httpx.AsyncClient, state: BFLState
) -> None:
    state.slow_s = 2.0
    state.fail_next("slow")
    with pytest.raises(ProviderAmbiguous):
        await make(base_url, http, timeout_s=0.3).submit(request())


async def test_a_submit_is_one_image_whatever_n_says(
    base_url: str, http: httpx.AsyncClient, state: BFLState
) -> None:
    # The API has no n: the worker splits n into max_n_per_call-sized calls.
    assert BFLProvider.max_n_per_call == 1
    await make(base_url, http).submit(request(n=3))
    assert "n" not in state.requests[0]
    assert state.submissions == 1
