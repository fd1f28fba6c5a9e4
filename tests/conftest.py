"""Shared fixtures: the real server process, and the database backend every test runs on.

``IMAGEGATE_TEST_BACKEND=postgres`` runs the suite against PostgreSQL (the server named by
``IMAGEGATE_TEST_POSTGRES_URL``, else an embedded one); the default is SQLite.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest

from tests.support.gateway import Gateway
from tests.support.postgres import fresh_database, postgres_server

pytest_plugins = ["tests.support.seaweed"]  # the ``seaweed_s3`` fixture: a real S3 server

BACKEND = os.environ.get("IMAGEGATE_TEST_BACKEND", "sqlite")


def pytest_report_header() -> str:
    return f"imagegate test backend: {BACKEND}"


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str | None]:
    """The PostgreSQL server of this run (None on SQLite).

    A plain dependency of ``database_factory`` rather than a lazy lookup, so pytest tears the
    server down after every database made on it.
    """
    if BACKEND != "postgres":
        yield None
        return
    with postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
def database_factory(postgres_admin_url: str | None) -> Callable[[], Any]:
    """A context-manager factory: a fresh database URL on the active backend (None: SQLite)."""

    def make() -> Any:
        if postgres_admin_url is not None:
            return fresh_database(postgres_admin_url)
        return nullcontext(None)

    return make


GatewayFactory = Callable[..., Gateway]


@pytest.fixture
def gateway_factory(
    tmp_path: Path, database_factory: Callable[[], Any]
) -> Iterator[GatewayFactory]:
    """Start gateways on demand (each with its own data dir and database); all stop at the end."""
    started: list[Gateway] = []
    contexts: list[Any] = []

    def make(*, start: bool = True, database_url: str | None = None, **kwargs: Any) -> Gateway:
        if database_url is None:
            ctx = database_factory()
            contexts.append(ctx)
            database_url = ctx.__enter__()
        gw = Gateway(tmp_path / f"gw{len(started)}", database_url=database_url, **kwargs)
        started.append(gw)
        return gw.start() if start else gw

    yield make
    for gw in started:
        gw.kill()
    for ctx in reversed(contexts):
        ctx.__exit__(None, None, None)


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, database_factory: Callable[[], Any]
) -> Iterator[Gateway]:
    """One gateway on the embedded defaults, shared by a test module."""
    with database_factory() as database_url:
        gw = Gateway(tmp_path_factory.mktemp("gateway"), database_url=database_url).start()
        try:
            yield gw
        finally:
            gw.stop()
