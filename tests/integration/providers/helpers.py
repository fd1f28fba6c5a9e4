"""Small steps the adapter tests share: build an adapter, submit, poll a job to its end."""

from __future__ import annotations

from typing import Any, TypeVar

import httpx

from imagegate.providers.base import (
    JobRef,
    JobStatus,
    Provider,
    ProviderRequest,
    ProviderSettings,
    Submitted,
)

P = TypeVar("P", bound=Provider)


def build(cls: type[P], base_url: str, http: httpx.AsyncClient, **changes: Any) -> P:
    """An adapter of ``cls`` pointed at a fake, with the fake's default key unless changed."""
    settings: dict[str, Any] = {"name": cls.kind, "kind": cls.kind, "base_url": base_url}
    settings.update({"api_key": "test-key", **changes})
    return cls(ProviderSettings(**settings), http)


async def submitted(provider: Provider, request: ProviderRequest) -> JobRef:
    """Submit and return the job reference, failing the test if the images came at once."""
    result = await provider.submit(request)
    assert isinstance(result, Submitted), result
    return result.job


async def poll_to_end(provider: Provider, job: JobRef, limit: int = 10) -> list[JobStatus]:
    """Every status seen until the job succeeded (failures raise out of ``poll``)."""
    seen = [await provider.poll(job)]
    while seen[-1].state != "succeeded":
        assert len(seen) < limit, seen
        seen.append(await provider.poll(job))
    return seen
