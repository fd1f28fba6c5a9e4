"""The real gateway (``imagegate serve --config``) serving models through fake vendors.

Each test writes a configuration whose provider points at a fake vendor on loopback, starts
the server as a subprocess, and drives it over HTTP like a client: create an async task, poll
it to its end, download the images the gateway rehosted.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from imagegate.providers.registry import provider_class
from tests.fakes.comfyui import ComfyState
from tests.fakes.fal import FalState
from tests.fakes.gemini import GeminiState
from tests.fakes.server import serve_app
from tests.fakes.stability import StabilityState
from tests.support.gateway import Gateway


@dataclass(frozen=True)
class Vendor:
    """One vendor as the configuration file names it."""

    kind: str
    upstream_model: str
    key: str | None
    state: Callable[[], Any]
    extra: str = ""  # more keys of the provider table


VENDORS = {
    "fal": Vendor("fal", "fal-ai/flux/dev", "fal-test-key", FalState),
    "stability": Vendor("stability", "core", "sk-stability-test", StabilityState),
    "gemini": Vendor("gemini", "gemini-2.5-flash-image", "gemini-test-key", GeminiState),
    "comfyui": Vendor(
        "comfyui", "sd_xl_base_1.0.safetensors", None, ComfyState, "steps = 8\nlost_after_s = 5"
    ),
}


def config(vendor: Vendor, base_url: str) -> str:
    key = 'api_key_env = "VENDOR_TEST_KEY"\n' if vendor.key else ""
    return f"""
[providers.upstream]
kind = "{vendor.kind}"
base_url = "{base_url}"
allow_private_urls = true
{key}{vendor.extra}

[models."picture"]
routes = [{{ provider = "upstream", upstream_model = "{vendor.upstream_model}" }}]
"""


@dataclass
class Served:
    kind: str
    gateway: Gateway
    state: Any


@contextmanager
def gateway_for(
    kind: str, root: Path, database_factory: Callable[[], Any], **knobs: Any
) -> Iterator[Served]:
    """A fake of ``kind`` (its state changed by ``knobs``) and a gateway configured for it."""
    vendor = VENDORS[kind]
    state = vendor.state()
    for knob, value in knobs.items():
        setattr(state, knob, value)
    with serve_app(state.app()) as base_url, database_factory() as database_url:
        path = root / "imagegate.toml"
        path.write_text(config(vendor, base_url))
        # A short lease lets a restarted gateway reclaim the task of the one it replaced.
        env = {"IMAGEGATE_LEASE": "2s"}
        env.update({"VENDOR_TEST_KEY": vendor.key} if vendor.key else {})
        gateway = Gateway(
            root / "data", database_url=database_url, args=["--config", str(path)], env=env
        )
        gateway.start()
        try:
            yield Served(kind, gateway, state)
        finally:
            gateway.stop()


@pytest.fixture(scope="module", params=sorted(VENDORS))
def served(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    database_factory: Callable[[], Any],
) -> Iterator[Served]:
    """One fake vendor and one gateway configured for it, shared by the module's tests."""
    with gateway_for(request.param, tmp_path_factory.mktemp(request.param), database_factory) as it:
        yield it


# Vendors whose jobs the gateway can stop, with the knob that keeps a job from finishing.
HELD = {"fal": {"queue_polls": 10**6}, "comfyui": {"steps_per_prompt": 10**6}}


@pytest.fixture(params=sorted(HELD))
def holding(
    request: pytest.FixtureRequest, tmp_path: Path, database_factory: Callable[[], Any]
) -> Iterator[Served]:
    """A gateway on a vendor that never finishes a job unless it is cancelled."""
    with gateway_for(request.param, tmp_path, database_factory, **HELD[request.param]) as it:
        yield it


