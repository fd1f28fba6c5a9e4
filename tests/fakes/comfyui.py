"""A fake ComfyUI server: the HTTP routes of ComfyUI's ``server.py`` over a toy executor.

``POST /prompt`` validates the API-format graph (known node classes, a known checkpoint) and
queues it under the client's ``prompt_id`` (like ComfyUI, it does not deduplicate ids);
``GET /queue`` lists ``[number, prompt_id, prompt, extra_data, outputs]`` items; ``GET
/history/{id}`` is ``{}`` until the prompt finished; ``GET /view`` serves saved PNGs;
``POST /interrupt`` and ``POST /queue {delete}`` stop prompts. The executor advances one step
per history read, so tests walk a prompt through the queue without sleeping.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.common import image_bytes
from tests.fakes.scripting import Script

NODE_CLASSES = frozenset(
    {
        "KSampler",
        "CheckpointLoaderSimple",
        "EmptyLatentImage",
        "CLIPTextEncode",
        "VAEDecode",
        "SaveImage",
    }
)
CRASH_WORD = "explode"  # the sampler raises: the history records an execution_error


@dataclass
class Prompt:
    number: float
    prompt_id: str
    graph: dict[str, Any]
    extra: dict[str, Any]
    work_left: int = 0

    def item(self) -> list[Any]:
        return [self.number, self.prompt_id, self.graph, self.extra, ["9"]]


@dataclass
class ComfyState:
    checkpoints: set[str] = field(default_factory=lambda: {"sd_xl_base_1.0.safetensors"})
    steps_per_prompt: int = 2  # history reads a prompt spends running
    lose_next: bool = False  # the next prompt to run vanishes without history (a crash)
    latency_s: float = 0.0
    submissions: int = 0
    number: int = 0
    pending: list[Prompt] = field(default_factory=list)
    running: Prompt | None = None
    history: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    script: Script = field(default_factory=Script)

    def app(self) -> Starlette:
        """The fake's ASGI app, serving this state."""
        return FakeComfy(self).app()

    def step(self) -> None:
        """One tick of the executor: start the next prompt, or work on the running one."""
        if self.running is None:
            if self.pending:
                self.pending.sort(key=lambda p: p.number)
                self.running = self.pending.pop(0)
                self.running.work_left = self.steps_per_prompt
            return
        self.running.work_left -= 1
        if self.running.work_left <= 0:
            finished, self.running = self.running, None
            if self.lose_next:
                self.lose_next = False
                return
            self.history[finished.prompt_id] = self.execute(finished)

    def execute(self, prompt: Prompt) -> dict[str, Any]:
        graph = prompt.graph
        sampler = next(n for n in graph.values() if n["class_type"] == "KSampler")["inputs"]
        text = graph[sampler["positive"][0]]["inputs"]["text"]
        start = ["execution_start", {"prompt_id": prompt.prompt_id, "timestamp": time.time()}]
        if CRASH_WORD in text:
            error = {
                "prompt_id": prompt.prompt_id,
                "node_id": "3",
                "node_type": "KSampler",
                "exception_message": "CUDA out of memory",
                "exception_type": "torch.OutOfMemoryError",
                "traceback": [],
            }
            status = {
                "status_str": "error",
                "completed": False,
                "messages": [start, ["execution_error", error]],
            }
            return {"prompt": prompt.item(), "outputs": {}, "status": status}
        latent = graph[sampler["latent_image"][0]]["inputs"]
        images = []
        for index in range(int(latent["batch_size"])):
            name = f"imagegate_{len(self.files) + 1:05}_.png"
            self.files[name] = image_bytes(
                int(latent["width"]), int(latent["height"]), seed=f"{prompt.prompt_id}/{index}"
            )
            images.append({"filename": name, "subfolder": "", "type": "output"})
        done = ["execution_success", {"prompt_id": prompt.prompt_id}]
        status = {"status_str": "success", "completed": True, "messages": [start, done]}
        return {"prompt": prompt.item(), "outputs": {"9": {"images": images}}, "status": status}


