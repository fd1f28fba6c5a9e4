"""Graceful stop on SIGTERM: stop claiming, finish what is in hand, release what cannot finish."""

from __future__ import annotations

import signal

import pytest
import sqlalchemy as sa

from imagegate.store.schema import tasks
from tests.conftest import GatewayFactory
from tests.integration.conftest import WorkerFactory
from tests.support.processes import create_tasks, held_by, peek, statuses, wait_for

pytestmark = pytest.mark.faults


def test_sigterm_worker_finishes_tasks_in_hand_and_claims_no_more(
    gateway_factory: GatewayFactory, worker_factory: WorkerFactory
) -> None:
    api = gateway_factory(args=["--no-worker"], env={"IMAGEGATE_LOCAL_LATENCY": "3"})
    worker = worker_factory(api, "w", {"IMAGEGATE_WORKER_CONCURRENCY": "2"})
    with api.client() as http:
        ids = create_tasks(http, 4)
    wait_for(lambda: held_by(api, worker.pid) == 2, timeout=20)
    in_hand = [
        r[0] for r in peek(api, sa.select(tasks.c.id).where(tasks.c.lease_owner.isnot(None)))
    ]
    assert worker.terminate() == 0
    final = statuses(api, ids)
    assert [final[i] for i in in_hand] == ["completed", "completed"]
    assert sorted(final.values()) == ["completed", "completed", "pending", "pending"]
    worker_factory(api, "next")
    wait_for(lambda: set(statuses(api, ids).values()) == {"completed"}, timeout=30)


def test_sigterm_worker_releases_what_it_cannot_finish_in_its_grace(
    gateway_factory: GatewayFactory, worker_factory: WorkerFactory
) -> None:
    api = gateway_factory(
        args=["--no-worker"],
        env={"IMAGEGATE_LOCAL_LATENCY": "60", "IMAGEGATE_LEASE": "120s"},
    )
    slow = worker_factory(api, "slow", {"IMAGEGATE_SHUTDOWN_GRACE": "0.5s"})
    with api.client() as http:
        ids = create_tasks(http, 2)
    wait_for(lambda: held_by(api, slow.pid) == 2, timeout=20)
    assert slow.terminate(timeout=20) == 0
    rows = peek(
        api,
        sa.select(tasks.c.status, tasks.c.lease_owner, tasks.c.attempts).where(tasks.c.id.in_(ids)),
    )
    # Given back untouched: claimable at once (no lease to wait out), attempt not counted.
    assert [tuple(r) for r in rows] == [("processing", None, 0)] * 2
    worker_factory(api, "fast", {"IMAGEGATE_LOCAL_LATENCY": "0"})
    wait_for(lambda: set(statuses(api, ids).values()) == {"completed"}, timeout=30)


def test_sigterm_serve_drains_its_in_process_worker(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(env={"IMAGEGATE_LOCAL_LATENCY": "2"})
    with gateway.client() as http:
        ids = create_tasks(http, 3)
    assert gateway.process is not None
    wait_for(lambda: held_by(gateway, gateway.process.pid) == 3, timeout=20)  # type: ignore[union-attr]
    gateway.stop()
    # uvicorn re-raises the signal once its graceful shutdown is over: -SIGTERM, not a kill.
    assert gateway.process.returncode in (0, -signal.SIGTERM)
    assert set(statuses(gateway, ids).values()) == {"completed"}
