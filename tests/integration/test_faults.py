"""Crash safety with real processes: workers and the API killed with SIGKILL mid-flight.

On PostgreSQL the fleet is an API process (``serve --no-worker``) and two ``imagegate
worker`` processes; on SQLite, the API and one worker sharing the database file. Each test
prints its figures on a ``FAULTS`` line (run pytest with ``-s`` to see them).
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Callable
from functools import partial

import httpx
import pytest
import sqlalchemy as sa

from imagegate.store.schema import tasks
from tests.conftest import BACKEND, GatewayFactory
from tests.integration.conftest import WorkerFactory
from tests.support.gateway import Gateway
from tests.support.processes import (
    create_tasks,
    held_by,
    peek,
    statuses,
    wait_for,
)

pytestmark = pytest.mark.faults

LEASE_S = 3.0
TASKS = 200
KILLS = 5
FLEET_ENV = {
    "IMAGEGATE_LEASE": f"{LEASE_S}s",
    "IMAGEGATE_LOCAL_LATENCY": "1-3",
    "IMAGEGATE_WORKER_POLL_INTERVAL": "0.5s",
}


def report(name: str, **figures: object) -> None:
    values = " ".join(f"{k}={v}" for k, v in figures.items())
    print(f"\nFAULTS {name} backend={BACKEND} {values}")


def all_finished(gateway: Gateway, ids: list[str]) -> Callable[[], bool]:
    def check() -> bool:
        found = statuses(gateway, ids)
        return len(found) == len(ids) and all(s in ("completed", "failed") for s in found.values())

    return check


def test_workers_killed_mid_flight_lose_no_task(
    gateway_factory: GatewayFactory, worker_factory: WorkerFactory
) -> None:
    fleet = 2 if BACKEND == "postgres" else 1
    concurrency = str(20 // fleet)
    api = gateway_factory(args=["--no-worker"], env=FLEET_ENV)
    workers = [
        worker_factory(api, f"w{i}", {"IMAGEGATE_WORKER_CONCURRENCY": concurrency})
        for i in range(fleet)
    ]
    with api.client() as http:
        ids = create_tasks(http, TASKS)
    with concurrent.futures.ThreadPoolExecutor(KILLS) as watchers:
        reclaims = []
        for kill in range(KILLS):
            victim = workers[kill % fleet]
            wait_for(lambda v=victim: held_by(api, v.pid) > 0, timeout=30)  # type: ignore[misc]
            old_pid = victim.pid
            victim.kill()
            victim.start()
            # Its tasks are stuck until the lease runs out; then a worker takes them over.
            gone = partial(lambda p: held_by(api, p) == 0, old_pid)
            reclaims.append(watchers.submit(wait_for, gone, 60))
            time.sleep(1.0)
        reclaim_waits = [r.result() for r in reclaims]
    wait_for(all_finished(api, ids), timeout=180, interval=0.5)
    final = statuses(api, ids)
    lost = sum(1 for s in final.values() if s != "completed")
    reclaimed = peek(api, sa.select(sa.func.count()).where(tasks.c.attempts > 1))[0][0]
    longest = max(row[0] for row in peek(api, sa.select(tasks.c.updated_at - tasks.c.created_at)))
    report(
        "workers-kill9",
        workers=fleet,
        tasks=TASKS,
        kills=KILLS,
        lost=lost,
        reclaimed_tasks=reclaimed,
        longest_reclaim_wait=f"{max(reclaim_waits):.1f}s",
        longest_task=f"{longest:.1f}s",
    )
    assert lost == 0, {k: v for k, v in final.items() if v != "completed"}
    assert reclaimed > 0  # the kills did hit work in flight


def _create_until_stopped(gateway: Gateway, stop: threading.Event) -> list[str]:
    """Create tasks until ``stop``; only answered creates count as acknowledged."""
    acknowledged = []
    with gateway.client() as http:
        while not stop.is_set():
            body = {"prompt": "keep me", "size": "64x64", "async": True}
            try:
                response = http.post("/v1/images/generations", json=body, timeout=5)
            except httpx.TransportError:
                time.sleep(0.05)  # the server is down: nothing was acknowledged
                continue
            if response.status_code == 200:
                acknowledged.append(response.json()["id"])
    return acknowledged


def test_api_process_killed_between_create_and_completion(
    gateway_factory: GatewayFactory,
) -> None:
    gateway = gateway_factory(env=FLEET_ENV)
    stop = threading.Event()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        creators = [pool.submit(_create_until_stopped, gateway, stop) for _ in range(4)]
        wait_for(lambda: held_by(gateway, gateway.process.pid) > 0, timeout=30)  # type: ignore[union-attr]
        gateway.kill()  # mid-create and mid-generation
        time.sleep(0.5)
        gateway.start()
        time.sleep(1.0)
        stop.set()
        acknowledged = [task_id for c in creators for task_id in c.result()]
    wait_for(all_finished(gateway, acknowledged), timeout=120, interval=0.5)
    final = statuses(gateway, acknowledged)
    lost = sum(1 for s in final.values() if s != "completed") + len(acknowledged) - len(final)
    report("api-kill9", acknowledged=len(acknowledged), lost=lost)
    assert lost == 0
    with gateway.client() as http:
        for task_id in acknowledged[:5]:
            assert http.get(f"/v1/tasks/{task_id}").json()["status"] == "completed"
