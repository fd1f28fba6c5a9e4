"""Fixtures for adapter tests: a real HTTP client talking to a fake vendor over loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.fakes.common import FakeVendor
from tests.fakes.server import serve_app


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def base_url(state: FakeVendor) -> Iterator[str]:
    """The fake of the test module's ``state`` fixture, serving on a loopback port."""
    with serve_app(state.app()) as url:
        yield url