def invalid(graph: Any, state: ComfyState) -> dict[str, Any] | None:
    """ComfyUI's validation answer for a graph it cannot run, else ``None``."""
    if not isinstance(graph, dict) or not graph:
        return {
            "type": "invalid_prompt",
            "message": "Prompt has no outputs",
            "details": "",
            "extra_info": {},
        }
    for node_id, node in graph.items():
        if node.get("class_type") not in NODE_CLASSES:
            message = f"Cannot execute because node {node.get('class_type')} does not exist."
            return {
                "type": "invalid_prompt",
                "message": message,
                "details": f"Node ID '#{node_id}'",
                "extra_info": {},
            }
    for node in graph.values():
        if (
            node["class_type"] == "CheckpointLoaderSimple"
            and node["inputs"].get("ckpt_name") not in state.checkpoints
        ):
            message = "Prompt outputs failed validation"
            return {
                "type": "prompt_outputs_failed_validation",
                "message": message,
                "details": "",
                "extra_info": {},
            }
    return None


class FakeComfy:
    def __init__(self, state: ComfyState) -> None:
        self.state = state

    async def gate(self, route: str) -> Response | None:
        if self.state.latency_s:
            await asyncio.sleep(self.state.latency_s)
        return await self.state.script.intercept(route)

    async def post_prompt(self, request: Request) -> Response:
        if (early := await self.gate("prompt")) is not None:
            return early
        body = await request.json()
        if "prompt" not in body:
            error = {
                "type": "no_prompt",
                "message": "No prompt provided",
                "details": "",
                "extra_info": {},
            }
            return JSONResponse({"error": error, "node_errors": {}}, status_code=400)
        if (error := invalid(body["prompt"], self.state)) is not None:
            return JSONResponse({"error": error, "node_errors": {}}, status_code=400)
        prompt_id = str(body.get("prompt_id") or f"server-{self.state.number}")
        number = self.state.number
        self.state.number += 1
        self.state.submissions += 1
        extra = {"client_id": body.get("client_id"), "create_time": int(time.time() * 1000)}
        self.state.pending.append(Prompt(number, prompt_id, body["prompt"], extra))
        return JSONResponse({"prompt_id": prompt_id, "number": number, "node_errors": {}})

    async def get_history(self, request: Request) -> Response:
        if (early := await self.gate("history")) is not None:
            return early
        self.state.step()
        prompt_id = request.path_params["prompt_id"]
        entry = self.state.history.get(prompt_id)
        return JSONResponse({prompt_id: entry} if entry is not None else {})

    async def get_queue(self, request: Request) -> Response:
        if (early := await self.gate("queue")) is not None:
            return early
        running = [self.state.running.item()] if self.state.running else []
        pending = [p.item() for p in self.state.pending]
        return JSONResponse({"queue_running": running, "queue_pending": pending})

    async def post_queue(self, request: Request) -> Response:
        body = await request.json()
        doomed = set(body.get("delete", []))
        self.state.pending = [p for p in self.state.pending if p.prompt_id not in doomed]
        return Response(status_code=200)

    async def interrupt(self, request: Request) -> Response:
        body = await request.json() if await request.body() else {}
        running = self.state.running
        if running is not None and body.get("prompt_id") in (None, running.prompt_id):
            self.state.running = None
            event = ["execution_interrupted", {"prompt_id": running.prompt_id, "node_id": "3"}]
            status = {"status_str": "error", "completed": False, "messages": [event]}
            self.state.history[running.prompt_id] = {
                "prompt": running.item(),
                "outputs": {},
                "status": status,
            }
        return Response(status_code=200)

    async def view(self, request: Request) -> Response:
        query = request.query_params
        data = self.state.files.get(query.get("filename", ""))
        if data is None or query.get("type") != "output" or query.get("subfolder"):
            return Response(status_code=404)
        return Response(data, media_type="image/png")

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/prompt", self.post_prompt, methods=["POST"]),
                Route("/history/{prompt_id}", self.get_history, methods=["GET"]),
                Route("/queue", self.get_queue, methods=["GET"]),
                Route("/queue", self.post_queue, methods=["POST"]),
                Route("/interrupt", self.interrupt, methods=["POST"]),
                Route("/view", self.view, methods=["GET"]),
            ]
        )
