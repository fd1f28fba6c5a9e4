"""The status route's lean path: GET is answered ahead of FastAPI's routing, by a read that
bypasses SQLAlchemy; the other methods on the same paths still get what routing says."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import BACKEND, GatewayFactory
from tests.integration.test_api_contract import create_async
from tests.integration.test_api_errors import assert_envelope
from tests.support.gateway import Gateway

PATHS = ("/v1/tasks/", "/v1/images/generations/", "/v1/images/")


@contextmanager
def sqlite_writer_holding_the_lock(database: Path, task_id: str) -> Iterator[None]:
    """Another process's writer in the middle of a transaction that changed the task."""
    conn = sqlite3.connect(database, isolation_level=None, timeout=10)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        conn.execute("UPDATE tasks SET status = 'failed' WHERE id = ?", (task_id,))
        yield
    finally:
        conn.execute("ROLLBACK")
        conn.close()


@pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite's own locking")
def test_polls_answer_while_a_writer_holds_the_sqlite_lock(
    gateway_factory: GatewayFactory,
) -> None:
    gw = gateway_factory(args=["--no-worker"])
    with gw.client() as client:
        task_id = create_async(client)["id"]
        with sqlite_writer_holding_the_lock(gw.data_dir / "imagegate.db", task_id):
            answers = [client.get(prefix + task_id) for prefix in PATHS]
    assert [a.status_code for a in answers] == [200, 200, 200]
    # The committed state, not the writer's uncommitted change.
    assert {a.json()["status"] for a in answers} == {"pending"}


def test_other_methods_on_task_paths_reach_their_routes(gateway: Gateway) -> None:
    with gateway.client() as client:
        task_id = create_async(client)["id"]
        for prefix in PATHS:
            for method in ("HEAD", "POST", "PUT"):
                response = client.request(method, prefix + task_id)
                assert response.status_code == 405
                if method != "HEAD":
                    assert_envelope(response, 405)
        cancelled = client.delete(f"/v1/tasks/{task_id}")
    assert cancelled.status_code in (200, 409), cancelled.text


def test_status_errors_keep_the_envelope_and_request_id(gateway: Gateway) -> None:
    url = gateway.base_url + "/v1/tasks/igt_" + "a" * 32
    unauthenticated = httpx.get(url, headers={"x-request-id": "poll-1"})
    assert_envelope(unauthenticated, 401, "invalid_api_key")
    assert unauthenticated.headers["www-authenticate"] == "Bearer"
    assert unauthenticated.headers["x-request-id"] == "poll-1"
    missing = httpx.get(url, headers={**gateway.headers, "x-request-id": "poll-2"})
    assert_envelope(missing, 404, "async_task_not_found")
    assert missing.headers["x-request-id"] == "poll-2"
