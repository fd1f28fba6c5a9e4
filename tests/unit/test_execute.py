"""Pieces of a task run that need no I/O: splitting into provider calls, all-or-nothing."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from imagegate.catalog import Route
from imagegate.engine.models import ImageRequest, Task
from imagegate.engine.states import TaskStatus
from imagegate.providers.base import (
    Completed,
    Provider,
    ProviderRequest,
    ProviderSettings,
    Submitted,
)
from imagegate.worker.execute import all_or_nothing, provider_requests


class OnePerCall(Provider):
    kind = "one"
    max_n_per_call = 1

    async def submit(self, request: ProviderRequest) -> Completed | Submitted:
        raise NotImplementedError


def task(**request: object) -> Task:
    return Task(
        id="igt_x",
        key_id="k",
        model="m",
        status=TaskStatus.PROCESSING,
        request=ImageRequest(model="m", prompt="p", **request),  # type: ignore[arg-type]
        created_at=0,
        updated_at=0,
        deadline_at=0,
        expires_at=0,
    )


def test_a_vendor_without_n_gets_one_call_per_image_with_stable_tokens() -> None:
    provider = OnePerCall(ProviderSettings(name="one", kind="one"), httpx.AsyncClient())
    calls = provider_requests(task(n=3, seed=10, size="512x256"), Route("one", "up"), provider)
    assert [c.n for c in calls] == [1, 1, 1]
    assert [c.seed for c in calls] == [10, 11, 12]  # distinct images, reproducible
    assert [(c.width, c.height) for c in calls] == [(512, 256)] * 3
    assert [c.idempotency_token for c in calls] == ["igt_x-one-0", "igt_x-one-1", "igt_x-one-2"]


async def test_the_first_failure_cancels_the_other_calls() -> None:
    finished: list[str] = []

    async def slow() -> str:
        await asyncio.sleep(5)
        finished.append("slow")
        return "slow"

    async def broken() -> str:
        raise RuntimeError("upstream said no")

    with pytest.raises(RuntimeError, match="upstream said no"):
        await all_or_nothing([slow(), broken()])
    await asyncio.sleep(0)
    assert finished == []


async def test_all_results_come_back_in_call_order() -> None:
    async def value(v: int, delay: float) -> int:
        await asyncio.sleep(delay)
        return v

    assert await all_or_nothing([value(1, 0.02), value(2, 0.0)]) == [1, 2]