def finished(client: httpx.Client, task_id: str, timeout: float = 60.0) -> dict[str, Any]:
    """The task once terminal, polling its ``poll_url`` as a client would."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = client.get(f"/v1/tasks/{task_id}").json()
        if task["status"] in ("completed", "failed"):
            return task
        time.sleep(0.2)
    raise AssertionError(f"task {task_id} did not finish: {task}")


def create(client: httpx.Client, prompt: str, **fields: Any) -> str:
    body = {"model": "picture", "prompt": prompt, "async": True, **fields}
    answer = client.post("/v1/images/generations", json=body)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["task_id"])


def test_two_images_complete_rehosted_by_the_gateway(served: Served) -> None:
    before = served.state.submissions
    with served.gateway.client() as client:
        task = finished(client, create(client, "a lighthouse at dusk", n=2, size="1024x1024"))

    assert task["status"] == "completed", task
    assert len(task["data"]) == 2
    for item in task["data"]:
        assert item["url"].startswith(served.gateway.base_url)
        assert Image.open(io.BytesIO(httpx.get(item["url"]).content)).width > 0
    # Vendors that render one image per call were called twice; the others once.
    per_call = provider_class(served.kind).max_n_per_call
    assert served.state.submissions - before == -(-2 // per_call)


def test_vendor_refusal_fails_the_task_as_content_policy(served: Served) -> None:
    # Each fake refuses or fails a prompt with its own trigger word; "forbidden" is refused by
    # fal, Stability and Gemini, and ComfyUI has no moderation: its workflow crashes instead.
    prompt = "explode" if isinstance(served.state, ComfyState) else "something forbidden"
    with served.gateway.client() as client:
        task = finished(client, create(client, prompt))

    assert task["status"] == "failed"
    assert task["data"] == []
    expected = (
        "upstream_error" if isinstance(served.state, ComfyState) else "content_policy_violation"
    )
    assert task["error_code"] == expected


def test_cancelling_a_processing_task_stops_the_upstream_job(holding: Served) -> None:
    with holding.gateway.client() as client:
        task_id = create(client, "a lighthouse")
        _wait_until_submitted(client, task_id, holding.state)

        assert client.delete(f"/v1/tasks/{task_id}").status_code == 200
        task = finished(client, task_id)

    assert task["status"] == "failed"
    assert task["error_code"] == "cancelled"
    assert _stopped_upstream(holding.state)


def test_a_gateway_killed_mid_job_resumes_it_without_submitting_again(holding: Served) -> None:
    with holding.gateway.client() as client:
        task_id = create(client, "a lighthouse")
        _wait_until_submitted(client, task_id, holding.state)

    holding.gateway.restart()  # SIGKILL, then a fresh process on the same database
    _release(holding.state)
    with holding.gateway.client() as client:
        task = finished(client, task_id)

    assert task["status"] == "completed", task
    assert holding.state.submissions == 1


def _wait_until_submitted(client: httpx.Client, task_id: str, state: Any) -> None:
    """Until the worker polls the vendor's job: by then it has journaled the job."""
    deadline = time.monotonic() + 30
    while client.get(f"/v1/tasks/{task_id}").json()["status"] != "processing":
        assert time.monotonic() < deadline, "the task never started"
        time.sleep(0.1)
    while not _polled(state):
        assert time.monotonic() < deadline, "the vendor never saw the job polled"
        time.sleep(0.1)


def _polled(state: Any) -> bool:
    if isinstance(state, FalState):
        return any(job.polls > 0 for job in state.jobs.values())
    return state.running is not None  # the fake starts a prompt on a history read


def _release(state: Any) -> None:
    """Let the held job finish from its next poll on."""
    if isinstance(state, FalState):
        state.queue_polls = 0
    else:
        state.steps_per_prompt = 1
        if state.running is not None:
            state.running.work_left = 1


def _stopped_upstream(state: Any) -> bool:
    """Whether the fake saw the job cancelled: fal marks it, ComfyUI interrupts or deletes it."""
    if isinstance(state, FalState):
        return all(job.cancelled for job in state.jobs.values())
    return state.running is None and not state.pending
