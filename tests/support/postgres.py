"""A real PostgreSQL for tests: the server named by ``IMAGEGATE_TEST_POSTGRES_URL`` when set,
otherwise an embedded cluster run from the ``pgserver`` package's binaries. Each user gets a fresh
database, so tests never see each other's rows.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from tests.support.pgcluster import Cluster


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def _sqlalchemy_url(url: str) -> str:
    if url.startswith("postgresql://"):
        return url.replace("postgresql://", "postgresql+asyncpg://", 1)
    return url


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yield an admin URL (``postgresql+asyncpg://...``) of a running server."""
    configured = os.environ.get("IMAGEGATE_TEST_POSTGRES_URL")
    if configured:
        yield _sqlalchemy_url(configured)
        return
    cluster = Cluster().init().start()
    try:
        yield cluster.url
    finally:
        cluster.destroy()


async def _admin_async(url: str, sql: str) -> None:
    conn = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _admin(url: str, sql: str) -> None:
    # On a thread of its own: the caller may be inside a running event loop (an async test,
    # or Playwright's sync API, which keeps one running in the main thread).
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _admin_async(url, sql)).result()


@contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    """Create an empty database for one test (or test module) and drop it afterwards."""
    name = f"imagegate_test_{uuid.uuid4().hex[:12]}"
    _admin(admin_url, f'CREATE DATABASE "{name}"')
    try:
        yield _with_database(admin_url, name)
    finally:
        _admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
