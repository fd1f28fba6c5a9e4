"""Client and AsyncClient drive the shared flows over httpx (MockTransport, no network)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from imagegate.client import AsyncClient, Client, ImagesResponse, Task
from tests.unit.client.script import task_body

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
Handler = Callable[[httpx.Request], httpx.Response]


def recording(handler: Handler) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    return httpx.MockTransport(record), seen


def sync_client(handler: Handler, **options: object) -> tuple[Client, list[httpx.Request]]:
    transport, seen = recording(handler)
    client = Client(
        api_key="sk-test",
        base_url="http://gw.test",
        http_client=httpx.Client(transport=transport),
        **options,
    )  # type: ignore[arg-type]
    return client, seen


def test_requests_carry_the_key_and_go_under_the_base_url() -> None:
    client, seen = sync_client(lambda r: httpx.Response(200, json=task_body("pending")))
    client.tasks.get("igt_one")
    assert str(seen[0].url) == "http://gw.test/v1/tasks/igt_one"
    assert seen[0].headers["authorization"] == "Bearer sk-test"
    assert seen[0].headers["user-agent"].startswith("imagegate-python")


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEGATE_BASE_URL", "http://env.test:9000/v1/")
    monkeypatch.setenv("IMAGEGATE_API_KEY", "sk-env")
    seen: list[httpx.Request] = []
    transport = httpx.MockTransport(
        lambda r: seen.append(r) or httpx.Response(200, json={"object": "list", "data": []})
    )
    with Client(http_client=httpx.Client(transport=transport)) as client:
        assert client.base_url == "http://env.test:9000"
        client.models.list()
    assert str(seen[0].url) == "http://env.test:9000/v1/models"
    assert seen[0].headers["authorization"] == "Bearer sk-env"


def test_the_default_base_url_is_the_local_gateway(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IMAGEGATE_BASE_URL", raising=False)
    with Client(api_key="sk-x") as client:
        assert client.base_url == "http://127.0.0.1:8000"


def test_a_retried_create_sends_the_same_idempotency_key() -> None:
    answers = iter(
        [
            httpx.Response(502, headers={"Retry-After": "0"}),
            httpx.Response(200, json=task_body("pending")),
        ]
    )
    client, seen = sync_client(lambda r: next(answers), max_retries=1)
    result = client.images.generate("a fox", model="m", async_=True)
    assert isinstance(result, Task)
    keys = {r.headers["idempotency-key"] for r in seen}
    assert len(seen) == 2
    assert len(keys) == 1


def test_a_sync_generate_can_come_back_as_a_task() -> None:
    client, seen = sync_client(lambda r: httpx.Response(200, json=task_body("processing")))
    result = client.images.generate("a slow fox")
    assert isinstance(result, Task)
    assert b'"async"' not in seen[0].content


def test_list_tasks_sends_only_the_given_filters() -> None:
    page = {
        "object": "list",
        "data": [task_body("completed")],
        "has_more": True,
        "next_cursor": "c2",
    }
    client, seen = sync_client(lambda r: httpx.Response(200, json=page))
    tasks = client.tasks.list(limit=5, status="completed")
    assert dict(seen[0].url.params) == {"limit": "5", "status": "completed"}
    assert tasks.has_more
    assert tasks.next_cursor == "c2"
    assert tasks.data[0].id == "igt_one"


def test_download_fetches_urls_without_the_api_key(tmp_path: Path) -> None:
    client, seen = sync_client(
        lambda r: httpx.Response(200, content=PNG, headers={"content-type": "image/png"})
    )
    path = client.images.download("http://files.test/a/b/pic?sig=1", tmp_path)
    assert path == tmp_path / "pic.png"
    assert path.read_bytes() == PNG
    assert "authorization" not in seen[0].headers


def test_save_writes_every_image_of_a_completed_task(tmp_path: Path) -> None:
    client, _ = sync_client(lambda r: httpx.Response(200, content=PNG))
    task = Task.model_validate(
        task_body("completed", data=[{"url": "/files/1"}, {"url": "/files/2"}])
    )
    paths = client.images.save(task, tmp_path / "out")
    assert [p.name for p in paths] == ["igt_one-1.png", "igt_one-2.png"]
    assert all(p.read_bytes() == PNG for p in paths)


def test_save_decodes_inline_images_without_any_request(tmp_path: Path) -> None:
    client, seen = sync_client(lambda r: httpx.Response(500))
    result = ImagesResponse.model_validate(
        {"created": 7, "data": [{"b64_json": base64.b64encode(PNG).decode()}]}
    )
    (path,) = client.images.save(result, tmp_path)
    assert path.read_bytes() == PNG
    assert path.suffix == ".png"
    assert seen == []


def test_saving_an_unfinished_task_is_refused(tmp_path: Path) -> None:
    client, _ = sync_client(lambda r: httpx.Response(500))
    with pytest.raises(ValueError, match="pending"):
        client.images.save(Task.model_validate(task_body("pending")), tmp_path)


async def test_the_async_client_runs_the_same_flows(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/files/"):
            return httpx.Response(200, content=PNG)
        done = task_body("completed", data=[{"url": "/files/1"}])
        return httpx.Response(200, json=done)

    transport, seen = recording(handler)
    async with AsyncClient(
        api_key="sk-a",
        base_url="http://gw.test",
        http_client=httpx.AsyncClient(transport=transport),
    ) as client:
        created = await client.images.generate("a fox", async_=True)
        assert isinstance(created, Task)
        task = await client.tasks.wait(created)
        paths = await client.images.save(task, tmp_path)
    assert paths[0].read_bytes() == PNG
    assert [r.method for r in seen] == ["POST", "GET"]


async def test_the_async_client_sleeps_and_retries_like_the_sync_one() -> None:
    answers = iter(
        [
            httpx.Response(503, headers={"Retry-After": "0"}),
            httpx.Response(200, json=task_body("pending")),
        ]
    )
    transport, seen = recording(lambda r: next(answers))
    http = httpx.AsyncClient(transport=transport)
    async with AsyncClient(api_key="sk-a", base_url="http://gw.test", http_client=http) as client:
        task = await client.tasks.get("igt_one")
    assert task.status == "pending"
    assert len(seen) == 2


def test_a_callers_http_client_is_left_open() -> None:
    http = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(204)))
    with Client(api_key="sk-x", http_client=http):
        pass
    assert not http.is_closed
    http.close()
