"""ReplicateProvider against the fake predictions API over loopback HTTP."""

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
from imagegate.providers.base import (
    Completed,
    JobRef,
    ProviderRequest,
)
from imagegate.providers.replicate import ReplicateProvider
from tests.fakes.replicate import VERSIONS, ReplicateState
from tests.integration.providers.helpers import build, poll_to_end, submitted

SCHNELL = "black-forest-labs/flux-schnell"


@pytest.fixture
def state() -> ReplicateState:
    return ReplicateState()


def make(base_url: str, http: httpx.AsyncClient, **changes: Any) -> ReplicateProvider:
    return build(ReplicateProvider, base_url, http, **changes)


def request(**changes: Any) -> ProviderRequest:
    return ProviderRequest(**{"upstream_model": SCHNELL, "prompt": "an owl reading", **changes})


async def job_for(provider: ReplicateProvider, **changes: Any) -> JobRef:
    return await submitted(provider, request(**changes))


async def test_prediction_is_polled_through_its_statuses(
    base_url: str, http: httpx.AsyncClient, state: ReplicateState
) -> None:
    provider = make(base_url, http)
    job = await job_for(provider, size="1024x768", output_format="jpeg", seed=9)
    assert job["get"] == f"{base_url}/v1/predictions/{job['id']}"
    seen = await poll_to_end(provider, job)
    assert [status.state for status in seen] == ["queued", "running", "succeeded"]
    assert seen[1].progress == 50
    image = Image.open(io.BytesIO((await http.get(seen[-1].images[0].url or "")).content))
    assert (image.format, image.size) == ("JPEG", (1024, 768))
    sent = state.predictions[job["id"]].input
    assert (sent["aspect_ratio"], sent["output_format"], sent["seed"]) == ("4:3", "jpg", 9)
    assert state.headers_seen[0]["prefer"] == "wait=5"


async def test_fast_model_completes_within_the_sync_wait(
    base_url: str, http: httpx.AsyncClient, state: ReplicateState
) -> None:
    state.fast_models = frozenset({SCHNELL})
    result = await make(base_url, http).submit(request())
    assert isinstance(result, Completed)
    assert result.images[0].url
    assert state.polls == 0


async def test_version_pinned_model_uses_the_predictions_endpoint(
    base_url: str, http: httpx.AsyncClient, state: ReplicateState
) -> None:
    version = next(iter(VERSIONS))
    provider = make(base_url, http, options={"wait_s": 0})
    job = await job_for(provider, upstream_model=f"stability-ai/sdxl:{version}", size="512x640")
    assert state.predictions[job["id"]].version == version
    assert "prefer" not in state.headers_seen[0]
    assert (await poll_to_end(provider, job))[-1].images


async def test_single_url_output_is_one_image(base_url: str, http: httpx.AsyncClient) -> None:
    provider = make(base_url, http)
    job = await job_for(provider, upstream_model="black-forest-labs/flux-1.1-pro")
    assert len((await poll_to_end(provider, job))[-1].images) == 1


async def test_cancel_makes_the_prediction_canceled(
    base_url: str, http: httpx.AsyncClient, state: ReplicateState
) -> None:
    state.hold = True
    provider = make(base_url, http)
    job = await job_for(provider)
    await provider.cancel(job)
    with pytest.raises(JobFailed) as caught:
        await provider.poll(job)
    assert caught.value.error_code == "cancelled"


async def test_nsfw_failure_is_a_content_policy_violation(
    base_url: str, http: httpx.AsyncClient
) -> None:
    provider = make(base_url, http)
    job = await job_for(provider, prompt="something unsafe")
    with pytest.raises(ContentPolicyViolation, match="NSFW"):
        await poll_to_end(provider, job)


async def test_model_failure_is_a_failed_job(base_url: str, http: httpx.AsyncClient) -> None:
    provider = make(base_url, http)
    job = await job_for(provider, prompt="explode")
    with pytest.raises(JobFailed, match="CUDA") as caught:
        await poll_to_end(provider, job)
    assert caught.value.error_code == "upstream_error"


async def test_removed_output_is_a_lost_result(
    base_url: str, http: httpx.AsyncClient, state: ReplicateState
) -> None:
    provider = make(base_url, http)
    job = await job_for(provider)
    url = (await poll_to_end(provider, job))[-1].images[0].url or ""
    state.files.expire_all()
    assert (await http.get(url)).status_code == 404
    with pytest.raises(JobFailed, match="removed"):
        await provider.poll(job)


async def test_wrong_key_is_an_auth_error(base_url: str, http: httpx.AsyncClient) -> None:
    with pytest.raises(ProviderAuthError, match="Unauthenticated"):
        await make(base_url, http, api_key="r8_wrong").submit(request())


async def test_unknown_model_is_rejected(base_url: str, http: httpx.AsyncClient) -> None:
    provider = make(base_url, http)
    with pytest.raises(ProviderRejected) as caught:
        await provider.submit(request(upstream_model="nobody/nothing"))
    assert caught.value.status == 404


async def test_throttling_carries_retry_after(
    base_url: str, http: httpx.AsyncClient, state: ReplicateState
) -> None:
    state.fail_next("rate_limit")
    with pytest.raises(ProviderRateLimited, match="throttled") as caught:
        await make(base_url, http).submit(request())
    assert caught.value.retry_after == state.retry_after_s


@pytest.mark.parametrize(
    ("fault", "error", "started"),
    [
        ("server_error", ProviderUnavailable, 0),
        ("bad_gateway", ProviderAmbiguous, 1),
        ("malformed", ProviderAmbiguous, 1),
    ],
)
async def test_create_faults_map_to_retry_classes(
    base_url: str,
    http: httpx.AsyncClient,
    state: ReplicateState,
    fault: str,
    error: type,
    started: int,
) -> None:
    state.fail_next(fault)
    with pytest.raises(error):
        await make(base_url, http).submit(request())
    assert state.submissions == started


async def test_poll_faults_are_transient(
    base_url: str, http: httpx.AsyncClient, state: ReplicateState
) -> None:
    provider = make(base_url, http)
    job = await job_for(provider)
    state.fail_next_poll("bad_gateway")
    with pytest.raises(ProviderUnavailable):
        await provider.poll(job)
    assert (await poll_to_end(provider, job))[-1].images


async def test_a_submit_is_one_prediction_whatever_n_says(
    base_url: str, http: httpx.AsyncClient, state: ReplicateState
) -> None:
    assert ReplicateProvider.max_n_per_call == 1
    job = await job_for(make(base_url, http), n=4)
    assert "num_outputs" not in state.predictions[job["id"]].input
    assert state.submissions == 1
