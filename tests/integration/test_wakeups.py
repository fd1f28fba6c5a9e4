"""New tasks wake idle workers at once, not on the next poll tick.

The workers here poll only every 60 s, so a task finished within seconds proves the wake-up:
PostgreSQL's NOTIFY reaching a worker in another process, or on SQLite the API waking its
in-process worker directly. (SQLite has no wake-up between processes: separate workers on
SQLite find new tasks by polling.)
"""

from __future__ import annotations

from tests.conftest import BACKEND, GatewayFactory
from tests.integration.conftest import WorkerFactory
from tests.support.processes import create_tasks, statuses, wait_for

SLOW_POLL = {"IMAGEGATE_WORKER_POLL_INTERVAL": "60s"}


def test_a_new_task_wakes_an_idle_worker(
    gateway_factory: GatewayFactory, worker_factory: WorkerFactory
) -> None:
    if BACKEND == "postgres":
        api = gateway_factory(args=["--no-worker"], env=SLOW_POLL)
        worker_factory(api, "idle")
    else:
        api = gateway_factory(env=SLOW_POLL)
    with api.client() as http:
        # Once the first task is done, the worker has started and gone back to sleep.
        warm_up = create_tasks(http, 1)
        wait_for(lambda: statuses(api, warm_up) == {warm_up[0]: "completed"}, timeout=30)
        ids = create_tasks(http, 3)
    wait_for(lambda: set(statuses(api, ids).values()) == {"completed"}, timeout=20)


def test_a_synchronous_request_to_an_api_without_worker_gets_its_images(
    gateway_factory: GatewayFactory, worker_factory: WorkerFactory
) -> None:
    # On PostgreSQL both directions go through NOTIFY: the new task to the worker, the
    # finish back to the waiting API process.
    env = SLOW_POLL if BACKEND == "postgres" else {}
    api = gateway_factory(args=["--no-worker"], env=env)
    worker_factory(api, "w")
    with api.client() as http:
        body = {"prompt": "right away", "size": "64x64"}
        for _ in range(3):
            answer = http.post("/v1/images/generations", json=body, timeout=60).json()
            assert "task_id" not in answer
            assert answer["data"][0]["url"]
