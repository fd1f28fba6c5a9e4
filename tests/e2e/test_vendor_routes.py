"""Every vendor adapter end to end: ``imagegate serve --config FILE`` as a subprocess, its
providers pointing at the fake vendors (and at a second real gateway) over loopback."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.fakes.bfl import BFLState
from tests.fakes.common import FakeVendor
from tests.fakes.openai_images import OpenAIState
from tests.fakes.openai_tasks import TasksState
from tests.fakes.replicate import ReplicateState
from tests.fakes.server import serve_app
from tests.support.gateway import TEST_KEY, Gateway

CONFIG = """\
default_model = "flux-pro-1.1"

[providers.openai]
kind = "openai"
base_url = "{openai}"
api_key_env = "FAKE_VENDOR_KEY"
allow_private_urls = true

[providers.peer]
kind = "openai_compatible"
base_url = "{peer}"
api_key_env = "FAKE_VENDOR_KEY"
allow_private_urls = true

[providers.gateway-b]
kind = "openai_compatible"
base_url = "{gateway_b}"
api_key_env = "UPSTREAM_GATEWAY_KEY"
allow_private_urls = true

[providers.bfl]
kind = "bfl"
base_url = "{bfl}"
api_key_env = "FAKE_VENDOR_KEY"
allow_private_urls = true

[providers.replicate]
kind = "replicate"
base_url = "{replicate}"
api_key_env = "FAKE_VENDOR_KEY"
allow_private_urls = true
wait_s = 1

[models.gpt-image-1]
routes = [{{ provider = "openai" }}]
sizes = ["1024x1024"]

[models.dall-e-3]
routes = [{{ provider = "openai" }}]
sizes = ["1024x1024"]
max_n = 2

[models.peer-flux]
routes = [{{ provider = "peer", upstream_model = "flux-dev" }}]

[models.relayed-local]
routes = [{{ provider = "gateway-b", upstream_model = "local" }}]

[models."flux-pro-1.1"]
routes = [{{ provider = "bfl" }}]
sizes = ["512x512", "768x512"]
default_size = "512x512"
max_n = 4

[models.flux-schnell]
routes = [{{ provider = "replicate", upstream_model = "black-forest-labs/flux-schnell" }}]
"""


class Fakes:
    """The fake vendors, serving while the module's gateway runs."""

    def __init__(self) -> None:
        self.openai, self.peer = OpenAIState(), TasksState(polls_to_finish=1)
        self.bfl, self.replicate = BFLState(polls_to_finish=1), ReplicateState(polls_to_finish=1)
        self.urls: dict[str, str] = {}

    def serve(self, stack: ExitStack) -> None:
        vendors: dict[str, FakeVendor] = {
            "openai": self.openai,
            "peer": self.peer,
            "bfl": self.bfl,
            "replicate": self.replicate,
        }
        for name, state in vendors.items():
            self.urls[name] = stack.enter_context(serve_app(state.app()))


@pytest.fixture(scope="module")
def fakes() -> Iterator[Fakes]:
    fakes = Fakes()
    with ExitStack() as stack:
        fakes.serve(stack)
        yield fakes


@pytest.fixture(scope="module")
def gateway(
    fakes: Fakes,
    tmp_path_factory: pytest.TempPathFactory,
    database_factory: Callable[[], Any],
) -> Iterator[Gateway]:
    """Gateway A (configured by file) in front of the fakes and of gateway B (defaults)."""
    root = tmp_path_factory.mktemp("vendors")
    with database_factory() as url_b, database_factory() as url_a:
        gateway_b = Gateway(root / "b", database_url=url_b).start()
        config = root / "gateway.toml"
        config.write_text(CONFIG.format(gateway_b=gateway_b.base_url, **fakes.urls))
        env = {"FAKE_VENDOR_KEY": "test-key", "UPSTREAM_GATEWAY_KEY": TEST_KEY}
        gateway_a = Gateway(root / "a", database_url=url_a, env=env, args=["--config", str(config)])
        try:
            yield gateway_a.start()
        finally:
            gateway_a.stop()
            gateway_b.stop()


