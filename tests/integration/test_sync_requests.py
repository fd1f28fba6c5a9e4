"""Synchronous requests run by the worker of the process that received them.

Such a task is claimed by that worker from the start and answered from the run's own
outcome. It is written when the run ends, or once it has run for ``store.held.HOLD_S``; from
then on it must be a normal durable task: listed, pollable, stored, finished by another
worker if its process dies, and idempotent like any other.
"""

from __future__ import annotations

import base64
import concurrent.futures
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from imagegate.store.schema import tasks
from tests.conftest import GatewayFactory
from tests.support.gateway import Gateway
from tests.support.processes import held_by, peek, wait_for
from tests.support.relay import MODEL, relay

CREATE = "/v1/images/generations"
BODY = {"prompt": "a red kite", "size": "64x64"}


def only_task(gateway: Gateway) -> Any:
    (row,) = peek(gateway, sa.select(tasks.c.id, tasks.c.status, tasks.c.attempts))
    return row


def test_a_sync_answer_holds_the_stored_image(gateway: Gateway) -> None:
    with gateway.client() as http:
        inline = http.post(CREATE, json={**BODY, "response_format": "b64_json"}, timeout=60)
        linked = http.post(CREATE, json=BODY, timeout=60)
        assert inline.status_code == linked.status_code == 200
        (item,) = inline.json()["data"]
        assert set(item) == {"b64_json", "revised_prompt"}
        assert set(linked.json()["data"][0]) == {"url", "revised_prompt"}
        # The inlined bytes are the copy kept in storage, served by the task's own URL.
        task = http.get("/v1/tasks", params={"limit": 2}).json()["data"][1]
        assert task["status"] == "completed"
        stored = http.get(task["data"][0]["url"])
        assert stored.status_code == 200
        assert stored.content == base64.b64decode(item["b64_json"])


def test_a_sync_request_past_the_limit_answers_the_task_to_poll(
    gateway_factory: GatewayFactory,
) -> None:
    slow = gateway_factory(env={"IMAGEGATE_SYNC_TIMEOUT": "0.5", "IMAGEGATE_LOCAL_LATENCY": "2"})
    with slow.client() as http:
        answer = http.post(CREATE, json=BODY, timeout=60)
        assert answer.status_code == 200
        assert answer.headers["cache-control"] == "no-store"
        assert "retry-after" in answer.headers
        task = answer.json()
        assert task["status"] == "processing"
        assert task["poll_url"] == f"/v1/tasks/{task['id']}"

        def completed() -> bool:
            return bool(http.get(task["poll_url"]).json()["status"] == "completed")

        wait_for(completed, timeout=30, interval=0.1)


def test_an_idempotent_sync_retry_gets_the_same_images(gateway: Gateway) -> None:
    headers = {"Idempotency-Key": "sync-retry-7"}
    body = {**BODY, "prompt": "the same kite twice"}
    with gateway.client() as http:
        first = http.post(CREATE, json=body, headers=headers, timeout=60)
        again = http.post(CREATE, json=body, headers=headers, timeout=60)
        other = http.post(CREATE, json={**body, "n": 2}, headers=headers, timeout=60)
    assert first.status_code == again.status_code == 200
    url = first.json()["data"][0]["url"]
    assert again.json()["data"][0]["url"].split("?")[0] == url.split("?")[0]
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_key_reused"


def test_a_sync_request_in_flight_at_sigterm_still_gets_its_images(
    gateway_factory: GatewayFactory,
) -> None:
    gateway = gateway_factory(env={"IMAGEGATE_LOCAL_LATENCY": "2"})
    assert gateway.process is not None
    with concurrent.futures.ThreadPoolExecutor(1) as pool, gateway.client() as http:
        pending = pool.submit(http.post, CREATE, json=BODY, timeout=60)
        wait_for(lambda: held_by(gateway, gateway.process.pid) == 1, timeout=20)  # type: ignore[union-attr]
        gateway.stop()
        answer = pending.result()
    assert answer.status_code == 200
    assert answer.json()["data"][0]["url"]
    assert only_task(gateway)[1:] == ("completed", 1)


@pytest.mark.faults
def test_a_gateway_killed_mid_sync_request_has_the_task_finished_once(
    gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    with relay(tmp_path) as fakes:
        upstream = fakes.upstreams["up-a"]
        upstream.latency_s = 4.0  # the kill lands while the upstream works on the request
        env = {**fakes.env, "IMAGEGATE_LEASE": "2s", "IMAGEGATE_WORKER_POLL_INTERVAL": "0.2s"}
        gateway = gateway_factory(env=env)
        with concurrent.futures.ThreadPoolExecutor(1) as pool, gateway.client() as http:
            pending = pool.submit(http.post, CREATE, json={**BODY, "model": MODEL})
            wait_for(lambda: upstream.create_calls > 0, timeout=30)
            # Stored once it has run for the hold (a quicker run is written when it ends).
            wait_for(lambda: len(peek(gateway, sa.select(tasks.c.id))) == 1, timeout=30)
            gateway.kill()
            with pytest.raises(httpx.HTTPError):
                pending.result()
        task_id, status, _ = only_task(gateway)
        assert status == "processing"  # acknowledged to nobody, yet durable
        gateway.start()  # its worker takes the task over once the dead one's lease lapses
        wait_for(lambda: only_task(gateway)[1] == "completed", timeout=60, interval=0.2)
        assert only_task(gateway)[2] == 2
        assert fakes.jobs_per_task()[task_id] == 1  # the resubmit found the same upstream job
        assert fakes.duplicate_jobs() == 0
