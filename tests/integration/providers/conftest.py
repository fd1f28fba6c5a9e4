"""Shared pieces of the adapter tests: a real HTTP client and a poll loop."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from imagegate.providers.base import JobRef, JobStatus, Provider


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


async def poll_until_done(provider: Provider, job: JobRef, limit: int = 50) -> list[JobStatus]:
    """Every status a job reports until it succeeds (failures raise out of ``poll``)."""
    seen: list[JobStatus] = []
    for _ in range(limit):
        status = await provider.poll(job)
        seen.append(status)
        if status.state == "succeeded":
            return seen
    raise AssertionError(f"job never finished; last states {[s.state for s in seen[-5:]]}")
