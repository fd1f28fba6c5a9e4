"""The SDK against the real ``imagegate serve`` process: every path a user's code takes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import imagegate
from tests.conftest import GatewayFactory
from tests.support.gateway import Gateway, free_port

PNG_MAGIC = b"\x89PNG"


@pytest.fixture
def client(gateway: Gateway) -> Iterator[imagegate.Client]:
    with imagegate.Client(base_url=gateway.base_url, api_key=gateway.key) as sdk:
        yield sdk


def sdk_for(gateway: Gateway, **options: object) -> imagegate.Client:
    return imagegate.Client(base_url=gateway.base_url, api_key=gateway.key, **options)  # type: ignore[arg-type]


def test_a_sync_generate_returns_images_that_download(
    client: imagegate.Client, tmp_path: Path
) -> None:
    result = client.images.generate("a red fox", size="64x64")
    assert isinstance(result, imagegate.ImagesResponse)
    assert result.data[0].url
    path = client.images.download(result.data[0], tmp_path / "fox.png")
    assert path.read_bytes().startswith(PNG_MAGIC)


def test_b64_json_images_are_saved_without_a_download(
    client: imagegate.Client, tmp_path: Path
) -> None:
    result = client.images.generate("a red fox", size="64x64", response_format="b64_json")
    assert isinstance(result, imagegate.ImagesResponse)
    (path,) = client.images.save(result, tmp_path)
    assert path.read_bytes().startswith(PNG_MAGIC)


def test_an_async_task_is_waited_for_and_saved(client: imagegate.Client, tmp_path: Path) -> None:
    task = client.images.generate("two owls", size="64x64", n=2, async_=True)
    assert isinstance(task, imagegate.Task)
    assert task.status in {"pending", "processing"}
    assert len(task.data) == 2
    seen: list[str] = []
    done = client.tasks.wait(task, interval=0.2, on_update=lambda t: seen.append(t.status))
    assert done.status == "completed"
    assert seen[-1] == "completed"
    paths = client.images.save(done, tmp_path / "owls")
    assert [p.name for p in paths] == [f"{task.id}-1.png", f"{task.id}-2.png"]
    assert client.tasks.get(task.id).status == "completed"


@pytest.mark.parametrize("route", ["/v1/images/generations/{id}", "/v1/images/{id}"])
def test_wait_follows_any_status_route_given_as_poll_url(
    client: imagegate.Client, route: str
) -> None:
    task = client.images.generate("a wren", size="64x64", async_=True)
    assert isinstance(task, imagegate.Task)
    done = client.tasks.wait(route.format(id=task.id), interval=0.2)
    assert done.id == task.id
    assert done.status == "completed"


async def test_the_async_client_generates_and_waits(gateway: Gateway, tmp_path: Path) -> None:
    async with imagegate.AsyncClient(base_url=gateway.base_url, api_key=gateway.key) as sdk:
        task = await sdk.images.generate("a heron", size="64x64", async_=True)
        assert isinstance(task, imagegate.Task)
        done = await sdk.tasks.wait(task.id, interval=0.2)
        (path,) = await sdk.images.save(done, tmp_path)
    assert path.read_bytes().startswith(PNG_MAGIC)


def test_a_sync_request_past_the_servers_limit_comes_back_as_a_task(
    gateway_factory: GatewayFactory,
) -> None:
    slow = gateway_factory(env={"IMAGEGATE_SYNC_TIMEOUT": "0.5", "IMAGEGATE_LOCAL_LATENCY": "2"})
    with sdk_for(slow) as sdk:
        result = sdk.images.generate("a slow snail", size="64x64")
        assert isinstance(result, imagegate.Task)
        assert sdk.tasks.wait(result, interval=0.2).status == "completed"


def test_a_failed_task_raises_task_failed(gateway_factory: GatewayFactory) -> None:
    broken = gateway_factory(env={"IMAGEGATE_LOCAL_FAILURE_RATE": "1"})
    with sdk_for(broken) as sdk:
        task = sdk.images.generate("doomed", size="64x64", async_=True)
        with pytest.raises(imagegate.TaskFailed) as caught:
            sdk.tasks.wait(task, interval=0.2, timeout=60)
    assert caught.value.task_id == task.id
    assert caught.value.error
    assert caught.value.error_code


def test_wait_times_out_with_where_to_resume(gateway_factory: GatewayFactory) -> None:
    slow = gateway_factory(env={"IMAGEGATE_LOCAL_LATENCY": "3"})
    with sdk_for(slow) as sdk:
        task = sdk.images.generate("a tortoise", size="64x64", async_=True)
        with pytest.raises(imagegate.TaskTimeout) as caught:
            sdk.tasks.wait(task, interval=0.2, timeout=0.5)
        assert caught.value.task_id == task.id
        assert caught.value.poll_url == task.poll_url
        assert sdk.tasks.wait(caught.value.poll_url, interval=0.2).status == "completed"


def test_a_pending_task_is_cancelled_and_then_reports_cancelled(
    gateway_factory: GatewayFactory,
) -> None:
    idle = gateway_factory(args=["--no-worker"])
    with sdk_for(idle) as sdk:
        task = sdk.images.generate("never drawn", size="64x64", async_=True)
        cancelled = sdk.tasks.cancel(task.id)
        assert cancelled.status == "failed"
        assert cancelled.error_code == "cancelled"
        with pytest.raises(imagegate.TaskFailed) as caught:
            sdk.tasks.wait(task.id)
        assert caught.value.error_code == "cancelled"
        with pytest.raises(imagegate.ConflictError) as conflict:
            sdk.tasks.cancel(task.id)
        assert conflict.value.code == "task_not_cancellable"


def test_an_unknown_or_foreign_task_is_not_found(
    client: imagegate.Client, gateway: Gateway
) -> None:
    task = client.images.generate("mine", size="64x64", async_=True)
    with pytest.raises(imagegate.TaskNotFound):
        client.tasks.get("igt_" + "a" * 32)
    other = imagegate.Client(base_url=gateway.base_url, api_key=gateway.other_key)
    with other, pytest.raises(imagegate.TaskNotFound) as caught:
        other.tasks.wait(task.id)
    assert caught.value.request_id


def test_a_bad_key_raises_authentication_error(gateway: Gateway) -> None:
    sdk = imagegate.Client(base_url=gateway.base_url, api_key="sk-wrong-key-000000")
    with sdk, pytest.raises(imagegate.AuthenticationError) as caught:
        sdk.models.list()
    assert caught.value.code == "invalid_api_key"


def test_an_idempotency_key_returns_the_same_task_and_rejects_another_body(
    client: imagegate.Client,
) -> None:
    first = client.images.generate("a lark", size="64x64", async_=True, idempotency_key="lark-1")
    again = client.images.generate("a lark", size="64x64", async_=True, idempotency_key="lark-1")
    assert isinstance(first, imagegate.Task)
    assert isinstance(again, imagegate.Task)
    assert again.id == first.id
    with pytest.raises(imagegate.ConflictError) as caught:
        client.images.generate("a crow", size="64x64", async_=True, idempotency_key="lark-1")
    assert caught.value.code == "idempotency_key_reused"


def test_invalid_parameters_raise_bad_request_naming_the_field(client: imagegate.Client) -> None:
    with pytest.raises(imagegate.BadRequestError) as caught:
        client.images.generate("tiny", size="1x1")
    assert caught.value.param == "size"


def test_models_are_listed_and_retrieved(client: imagegate.Client) -> None:
    listed = client.models.list()
    first = listed.data[0]
    assert client.models.retrieve(first.id).id == first.id
    with pytest.raises(imagegate.NotFoundError):
        client.models.retrieve("no-such-model")


def test_tasks_are_listed_newest_first_page_by_page(client: imagegate.Client) -> None:
    made = [client.images.generate(f"page {i}", size="64x64", async_=True) for i in range(3)]
    first = client.tasks.list(limit=2)
    assert first.has_more
    assert first.next_cursor
    second = client.tasks.list(limit=2, after=first.next_cursor)
    listed = [t.id for t in first.data + second.data]
    assert listed[:3] == [t.id for t in reversed(made)]


def test_an_unreachable_gateway_raises_a_connection_error() -> None:
    sdk = imagegate.Client(base_url=f"http://127.0.0.1:{free_port()}", max_retries=0)
    with sdk, pytest.raises(imagegate.APIConnectionError):
        sdk.models.list()
