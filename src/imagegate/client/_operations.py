"""One flow per API operation, shared by ``Client`` and ``AsyncClient``."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

from imagegate.client._config import ClientConfig
from imagegate.client._files import Blob, decode_inline, extension_of, images_of
from imagegate.client._flows import Flow, Waiting, parse, request, task_path, wait
from imagegate.client.types import (
    GenerateParams,
    ImageData,
    ImagesResponse,
    Model,
    ModelList,
    Task,
    TaskList,
    parse_generation,
)

T = TypeVar("T")


class Operations:
    """Builds the flow of each call from the client's settings; performs no I/O itself."""

    def __init__(self, config: ClientConfig) -> None:
        self.config = config

    def call(self, reader: Callable[[Any], T], method: str, path: str, **options: Any) -> Flow[T]:
        step = self.config.send(method, path, **options)
        response = yield from request(step, self.config.max_retries)
        return parse(reader, response)

    def generate(self, prompt: str, params: GenerateParams) -> Flow[ImagesResponse | Task]:
        body, headers = generation_request(prompt, params)
        return self.call(
            parse_generation, "POST", "/v1/images/generations", json=body, headers=headers
        )

    def get_task(self, task_id: str) -> Flow[Task]:
        return self.call(Task.model_validate, "GET", task_path(task_id))

    def list_tasks(
        self, limit: int | None, after: str | None, status: str | None
    ) -> Flow[TaskList]:
        query = {"limit": limit, "after": after, "status": status}
        params = {key: value for key, value in query.items() if value is not None}
        return self.call(TaskList.model_validate, "GET", "/v1/tasks", params=params)

    def cancel_task(self, task_id: str) -> Flow[Task]:
        return self.call(Task.model_validate, "DELETE", task_path(task_id))

    def list_models(self) -> Flow[ModelList]:
        return self.call(ModelList.model_validate, "GET", "/v1/models")

    def retrieve_model(self, model_id: str) -> Flow[Model]:
        return self.call(Model.model_validate, "GET", f"/v1/models/{quote(model_id, safe='')}")

    def wait(
        self,
        target: Task | str,
        interval: float | None,
        timeout: float,
        on_update: Callable[[Task], object] | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> Flow[Task]:
        """Poll ``poll_url`` when the gateway gave one, else the unified task route.

        ``target`` is a ``Task``, a task id, or a poll URL (ids never contain ``/``).
        """
        known = target if isinstance(target, Task) else None
        if isinstance(target, Task):
            task_id, poll_url = target.id, target.poll_url or task_path(target.id)
        elif "/" in target:
            task_id, poll_url = target.rstrip("/").rsplit("/", 1)[-1], target
        else:
            task_id, poll_url = target, task_path(target)
        send = self.config.send("GET", poll_url)
        plan = Waiting(send, task_id, poll_url, interval, timeout, on_update, clock)
        return wait(plan, known)

    def fetch(self, source: str | ImageData) -> Flow[Blob]:
        """The bytes of one image; a URL is fetched without the API key (it is signed)."""
        if isinstance(source, ImageData) and source.b64_json:
            return decode_inline(source)
        url = source if isinstance(source, str) else source.url
        if not url:
            raise ValueError("this image has neither a url nor b64_json")
        response = yield from request(
            self.config.send("GET", url, authorized=False), self.config.max_retries
        )
        content_type = response.headers.get("content-type")
        return Blob(response.content, extension_of(response.content, content_type, url))

    def fetch_all(self, result: ImagesResponse | Task) -> Flow[list[tuple[str, Blob]]]:
        """Every image of a finished result, each with its file name."""
        stem, items = images_of(result)
        named = []
        for index, item in enumerate(items, start=1):
            blob = yield from self.fetch(item)
            named.append((f"{stem}-{index}{blob.extension}", blob))
        return named


def generation_request(
    prompt: str, params: GenerateParams
) -> tuple[dict[str, Any], dict[str, str]]:
    """Body and headers of a create call.

    Every create carries an ``Idempotency-Key`` (the caller's, or a fresh one) so that a retry
    after a lost answer returns the same task instead of paying for the images twice.
    """
    options: dict[str, Any] = dict(params)
    extra_body = options.pop("extra_body", None) or {}
    headers = dict(options.pop("extra_headers", None) or {})
    headers["Idempotency-Key"] = options.pop("idempotency_key", None) or str(uuid.uuid4())
    if "async_" in options:
        options["async"] = options.pop("async_")
    body = {"prompt": prompt, **{k: v for k, v in options.items() if v is not None}}
    body.update(extra_body)
    return body, headers
