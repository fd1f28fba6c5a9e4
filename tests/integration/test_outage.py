"""The database unavailable for 10 s under load: 503 ``store_unavailable`` with Retry-After,
never a 500 or a hang, and full recovery without restarting imagegate.

On PostgreSQL the test owns a cluster (never the machine's shared service) and stops it with
``pg_ctl -m fast``, which disconnects every client as a database restart does. On SQLite,
where no server can stop, another process holds the write lock for 10 s, as a long backup
or a stuck writer would.
"""

from __future__ import annotations

import concurrent.futures
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import httpx
import pytest

from tests.conftest import BACKEND, GatewayFactory
from tests.support.gateway import Gateway
from tests.support.pgcluster import Cluster
from tests.support.processes import statuses, wait_for

pytestmark = pytest.mark.faults

OUTAGE_S = 10.0
# A synchronous create answers the task object after 5 s, so no answer waits on the outage.
ENV = {
    "IMAGEGATE_LEASE": "3s",
    "IMAGEGATE_LOCAL_LATENCY": "0.2-0.5",
    "IMAGEGATE_SYNC_TIMEOUT": "5s",
}
# A request that takes longer than this is a hang (the store gives up after 5 s).
HANG_S = 20.0


@dataclass
class Load:
    """Clients creating and polling tasks until told to stop; every answer is kept."""

    gateway: Gateway
    stop: threading.Event = field(default_factory=threading.Event)
    acknowledged: list[str] = field(default_factory=list)
    answers: list[httpx.Response] = field(default_factory=list)
    slowest_s: float = 0.0

    def _record(self, call: Callable[[], httpx.Response]) -> httpx.Response:
        start = time.monotonic()
        response = call()
        self.slowest_s = max(self.slowest_s, time.monotonic() - start)
        self.answers.append(response)
        return response

    def client_loop(self, sync: bool) -> None:
        with httpx.Client(
            base_url=self.gateway.base_url, headers=self.gateway.headers, timeout=HANG_S
        ) as http:
            while not self.stop.is_set():
                body = {"prompt": "outage", "size": "64x64", "async": not sync}
                created = self._record(partial(http.post, "/v1/images/generations", json=body))
                if created.status_code == 200 and "task_id" in created.json():
                    self.acknowledged.append(created.json()["task_id"])
                if self.acknowledged:
                    task_id = random.choice(self.acknowledged)
                    self._record(partial(http.get, f"/v1/tasks/{task_id}"))
                time.sleep(0.05)


@contextmanager
def sqlite_lock(gateway: Gateway) -> Iterator[None]:
    """Hold SQLite's write lock from another connection (another process would do the same)."""
    conn = sqlite3.connect(gateway.data_dir / "imagegate.db", isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        conn.execute("ROLLBACK")
        conn.close()


def check_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "store_unavailable"
    assert response.json()["error"]["type"] == "service_unavailable"
    assert int(response.headers["retry-after"]) > 0


def during_outage(gateway: Gateway) -> None:
    """What must answer 503 while PostgreSQL is down: health, and auth of an uncached key."""
    wait_for(lambda: httpx.get(f"{gateway.base_url}/healthz").status_code == 503, timeout=10)
    check_unavailable(httpx.get(f"{gateway.base_url}/healthz", timeout=HANG_S))
    with gateway.client(gateway.other_key) as http:  # never used yet: not in the auth cache
        check_unavailable(http.get("/v1/tasks", timeout=HANG_S))


def test_store_outage_answers_503_and_recovers(gateway_factory: GatewayFactory) -> None:
    with outage_target(gateway_factory) as (gateway, outage):
        load = Load(gateway)
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            clients = [pool.submit(load.client_loop, sync) for sync in (False, False, True, False)]
            time.sleep(2)
            outage_started = time.monotonic()
            with outage():
                if BACKEND == "postgres":
                    during_outage(gateway)
                time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - outage_started)))
            recovered_in = wait_for(
                lambda: httpx.get(f"{gateway.base_url}/healthz").status_code == 200, timeout=30
            )
            time.sleep(2)  # the load runs on after the database came back
            load.stop.set()
            for client in clients:
                client.result()  # a client error (a hang: timeout) fails the test here
        wait_for(lambda: _all_completed(gateway, load.acknowledged), timeout=60, interval=0.5)
    codes = sorted({r.status_code for r in load.answers})
    unavailable = [r for r in load.answers if r.status_code == 503]
    print(
        f"\nFAULTS store-outage backend={BACKEND} outage={OUTAGE_S:.0f}s "
        f"requests={len(load.answers)} answered_503={len(unavailable)} "
        f"acknowledged={len(load.acknowledged)} lost=0 slowest_answer={load.slowest_s:.1f}s "
        f"recovered_after={recovered_in:.1f}s"
    )
    assert set(codes) <= {200, 503}, codes
    assert unavailable, "the outage was never observed"
    for response in unavailable:
        check_unavailable(response)


def _all_completed(gateway: Gateway, ids: list[str]) -> bool:
    found = statuses(gateway, ids)
    return len(found) == len(set(ids)) and set(found.values()) <= {"completed"}


@contextmanager
def outage_target(
    gateway_factory: GatewayFactory,
) -> Iterator[tuple[Gateway, Callable[[], Any]]]:
    """(gateway, outage) where ``outage()`` is a context manager making the store unavailable."""
    if BACKEND != "postgres":
        gateway = gateway_factory(env=ENV)
        yield gateway, lambda: sqlite_lock(gateway)
        return
    cluster = Cluster().init().start()

    @contextmanager
    def stopped() -> Iterator[None]:
        cluster.stop("fast")
        try:
            yield
        finally:
            cluster.start()

    try:
        yield gateway_factory(database_url=cluster.url, env=ENV), stopped
    finally:
        cluster.destroy()
