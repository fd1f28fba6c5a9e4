"""Fixtures of the integration tests: ``imagegate worker`` processes beside a gateway, and a
PostgreSQL server for behaviour that is PostgreSQL's own."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.conftest import BACKEND
from tests.support.gateway import Gateway
from tests.support.postgres import postgres_server
from tests.support.processes import WorkerProcess

WorkerFactory = Callable[..., WorkerProcess]


@pytest.fixture
def worker_factory() -> Iterator[WorkerFactory]:
    """Start workers for a gateway (its environment plus overrides); all die at the end."""
    started: list[WorkerProcess] = []

    def make(gateway: Gateway, name: str, env: dict[str, str] | None = None) -> WorkerProcess:
        worker = WorkerProcess(gateway, name, env)
        started.append(worker)
        return worker.start()

    yield make
    for worker in started:
        worker.kill()


@pytest.fixture(scope="module")
def pg_admin_url(postgres_admin_url: str | None) -> Iterator[str]:
    """For behaviour that is PostgreSQL's own, which runs on PostgreSQL in the SQLite pass too."""
    if postgres_admin_url is not None:
        yield postgres_admin_url
        return
    assert BACKEND != "postgres"
    with postgres_server() as url:
        yield url
