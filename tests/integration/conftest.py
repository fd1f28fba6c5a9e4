"""Fixtures of the process-level tests: ``imagegate worker`` processes beside a gateway."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.support.gateway import Gateway
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
