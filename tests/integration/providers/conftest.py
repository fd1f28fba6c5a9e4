"""Fixtures for adapter tests: a real HTTP client talking to a fake vendor over loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from imagegate import outbound
from tests.fakes.common import FakeVendor
from tests.fakes.server import serve_app


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """The client the gateway gives its adapters: httpx on imagegate's transport."""
    async with outbound.client(5.0) as client:
        yield client


@pytest.fixture
def base_url(state: FakeVendor) -> Iterator[str]:
    """The fake of the test module's ``state`` fixture, serving on a loopback port."""
    with serve_app(state.app()) as url:
        yield url
