"""Drive an SDK flow by hand: scripted answers, a fake clock, a record of every step."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from imagegate.client._config import ClientConfig
from imagegate.client._flows import Flow, Send, Sleep
from imagegate.client._operations import Operations

T = TypeVar("T")
Answer = httpx.Response | httpx.TransportError | Callable[[Send], httpx.Response]


def answer(status: int = 200, body: Any = None, headers: dict[str, str] | None = None) -> Answer:
    """A response to whatever request comes next."""

    def respond(step: Send) -> httpx.Response:
        request = httpx.Request(step.method, step.url)
        return httpx.Response(status, json=body, headers=headers, request=request)

    return respond


def operations(**overrides: Any) -> Operations:
    settings: dict[str, Any] = {
        "api_key": "sk-test",
        "base_url": "http://gateway.test",
        "timeout": 5.0,
        "max_retries": 2,
        "default_headers": None,
    }
    settings.update(overrides)
    return Operations(ClientConfig.resolve(**settings))


@dataclass
class Script:
    """Answers each Send with the next scripted answer; Sleep advances the fake clock."""

    answers: list[Answer]
    now: float = 1000.0
    sent: list[Send] = field(default_factory=list)
    slept: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    def run(self, flow: Flow[T]) -> T:
        reply: Any = None
        while True:
            try:
                step = flow.send(reply)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            if isinstance(step, Sleep):
                self.slept.append(step.seconds)
                self.now += step.seconds
                reply = None
                continue
            self.sent.append(step)
            scripted = self.answers.pop(0)
            reply = scripted(step) if callable(scripted) else scripted


def task_body(status: str, task_id: str = "igt_one", **extra: Any) -> dict[str, Any]:
    return {
        "created": 1706000000,
        "id": task_id,
        "task_id": task_id,
        "poll_url": f"/v1/tasks/{task_id}",
        "status": status,
        "data": extra.pop("data", []),
        **extra,
    }


def error_body(code: str, message: str = "no", kind: str = "invalid_request_error") -> Any:
    return {"error": {"message": message, "type": kind, "code": code, "param": None}}
