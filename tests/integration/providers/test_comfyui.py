"""The ComfyUI adapter against a fake ComfyUI server over loopback HTTP."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from imagegate.errors import JobFailed, ProviderRejected, ProviderUnavailable
from imagegate.providers.base import ProviderRequest, ProviderSettings
from imagegate.providers.comfyui import ComfyUIProvider, load_workflow
from tests.fakes.comfyui import ComfyState
from tests.fakes.scripting import Fault
from tests.fakes.server import serve_app
from tests.integration.providers.helpers import poll_to_end, submitted

CHECKPOINT = "sd_xl_base_1.0.safetensors"


@pytest.fixture
def state() -> ComfyState:
    return ComfyState()


def provider(http: httpx.AsyncClient, base_url: str, **options: Any) -> ComfyUIProvider:
    settings = ProviderSettings(
        name="comfy", kind="comfyui", base_url=base_url, allow_private_urls=True, options=options
    )
    return ComfyUIProvider(settings, http)


def request(prompt: str = "a lighthouse", call: str = "task-1:0", **kw: Any) -> ProviderRequest:
    return ProviderRequest(upstream_model=CHECKPOINT, prompt=prompt, idempotency_token=call, **kw)


async def test_prompt_runs_to_images_served_by_view(
    http: httpx.AsyncClient, base_url: str, state: ComfyState
) -> None:
    comfy = provider(http, base_url, steps=4)
    job = await submitted(comfy, request(n=2, width=96, height=64, seed=11, negative_prompt="fog"))

    statuses = await poll_to_end(comfy, job)

    assert statuses[0].state == "running"
    images = statuses[-1].images
    assert len(images) == 2
    for image in images:
        assert image.url is not None
        assert image.url.startswith(f"{base_url}/view?")
        assert Image.open(io.BytesIO((await http.get(image.url)).content)).size == (96, 64)
    graph = state.history[job["prompt_id"]]["prompt"][2]
    assert graph["3"]["inputs"]["seed"] == 11
    assert graph["3"]["inputs"]["steps"] == 4
    assert graph["5"]["inputs"] == {"width": 96, "height": 64, "batch_size": 2}
    assert graph["6"]["inputs"]["text"] == "a lighthouse"
    assert graph["7"]["inputs"]["text"] == "fog"
    assert graph["4"]["inputs"]["ckpt_name"] == CHECKPOINT


async def test_waiting_prompt_reports_its_queue_position(
    http: httpx.AsyncClient, base_url: str
) -> None:
    comfy = provider(http, base_url)
    await submitted(comfy, request(call="first"))
    second = await submitted(comfy, request(call="second"))

    status = await comfy.poll(second)

    assert (status.state, status.queue_position) == ("queued", 1)
    assert (await poll_to_end(comfy, second))[-1].state == "succeeded"


async def test_resubmitting_the_same_token_starts_no_second_prompt(
    http: httpx.AsyncClient, base_url: str, state: ComfyState
) -> None:
    comfy = provider(http, base_url)
    first = await submitted(comfy, request())
    again = await submitted(comfy, request())
    await poll_to_end(comfy, first)
    after_done = await submitted(comfy, request())

    assert first == again == after_done
    assert state.submissions == 1


async def test_prompt_vanishing_without_history_fails_after_the_grace_period(
    http: httpx.AsyncClient, base_url: str, state: ComfyState
) -> None:
    state.lose_next = True
    patient = provider(http, base_url, lost_after_s=3600.0)
    job = await submitted(patient, request())
    for _ in range(10):  # until the fake has started, then dropped, the prompt
        await patient.poll(job)
        if state.running is None and not state.pending:
            break
    assert job["prompt_id"] not in state.history

    assert (await patient.poll(job)).state == "running"  # still within the grace period
    with pytest.raises(JobFailed, match="lost"):
        await provider(http, base_url, lost_after_s=0.0).poll(job)


async def test_execution_error_fails_the_job_with_the_node_message(
    http: httpx.AsyncClient, base_url: str
) -> None:
    comfy = provider(http, base_url)
    job = await submitted(comfy, request("explode please"))

    with pytest.raises(JobFailed, match="CUDA out of memory"):
        await poll_to_end(comfy, job)


async def test_cancel_of_a_pending_prompt_deletes_it_from_the_queue(
    http: httpx.AsyncClient, base_url: str, state: ComfyState
) -> None:
    comfy = provider(http, base_url, lost_after_s=0.0)
    await submitted(comfy, request(call="first"))
    second = await submitted(comfy, request(call="second"))
    assert (await comfy.poll(second)).state == "queued"

    await comfy.cancel(second)

    assert [p.prompt_id for p in state.pending] == []
    with pytest.raises(JobFailed):
        await comfy.poll(second)


async def test_cancel_of_the_running_prompt_interrupts_it(
    http: httpx.AsyncClient, base_url: str
) -> None:
    comfy = provider(http, base_url)
    job = await submitted(comfy, request())
    assert (await comfy.poll(job)).state == "running"

    await comfy.cancel(job)

    with pytest.raises(JobFailed, match="interrupted"):
        await comfy.poll(job)


async def test_unknown_checkpoint_is_rejected(http: httpx.AsyncClient, base_url: str) -> None:
    comfy = provider(http, base_url, checkpoint="missing.safetensors")

    with pytest.raises(ProviderRejected, match="failed validation"):
        await comfy.submit(request())


async def test_workflow_file_fills_placeholders_inside_text(
    http: httpx.AsyncClient, base_url: str, state: ComfyState, tmp_path: Path
) -> None:
    workflow = load_workflow({})
    workflow["9"]["inputs"]["filename_prefix"] = "gate-{{seed}}"
    path = tmp_path / "workflow.json"
    path.write_text(json.dumps(workflow))
    comfy = provider(http, base_url, workflow_file=str(path))

    await comfy.submit(request(seed=5))

    assert state.pending[0].graph["9"]["inputs"]["filename_prefix"] == "gate-5"


async def test_inline_workflow_with_an_unknown_node_is_rejected(
    http: httpx.AsyncClient, base_url: str
) -> None:
    workflow = {"1": {"class_type": "NoSuchNode", "inputs": {"text": "{{prompt}}"}}}
    comfy = provider(http, base_url, workflow=workflow)

    with pytest.raises(ProviderRejected, match="NoSuchNode"):
        await comfy.submit(request())


async def test_server_errors_while_polling_are_transient(
    http: httpx.AsyncClient, base_url: str, state: ComfyState
) -> None:
    comfy = provider(http, base_url)
    job = await submitted(comfy, request())
    state.script.add("history", Fault(500, "Internal Server Error"))
    state.script.add("queue", Fault(200, "{garbled"))

    with pytest.raises(ProviderUnavailable):
        await comfy.poll(job)
    with pytest.raises(ProviderUnavailable):
        await comfy.poll(job)
    assert (await poll_to_end(comfy, job))[-1].state == "succeeded"


async def test_unreachable_server_is_unavailable(http: httpx.AsyncClient) -> None:
    with serve_app(ComfyState().app()) as gone:
        pass

    with pytest.raises(ProviderUnavailable):
        await provider(http, gone).submit(request())
