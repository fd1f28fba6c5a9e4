"""Routing through the real gateway: fallback, cooldown, and per-provider concurrency limits."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.openai_images import OpenAIState
from tests.fakes.server import serve_app
from tests.support.asgi import ConcurrencyProbe
from tests.support.gateway import Gateway

CREATE = "/v1/images/generations"


@pytest.fixture
def vendor() -> Iterator[tuple[OpenAIState, ConcurrencyProbe, str]]:
    state = OpenAIState(api_key="right-key")
    probe = ConcurrencyProbe(state.app(), path_prefix="/v1/images")
    with serve_app(probe) as url:
        yield state, probe, url


def _openai_config(tmp_path: Path, url: str, routes: str, extra: str = "") -> Path:
    """A gateway configuration: one OpenAI-protocol provider at ``url`` and a model ``picture``."""
    path = tmp_path / "imagegate.toml"
    path.write_text(
        f"""
[providers.openai-main]
kind = "openai"
base_url = "{url}"
api_key_env = "TEST_OPENAI_KEY"
allow_private_urls = true
{extra}

[models."picture"]
routes = [{routes}]
sizes = ["256x256"]
default_size = "256x256"
"""
    )
    return path


WITH_FALLBACK = """
  { provider = "openai-main", upstream_model = "dall-e-2", priority = 0 },
  { provider = "local", upstream_model = "local", priority = 1 },
"""


def _wait(http: httpx.Client, task: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body: dict[str, Any] = http.get(task["poll_url"]).json()
        if body["status"] in ("completed", "failed"):
            return body
        time.sleep(0.1)
    raise AssertionError(f"task {task['id']} did not finish")


def _submit(http: httpx.Client, model: str, prompt: str = "a harbour at dawn") -> dict[str, Any]:
    response = http.post(CREATE, json={"model": model, "prompt": prompt, "async": True})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_bad_credentials_fall_back_and_cool_the_route_down(
    gateway_factory: Callable[..., Gateway],
    vendor: tuple[OpenAIState, ConcurrencyProbe, str],
    tmp_path: Path,
) -> None:
    state, _, url = vendor
    config = _openai_config(tmp_path, url, WITH_FALLBACK)
    gateway = gateway_factory(args=["--config", str(config)], env={"TEST_OPENAI_KEY": "wrong-key"})
    with gateway.client() as http:
        first = _wait(http, _submit(http, "picture"))
        calls_after_first = state.create_calls
        second = _wait(http, _submit(http, "picture"))
    assert first["status"] == second["status"] == "completed"
    assert calls_after_first == 1  # tried once, refused (401), then the local route served it
    assert state.create_calls == 1  # the unhealthy route is cooling down: not tried again
    assert state.submissions == 0


def test_a_healthy_primary_route_serves_and_results_are_rehosted(
    gateway_factory: Callable[..., Gateway],
    vendor: tuple[OpenAIState, ConcurrencyProbe, str],
    tmp_path: Path,
) -> None:
    state, _, url = vendor
    config = _openai_config(tmp_path, url, WITH_FALLBACK)
    gateway = gateway_factory(args=["--config", str(config)], env={"TEST_OPENAI_KEY": "right-key"})
    with gateway.client() as http:
        done = _wait(http, _submit(http, "picture"))
    assert done["status"] == "completed"
    assert state.submissions == 1
    assert done["data"][0]["url"].startswith(gateway.base_url)  # ours, not the vendor's
    state.files.expire_all()  # the vendor's link dies; ours keeps working
    assert httpx.get(done["data"][0]["url"]).status_code == 200


def test_provider_concurrency_limit_queues_work_instead_of_failing(
    gateway_factory: Callable[..., Gateway],
    vendor: tuple[OpenAIState, ConcurrencyProbe, str],
    tmp_path: Path,
) -> None:
    state, probe, url = vendor
    state.latency_s = 1.5  # long enough that all eight tasks queue even on a loaded machine
    config = _openai_config(
        tmp_path,
        url,
        '{ provider = "openai-main", upstream_model = "dall-e-2" }',
        extra="max_concurrency = 2",
    )
    gateway = gateway_factory(args=["--config", str(config)], env={"TEST_OPENAI_KEY": "right-key"})
    with gateway.client() as http:
        tasks = [_submit(http, "picture", f"scene {i}") for i in range(8)]
        finished = [_wait(http, task) for task in tasks]
    assert all(task["status"] == "completed" for task in finished)
    assert state.submissions == 8
    assert probe.peak == 2
