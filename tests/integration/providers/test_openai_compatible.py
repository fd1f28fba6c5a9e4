"""OpenAICompatibleProvider against a fake task-contract upstream over loopback HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

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
    JobStatus,
    ProviderRequest,
)
from imagegate.providers.openai_compatible import OpenAICompatibleProvider
from tests.fakes.openai_tasks import TasksState
from tests.integration.providers.helpers import build, poll_to_end, submitted


@pytest.fixture
def state() -> TasksState:
    return TasksState()


def make(base_url: str, http: httpx.AsyncClient, **changes: Any) -> OpenAICompatibleProvider:
    return build(OpenAICompatibleProvider, base_url, http, **changes)


def request(**changes: Any) -> ProviderRequest:
    fields = {"upstream_model": "flux-pro-1.1", "prompt": "a red kite", **changes}
    return ProviderRequest(**{"idempotency_token": "tok-1", **fields})


async def job_for(provider: OpenAICompatibleProvider, **changes: Any) -> JobRef:
    return await submitted(provider, request(**changes))


async def poll_until_done(provider: OpenAICompatibleProvider, job: JobRef) -> list[str]:
    return [status.state for status in await poll_to_end(provider, job)]


async def test_task_answer_is_polled_through_its_states_to_images(
    base_url: str, http: httpx.AsyncClient, state: TasksState
) -> None:
    provider = make(base_url, http)
    job = await job_for(provider, n=2, size="512x512", seed=7)
    assert job["poll_url"].startswith(base_url)
    assert await poll_until_done(provider, job) == ["queued", "running", "succeeded"]
    final = await provider.poll(job)
    assert [image.url is not None for image in final.images] == [True, True]
    fetched = await http.get(final.images[0].url or "")
    assert fetched.headers["content-type"] == "image/png"
    task = next(iter(state.tasks.values()))
    assert (task.body["seed"], task.body["n"]) == (7, 2)


async def test_progress_and_queue_position_are_surfaced(
    base_url: str, http: httpx.AsyncClient
) -> None:
    provider = make(base_url, http)
    job = await job_for(provider)
    assert await provider.poll(job) == JobStatus("queued", queue_position=1)
    assert (await provider.poll(job)).progress == 50


async def test_resubmit_with_the_same_token_starts_no_second_upstream_job(
    base_url: str, http: httpx.AsyncClient, state: TasksState
) -> None:
    provider = make(base_url, http)
    assert await job_for(provider) == await job_for(provider)
    assert state.submissions == 1
    assert state.headers_seen[0]["idempotency-key"] == "tok-1"


async def test_plain_images_answer_completes_at_once(
    base_url: str, http: httpx.AsyncClient, state: TasksState
) -> None:
    state.honours_async = False
    result = await make(base_url, http).submit(request(n=3))
    assert isinstance(result, Completed)
    assert len(result.images) == 3


async def test_cancel_stops_the_upstream_task(
    base_url: str, http: httpx.AsyncClient, state: TasksState
) -> None:
    provider = make(base_url, http)
    job = await job_for(provider)
    await provider.cancel(job)
    with pytest.raises(JobFailed) as caught:
        await provider.poll(job)
    assert caught.value.error_code == "cancelled"
    assert state.cancels == 1


async def test_cancel_of_a_finished_task_is_refused(base_url: str, http: httpx.AsyncClient) -> None:
    provider = make(base_url, http)
    job = await job_for(provider)
    await poll_until_done(provider, job)
    with pytest.raises(ProviderRejected):
        await provider.cancel(job)


async def test_output_moderation_fails_the_job_as_content_policy(
    base_url: str, http: httpx.AsyncClient
) -> None:
    provider = make(base_url, http)
    job = await job_for(provider, prompt="something unsafe")
    with pytest.raises(ContentPolicyViolation):
        await poll_until_done(provider, job)


async def test_input_moderation_is_refused_at_submit(
    base_url: str, http: httpx.AsyncClient
) -> None:
    with pytest.raises(ContentPolicyViolation):
        await make(base_url, http).submit(request(prompt="forbidden thing"))


async def test_failed_task_raises_job_failed_with_its_message(
    base_url: str, http: httpx.AsyncClient
) -> None:
    provider = make(base_url, http)
    job = await job_for(provider, prompt="explode")
    with pytest.raises(JobFailed, match="All providers failed"):
        await poll_until_done(provider, job)


async def test_unknown_task_is_a_lost_job(base_url: str, http: httpx.AsyncClient) -> None:
    job = {"task_id": "task_gone", "poll_url": f"{base_url}/v1/tasks/task_gone"}
    with pytest.raises(JobFailed):
        await make(base_url, http).poll(job)


async def test_poll_url_on_another_site_is_not_followed(
    base_url: str, http: httpx.AsyncClient
) -> None:
    job = {"task_id": "x", "poll_url": "https://elsewhere.example/v1/tasks/x"}
    with pytest.raises(ProviderAmbiguous):
        await make(base_url, http).poll(job)


async def test_wrong_key_is_an_auth_error(base_url: str, http: httpx.AsyncClient) -> None:
    with pytest.raises(ProviderAuthError):
        await make(base_url, http, api_key="sk-wrong").submit(request())


async def test_rate_limit_and_transient_poll_failures(
    base_url: str, http: httpx.AsyncClient, state: TasksState
) -> None:
    provider = make(base_url, http)
    state.fail_next("rate_limit")
    with pytest.raises(ProviderRateLimited) as caught:
        await provider.submit(request())
    assert caught.value.retry_after == state.retry_after_s
    job = await job_for(provider)
    state.fail_next_poll("bad_gateway", "malformed")
    for _ in range(2):  # a poll starts nothing, so a lost or garbled answer is transient
        with pytest.raises(ProviderUnavailable):
            await provider.poll(job)
    assert await poll_until_done(provider, job)


async def test_lost_create_answer_is_ambiguous(
    base_url: str, http: httpx.AsyncClient, state: TasksState
) -> None:
    state.fail_next("bad_gateway")
    with pytest.raises(ProviderAmbiguous):
        await make(base_url, http).submit(request())
    assert state.submissions == 1