def run_task(gateway: Gateway, body: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
    """Create an async task and poll its exact poll_url until it is terminal."""
    with gateway.client() as http:
        created = http.post("/v1/images/generations", json={**body, "async": True})
        assert created.status_code == 200, created.text
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            task: dict[str, Any] = http.get(created.json()["poll_url"]).json()
            if task["status"] in ("completed", "failed"):
                return task
            time.sleep(0.2)
    raise AssertionError(f"task did not finish: {task}")


def image_at(gateway: Gateway, url: str) -> Image.Image:
    response = httpx.get(url if url.startswith("http") else gateway.base_url + url, timeout=30)
    assert response.status_code == 200
    return Image.open(io.BytesIO(response.content))


@pytest.mark.parametrize(
    ("model", "size", "n"),
    [
        ("gpt-image-1", "1024x1024", 2),
        ("dall-e-3", "1024x1024", 2),
        ("peer-flux", "256x256", 2),
        ("relayed-local", "128x128", 2),
        ("flux-pro-1.1", "768x512", 2),
        ("flux-schnell", "512x512", 1),
    ],
)
def test_task_completes_through_each_vendor(
    gateway: Gateway, model: str, size: str, n: int
) -> None:
    task = run_task(
        gateway, {"model": model, "prompt": "a lantern by a lake", "size": size, "n": n}
    )
    assert task["status"] == "completed", task
    assert len(task["data"]) == n
    width, height = map(int, size.split("x"))
    assert image_at(gateway, task["data"][0]["url"]).size == (width, height)


def test_bfl_makes_one_upstream_job_per_image(gateway: Gateway, fakes: Fakes) -> None:
    before = fakes.bfl.submissions
    body = {"model": "flux-pro-1.1", "prompt": "three kites", "n": 3, "size": "512x512"}
    task = run_task(gateway, body)
    assert task["status"] == "completed", task
    assert fakes.bfl.submissions - before == 3


@pytest.mark.parametrize("model", ["gpt-image-1", "peer-flux", "flux-pro-1.1", "flux-schnell"])
def test_moderation_fails_the_task_as_content_policy(gateway: Gateway, model: str) -> None:
    task = run_task(gateway, {"model": model, "prompt": "an unsafe picture"})
    assert task["status"] == "failed", task
    assert task["error_code"] == "content_policy_violation"
    assert task["data"] == []


def test_rate_limited_vendor_is_retried_without_a_duplicate_job(
    gateway: Gateway, fakes: Fakes
) -> None:
    fakes.bfl.retry_after_s = 1
    before = fakes.bfl.submissions
    fakes.bfl.fail_next("rate_limit")
    body = {"model": "flux-pro-1.1", "prompt": "a patient heron", "size": "512x512"}
    task = run_task(gateway, body)
    assert task["status"] == "completed", task
    assert fakes.bfl.submissions - before == 1


def test_relay_sends_a_stable_idempotency_key_per_call(gateway: Gateway, fakes: Fakes) -> None:
    task = run_task(gateway, {"model": "peer-flux", "prompt": "a quiet harbour"})
    assert task["status"] == "completed", task
    keys = {seen.get("idempotency-key") for seen in fakes.peer.headers_seen}
    assert f"{task['id']}-peer-0" in keys


def test_upstream_urls_never_reach_the_client(gateway: Gateway, fakes: Fakes) -> None:
    body = {"model": "flux-schnell", "prompt": "a copper kettle", "size": "512x512"}
    url = run_task(gateway, body)["data"][0]["url"]
    assert not url.startswith(fakes.urls["replicate"])
    fakes.replicate.files.expire_all()  # the vendor's copy is gone; ours still answers
    assert image_at(gateway, url).size == (512, 512)


def test_config_error_names_the_line_and_stops_the_server(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[providers.x]\nkind = "bfl"\napi_key_env = "NOPE_NOT_SET"\nkey = 1\n')
    gateway = Gateway(tmp_path / "gw", args=["--config", str(config)])
    with pytest.raises(RuntimeError) as caught:
        gateway.start(timeout=20)
    assert f"{config}:4: providers.x.key: unknown key" in str(caught.value)
    assert f"{config}:3: providers.x.api_key_env: environment variable NOPE_NOT_SET" in str(
        caught.value
    )
