"""The fal adapter against a fake fal queue over loopback HTTP."""

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
    ProviderUnavailable,
)
from imagegate.providers.base import ProviderRequest, ProviderSettings
from imagegate.providers.fal import FalProvider
from tests.fakes.fal import FalState
from tests.fakes.scripting import Fault
from tests.integration.providers.helpers import poll_to_end, submitted

MODEL = "fal-ai/flux/dev"


@pytest.fixture
def state() -> FalState:
    return FalState()


def provider(
    http: httpx.AsyncClient, base_url: str, key: str = "fal-test-key", **kw: Any
) -> FalProvider:
    settings = ProviderSettings(name="fal", kind="fal", base_url=base_url, api_key=key, **kw)
    return FalProvider(settings, http)


def request(prompt: str = "a lighthouse", **kw: Any) -> ProviderRequest:
    return ProviderRequest(upstream_model=MODEL, prompt=prompt, **kw)


async def test_job_walks_queue_and_progress_then_returns_fetchable_images(
    http: httpx.AsyncClient, base_url: str, state: FalState
) -> None:
    fal = provider(http, base_url)
    job = await submitted(fal, request(n=2, width=640, height=480, seed=7))

    statuses = await poll_to_end(fal, job)

    assert [s.state for s in statuses] == ["queued", "queued", "running", "succeeded"]
    assert [s.queue_position for s in statuses[:2]] == [1, 0]
    images = statuses[-1].images
    assert len(images) == 2
    for image in images:
        assert image.url is not None
        picture = Image.open(io.BytesIO((await http.get(image.url)).content))
        assert picture.size == (640, 480)
    assert state.submissions == 1
    assert state.inputs[0]["image_size"] == {"width": 640, "height": 480}
    assert state.inputs[0]["num_images"] == 2
    assert state.inputs[0]["seed"] == 7


async def test_polls_the_returned_urls_which_drop_the_model_subpath(
    http: httpx.AsyncClient, base_url: str
) -> None:
    job = await submitted(provider(http, base_url), request())

    assert job["status_url"].startswith(f"{base_url}/fal-ai/flux/requests/")
    assert "/dev/" not in job["status_url"]


async def test_named_size_and_negative_prompt_reach_fal(
    http: httpx.AsyncClient, base_url: str, state: FalState
) -> None:
    await provider(http, base_url).submit(
        request(width=1024, height=768, negative_prompt="fog", output_format="png")
    )

    sent = state.inputs[0]
    assert sent["image_size"] == "landscape_4_3"
    assert sent["negative_prompt"] == "fog"
    assert sent["output_format"] == "png"


async def test_wrong_key_is_an_auth_error(http: httpx.AsyncClient, base_url: str) -> None:
    with pytest.raises(ProviderAuthError):
        await provider(http, base_url, key="wrong").submit(request())


async def test_moderated_prompt_fails_the_job_as_content_policy(
    http: httpx.AsyncClient, base_url: str
) -> None:
    fal = provider(http, base_url)
    job = await submitted(fal, request("something forbidden"))

    with pytest.raises(ContentPolicyViolation) as caught:
        await poll_to_end(fal, job)
    assert caught.value.error_code == "content_policy_violation"


async def test_safety_checker_flagged_output_is_content_policy(
    http: httpx.AsyncClient, base_url: str
) -> None:
    fal = provider(http, base_url)
    job = await submitted(fal, request("nsfw scene"))

    with pytest.raises(ContentPolicyViolation):
        await poll_to_end(fal, job)


async def test_rate_limit_carries_retry_after(
    http: httpx.AsyncClient, base_url: str, state: FalState
) -> None:
    state.script.add("submit", Fault(429, {"detail": "Too many requests"}, {"Retry-After": "7"}))

    with pytest.raises(ProviderRateLimited) as caught:
        await provider(http, base_url).submit(request())
    assert caught.value.retry_after == 7.0
    assert state.submissions == 0


async def test_submit_503_is_unavailable_and_504_is_ambiguous(
    http: httpx.AsyncClient, base_url: str, state: FalState
) -> None:
    state.script.add(
        "submit", Fault(503, {"detail": "no runner", "error_type": "runner_scheduling_failure"})
    )
    state.script.add("submit", Fault(504, {"detail": "timed out", "error_type": "request_timeout"}))
    fal = provider(http, base_url)

    with pytest.raises(ProviderUnavailable):
        await fal.submit(request())
    with pytest.raises(ProviderAmbiguous):
        await fal.submit(request())


async def test_poll_gateway_error_is_transient_and_the_job_still_finishes(
    http: httpx.AsyncClient, base_url: str, state: FalState
) -> None:
    fal = provider(http, base_url)
    job = await submitted(fal, request())
    state.script.add("status", Fault(502, "<html>bad gateway</html>"))

    with pytest.raises(ProviderUnavailable):
        await fal.poll(job)
    assert (await poll_to_end(fal, job))[-1].state == "succeeded"
    assert state.submissions == 1


async def test_expired_cdn_url_is_not_found_when_fetched_late(
    http: httpx.AsyncClient, base_url: str, state: FalState
) -> None:
    state.files.ttl_s = 0.0
    fal = provider(http, base_url)
    job = await submitted(fal, request())

    image = (await poll_to_end(fal, job))[-1].images[0]

    assert image.url is not None
    assert (await http.get(image.url)).status_code == 404


async def test_result_gone_fails_the_job(
    http: httpx.AsyncClient, base_url: str, state: FalState
) -> None:
    fal = provider(http, base_url)
    job = await submitted(fal, request())
    state.script.add("result", Fault(404, {"detail": "Request not found"}))

    with pytest.raises(JobFailed):
        await poll_to_end(fal, job)


async def test_cancel_of_queued_job_ends_it_as_failed(
    http: httpx.AsyncClient, base_url: str
) -> None:
    fal = provider(http, base_url)
    job = await submitted(fal, request())

    await fal.cancel(job)

    with pytest.raises(JobFailed, match="client_cancelled"):
        await fal.poll(job)


async def test_cancel_after_completion_is_harmless(http: httpx.AsyncClient, base_url: str) -> None:
    fal = provider(http, base_url)
    job = await submitted(fal, request())
    await poll_to_end(fal, job)

    await fal.cancel(job)

    assert (await fal.poll(job)).state == "succeeded"
