"""The task engine's promises through the real server: cancel, deadlines, retention,
idempotency across processes, and never resubmitting an ambiguous upstream job."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from imagegate.store.schema import tasks
from tests.conftest import GatewayFactory
from tests.support.processes import database_url, peek, wait_for
from tests.support.relay import MODEL, relay

NOT_FOUND = {
    "error": {
        "message": "Task not found or no longer available.",
        "type": "invalid_request_error",
        "code": "async_task_not_found",
        "param": None,
    }
}


def create(http: httpx.Client, headers: dict[str, str] | None = None, **fields: Any) -> Any:
    body = {"prompt": "a lighthouse", "size": "64x64", "async": True, **fields}
    response = http.post("/v1/images/generations", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def assert_cancelled(response: httpx.Response) -> None:
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["error_code"], body["cancelled"]) == ("failed", "cancelled", True)
    assert body["data"] == []


def finished(http: httpx.Client, task_id: str, timeout: float = 30) -> Any:
    body: dict[str, Any] = {}

    def done() -> bool:
        nonlocal body
        body = http.get(f"/v1/tasks/{task_id}").json()
        return body["status"] in ("completed", "failed")

    wait_for(done, timeout, interval=0.05)
    return body


def test_cancelling_a_pending_task_fails_it_as_cancelled(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(args=["--no-worker"])  # nobody claims: the task stays pending
    with gateway.client() as http:
        task = create(http)
        assert_cancelled(http.delete(f"/v1/tasks/{task['id']}"))
        again = http.delete(f"/v1/tasks/{task['id']}")
        assert again.status_code == 409
        assert again.json()["error"]["code"] == "task_not_cancellable"
        assert http.get(f"/v1/tasks/{task['id']}").json()["status"] == "failed"


def test_cancelling_a_processing_task_stops_its_upstream_job(
    gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    with relay(tmp_path, hold=True) as fakes:
        gateway = gateway_factory(env=fakes.env)
        with gateway.client() as http:
            task = create(http, model=MODEL)
            journaled = sa.select(tasks.c.upstream).where(tasks.c.id == task["id"])
            wait_for(lambda: bool(peek(gateway, journaled)[0][0]), timeout=15)
            response = http.delete(f"/v1/tasks/{task['id']}")
            assert_cancelled(response)
            assert "up-a" not in response.text  # the private journal never leaks
        [upstream_task] = fakes.upstreams["up-a"].tasks.values()
        assert upstream_task.cancelled and fakes.upstreams["up-a"].cancels == 1


def test_a_processing_task_on_a_provider_without_cancel_is_not_cancellable(
    gateway_factory: GatewayFactory,
) -> None:
    gateway = gateway_factory(env={"IMAGEGATE_LOCAL_LATENCY": "4"})
    with gateway.client() as http:
        task = create(http)
        wait_for(lambda: http.get(f"/v1/tasks/{task['id']}").json()["status"] == "processing", 10)
        response = http.delete(f"/v1/tasks/{task['id']}")
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "task_not_cancellable"
        assert finished(http, task["id"])["status"] == "completed"


def test_a_task_past_its_deadline_fails_with_timeout(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(
        env={"IMAGEGATE_LOCAL_LATENCY": "5", "IMAGEGATE_DEFAULT_DEADLINE": "1s"}
    )
    with gateway.client() as http:
        body = finished(http, create(http)["id"])
    assert (body["status"], body["error_code"], body["data"]) == ("failed", "timeout", [])


def test_retention_removes_tasks_and_their_files(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(
        env={
            "IMAGEGATE_RETENTION": "3s",
            "IMAGEGATE_DEFAULT_DEADLINE": "3s",
            "IMAGEGATE_SWEEP_INTERVAL": "0.5s",
        }
    )
    files = gateway.data_dir / "files"
    with gateway.client() as http:
        task = finished(http, create(http)["id"])
        assert task["status"] == "completed"
        url = task["data"][0]["url"]
        assert http.get(url).status_code == 200
        shard = task["id"][4:6]
        assert _tree(files) == [shard, f"{shard}/{task['id']}-0.png"]
        wait_for(lambda: http.get(f"/v1/tasks/{task['id']}").status_code == 404, timeout=15)
        assert http.get(f"/v1/tasks/{task['id']}").json() == NOT_FOUND
        assert http.get(f"/v1/images/generations/{task['id']}").json() == NOT_FOUND
        assert http.get("/v1/tasks").json()["data"] == []
        wait_for(lambda: not peek(gateway, sa.select(tasks.c.id)), timeout=15)  # row deleted
        assert _tree(files) == [shard]  # no folder per task is left behind
        assert http.get(url).status_code == 404


def test_idempotency_holds_across_processes_and_restarts(gateway_factory: GatewayFactory) -> None:
    first = gateway_factory()
    second = gateway_factory(database_url=database_url(first))
    headers = {"Idempotency-Key": "order-42"}

    def post(gateway_index: int) -> str:
        gateway = (first, second)[gateway_index % 2]
        with gateway.client() as http:
            return str(create(http, headers)["id"])

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        ids = set(pool.map(post, range(8)))
    assert len(ids) == 1
    first.restart()
    with first.client() as http:
        assert create(http, headers)["id"] in ids
        reused = http.post(
            "/v1/images/generations",
            json={"prompt": "another body", "size": "64x64", "async": True},
            headers=headers,
        )
        assert reused.status_code == 409
        assert reused.json()["error"]["code"] == "idempotency_key_reused"
    assert peek(first, sa.select(sa.func.count()).select_from(tasks))[0][0] == 1


def test_an_ambiguous_submit_is_never_resent_to_the_same_upstream(
    gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    with relay(tmp_path) as fakes:
        fakes.upstreams["up-a"].fail_next("bad_gateway")  # the job may have started: 502
        gateway = gateway_factory(env=fakes.env)
        with gateway.client() as http:
            body = finished(http, create(http, model=MODEL)["id"])
        assert body["status"] == "completed"
        assert fakes.upstreams["up-a"].create_calls == 1  # not retried on up-a
        assert fakes.upstreams["up-b"].submissions == 1  # served by the fallback
        assert fakes.duplicate_jobs() == 0


def test_a_transient_submit_failure_is_retried_on_the_same_upstream(
    gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    with relay(tmp_path) as fakes:
        fakes.upstreams["up-a"].fail_next("unavailable")  # 503: certainly nothing started
        gateway = gateway_factory(env=fakes.env)
        with gateway.client() as http:
            body = finished(http, create(http, model=MODEL)["id"])
        assert body["status"] == "completed"
        assert fakes.upstreams["up-a"].create_calls == 2
        assert fakes.upstreams["up-a"].submissions == 1
        assert fakes.upstreams["up-b"].create_calls == 0


def test_poll_errors_and_garbled_answers_keep_the_job(
    gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    with relay(tmp_path) as fakes:
        # Five bad polls in a row (the retry policy's attempt limit) must not resubmit.
        fakes.upstreams["up-a"].fail_next_poll(
            "malformed", "bad_gateway", "server_error", "unavailable", "malformed"
        )
        gateway = gateway_factory(env=fakes.env)
        with gateway.client() as http:
            body = finished(http, create(http, model=MODEL)["id"], timeout=90)
        assert body["status"] == "completed"
        assert fakes.upstreams["up-a"].create_calls == 1
        assert fakes.upstreams["up-b"].create_calls == 0


def _tree(root: Path) -> list[str]:
    return sorted(path.relative_to(root).as_posix() for path in root.rglob("*"))
