"""The asyncio/trio client: drives the shared flows with ``httpx.AsyncClient`` and anyio."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar, Unpack, cast

import anyio
import httpx

from imagegate.client._base import BaseClient
from imagegate.client._files import target
from imagegate.client._flows import Flow, Sleep, Step
from imagegate.client._retry import Outcome
from imagegate.client.types import (
    GenerateParams,
    ImageData,
    ImagesResponse,
    Model,
    ModelList,
    Task,
    TaskList,
)

T = TypeVar("T")


class AsyncClient(BaseClient[httpx.AsyncClient]):
    """The async twin of ``Client``: the same resources and methods, awaited."""

    def _new_http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(follow_redirects=True)

    @cached_property
    def images(self) -> AsyncImages:
        return AsyncImages(self)

    @cached_property
    def tasks(self) -> AsyncTasks:
        return AsyncTasks(self)

    @cached_property
    def models(self) -> AsyncModels:
        return AsyncModels(self)

    async def close(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _run(self, flow: Flow[T]) -> T:
        answer: Outcome | None = None
        while True:
            try:
                step = flow.send(answer)
            except StopIteration as stop:
                return cast(T, stop.value)
            answer = await self._perform(step)

    async def _perform(self, step: Step) -> Outcome | None:
        if isinstance(step, Sleep):
            await anyio.sleep(step.seconds)
            return None
        try:
            return await self._http.send(step.build(self._http))
        except httpx.TransportError as exc:
            return exc


class AsyncImages:
    """``client.images``; see ``Images`` for what each method does."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def generate(
        self, prompt: str, **params: Unpack[GenerateParams]
    ) -> ImagesResponse | Task:
        return await self._client._run(self._client._ops.generate(prompt, params))

    async def download(self, source: str | ImageData, path: str | Path) -> Path:
        blob = await self._client._run(self._client._ops.fetch(source))
        destination = target(Path(path), source, blob)
        await anyio.Path(destination).write_bytes(blob.data)
        return destination

    async def save(self, result: ImagesResponse | Task, directory: str | Path) -> list[Path]:
        named = await self._client._run(self._client._ops.fetch_all(result))
        folder = anyio.Path(directory)
        await folder.mkdir(parents=True, exist_ok=True)
        for name, blob in named:
            await (folder / name).write_bytes(blob.data)
        return [Path(directory) / name for name, _ in named]


class AsyncTasks:
    """``client.tasks``; see ``Tasks`` for what each method does."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def get(self, task_id: str) -> Task:
        return await self._client._run(self._client._ops.get_task(task_id))

    async def list(
        self, *, limit: int | None = None, after: str | None = None, status: str | None = None
    ) -> TaskList:
        return await self._client._run(self._client._ops.list_tasks(limit, after, status))

    async def cancel(self, task_id: str) -> Task:
        return await self._client._run(self._client._ops.cancel_task(task_id))

    async def wait(
        self,
        task: Task | str,
        *,
        interval: float | None = None,
        # The polling budget, checked between polls so TaskTimeout can still say where to
        # resume; a cancel scope (what ASYNC109 suggests) would cut a poll off mid-request.
        timeout: float = 300.0,  # noqa: ASYNC109
        on_update: Callable[[Task], object] | None = None,
    ) -> Task:
        flow = self._client._ops.wait(task, interval, timeout, on_update)
        return await self._client._run(flow)


class AsyncModels:
    """``client.models``; see ``Models`` for what each method does."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def list(self) -> ModelList:
        return await self._client._run(self._client._ops.list_models())

    async def retrieve(self, model_id: str) -> Model:
        return await self._client._run(self._client._ops.retrieve_model(model_id))
