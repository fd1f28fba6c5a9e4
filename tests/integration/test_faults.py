"""Crash safety with real processes: workers and the API killed with SIGKILL mid-flight.

On PostgreSQL the fleet is an API process (``serve --no-worker``) and two ``imagegate
worker`` processes; on SQLite, the API and one worker sharing the database file. Each test
prints its figures on a ``FAULTS`` line (run pytest with ``-s`` to see them).
"""

from __future__ import annotations

import concurrent.futures
import random
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from imagegate.store.schema import tasks
from tests.conftest import BACKEND, GatewayFactory
from tests.integration.conftest import WorkerFactory
from tests.support.gateway import Gateway
from tests.support.processes import (
    WorkerProcess,
    create_tasks,
    held_by,
    peek,
    statuses,
    wait_for,
)
from tests.support.relay import MODEL, relay

pytestmark = pytest.mark.faults

LEASE_S = 3.0
TASKS = 200
RELAY_TASKS = 100
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


def kill_and_restart(api: Gateway, workers: list[WorkerProcess], kills: int) -> list[float]:
    """SIGKILL a worker while it holds leases, restart it at once, ``kills`` times over;
    returns, per kill, how long until none of the dead worker's tasks was left unowned."""
    with concurrent.futures.ThreadPoolExecutor(kills) as watchers:
        reclaims = []
        for kill in range(kills):
            victim = workers[kill % len(workers)]
            wait_for(partial(lambda v: held_by(api, v.pid) > 0, victim), timeout=30)
            time.sleep(random.uniform(0, 1.5))  # anywhere in a task's life, not just its claim
            old_pid = victim.pid
            victim.kill()
            victim.start()
            # Its tasks are stuck until the lease runs out; then a worker takes them over.
            gone = partial(lambda p: held_by(api, p) == 0, old_pid)
            reclaims.append(watchers.submit(wait_for, gone, 60))
            time.sleep(1.0)
        return [r.result() for r in reclaims]


def start_fleet(
    gateway_factory: GatewayFactory, worker_factory: WorkerFactory, env: dict[str, str]
) -> tuple[Gateway, list[WorkerProcess]]:
    """The API alone plus workers: two on PostgreSQL, one on SQLite; 20 task slots in all."""
    fleet = 2 if BACKEND == "postgres" else 1
    api = gateway_factory(args=["--no-worker"], env=env)
    slots = {"IMAGEGATE_WORKER_CONCURRENCY": str(20 // fleet)}
    return api, [worker_factory(api, f"w{i}", slots) for i in range(fleet)]


def lost_tasks(gateway: Gateway, ids: list[str]) -> dict[str, str]:
    wait_for(all_finished(gateway, ids), timeout=180, interval=0.5)
    return {k: v for k, v in statuses(gateway, ids).items() if v != "completed"}


def refused_resubmits(gateway: Gateway, ids: list[str]) -> list[str]:
    """Failed tasks whose submits were ambiguous on every route (deliberately not resent)."""
    query = sa.select(tasks.c.id, tasks.c.upstream, tasks.c.error_code).where(
        tasks.c.id.in_(ids), tasks.c.status == "failed"
    )
    return [
        task_id
        for task_id, journal, code in peek(gateway, query)
        if code == "upstream_error"
        and journal["tried"] == ["up-a"]
        and journal["jobs"] == [{"submitting": True}]
    ]


def test_workers_killed_mid_flight_lose_no_task(
    gateway_factory: GatewayFactory, worker_factory: WorkerFactory
) -> None:
    api, workers = start_fleet(gateway_factory, worker_factory, FLEET_ENV)
    with api.client() as http:
        ids = create_tasks(http, TASKS)
    reclaim_waits = kill_and_restart(api, workers, KILLS)
    lost = lost_tasks(api, ids)
    reclaimed = peek(api, sa.select(sa.func.count()).where(tasks.c.attempts > 1))[0][0]
    longest = max(row[0] for row in peek(api, sa.select(tasks.c.updated_at - tasks.c.created_at)))
    report(
        "workers-kill9",
        workers=len(workers),
        tasks=TASKS,
        kills=KILLS,
        lost=len(lost),
        reclaimed_tasks=reclaimed,
        longest_reclaim_wait=f"{max(reclaim_waits):.1f}s",
        longest_task=f"{longest:.1f}s",
    )
    assert not lost
    assert reclaimed > 0  # the kills did hit work in flight


def test_killed_workers_never_submit_an_upstream_job_twice(
    gateway_factory: GatewayFactory, worker_factory: WorkerFactory, tmp_path: Path
) -> None:
    with relay(tmp_path) as fakes:
        # A slow create on the preferred upstream: some kills land mid-submit (ambiguous).
        fakes.upstreams["up-a"].latency_s = 0.3
        api, workers = start_fleet(gateway_factory, worker_factory, {**FLEET_ENV, **fakes.env})
        with api.client() as http:
            ids = create_tasks(http, RELAY_TASKS, model=MODEL)
        reclaim_waits = kill_and_restart(api, workers, KILLS)
        failed = lost_tasks(api, ids)
        refused = refused_resubmits(api, ids)
        report(
            "workers-kill9-upstream",
            workers=len(workers),
            tasks=RELAY_TASKS,
            kills=KILLS,
            lost=len(failed) - len(refused),
            upstream_jobs=sum(fakes.jobs_per_task().values()),
            duplicate_jobs=fakes.duplicate_jobs(),
            create_requests=fakes.create_requests(),
            fallbacks=fakes.upstreams["up-b"].submissions,
            failed_ambiguous_on_every_route=len(refused),
            longest_reclaim_wait=f"{max(reclaim_waits):.1f}s",
        )
        assert fakes.duplicate_jobs() == 0
        # A task is only given up when a crash hit its submit on every route in turn and the
        # vendors could not deduplicate it: resending could pay twice, so it fails instead.
        assert sorted(failed) == sorted(refused)


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
