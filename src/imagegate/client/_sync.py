"""The blocking client: drives the shared flows with ``httpx.Client`` and ``time.sleep``."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar, Unpack, cast

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


class Client(BaseClient[httpx.Client]):
    """A blocking client of an imagegate (or compatible) gateway; use it as a context manager."""

    def _new_http(self) -> httpx.Client:
        return httpx.Client(follow_redirects=True)

    @cached_property
    def images(self) -> Images:
        return Images(self)

    @cached_property
    def tasks(self) -> Tasks:
        return Tasks(self)

    @cached_property
    def models(self) -> Models:
        return Models(self)

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _run(self, flow: Flow[T]) -> T:
        answer: Outcome | None = None
        while True:
            try:
                step = flow.send(answer)
            except StopIteration as stop:
                return cast(T, stop.value)
            answer = self._perform(step)

    def _perform(self, step: Step) -> Outcome | None:
        if isinstance(step, Sleep):
            time.sleep(step.seconds)
            return None
        try:
            return self._http.send(step.build(self._http))
        except httpx.TransportError as exc:
            return exc


class Images:
    """``client.images``: create images and save them."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def generate(self, prompt: str, **params: Unpack[GenerateParams]) -> ImagesResponse | Task:
        """Create images: an ``ImagesResponse`` when they are ready, else a ``Task`` to wait on.

        ``async_=True`` always answers with a task. A synchronous request also becomes a task
        when the gateway's sync limit passes; ``client.tasks.wait`` turns either into images.
        """
        return self._client._run(self._client._ops.generate(prompt, params))

    def download(self, source: str | ImageData, path: str | Path) -> Path:
        """Write one image (a URL or a data item) to ``path``, or into it if it is a directory."""
        blob = self._client._run(self._client._ops.fetch(source))
        destination = target(Path(path), source, blob)
        destination.write_bytes(blob.data)
        return destination

    def save(self, result: ImagesResponse | Task, directory: str | Path) -> list[Path]:
        """Write every image of a result into ``directory`` (created if needed); the paths."""
        named = self._client._run(self._client._ops.fetch_all(result))
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        for name, blob in named:
            (folder / name).write_bytes(blob.data)
        return [folder / name for name, _ in named]


class Tasks:
    """``client.tasks``: look at, list, wait for and cancel generation tasks."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def get(self, task_id: str) -> Task:
        return self._client._run(self._client._ops.get_task(task_id))

    def list(
        self, *, limit: int | None = None, after: str | None = None, status: str | None = None
    ) -> TaskList:
        """The key's own tasks, newest first; pass ``next_cursor`` as ``after`` for more."""
        return self._client._run(self._client._ops.list_tasks(limit, after, status))

    def cancel(self, task_id: str) -> Task:
        return self._client._run(self._client._ops.cancel_task(task_id))

    def wait(
        self,
        task: Task | str,
        *,
        interval: float | None = None,
        timeout: float = 300.0,
        on_update: Callable[[Task], object] | None = None,
    ) -> Task:
        """Poll until the task completes and return it; raise ``TaskFailed`` or ``TaskTimeout``.

        ``task`` is a ``Task``, a task id or a poll URL. Between polls it pauses ``interval``
        seconds when given, else what the gateway's ``Retry-After`` asks, else 3 s;
        ``on_update`` sees every polled state.
        """
        flow = self._client._ops.wait(task, interval, timeout, on_update)
        return self._client._run(flow)


class Models:
    """``client.models``: what the gateway serves."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def list(self) -> ModelList:
        return self._client._run(self._client._ops.list_models())

    def retrieve(self, model_id: str) -> Model:
        return self._client._run(self._client._ops.retrieve_model(model_id))
