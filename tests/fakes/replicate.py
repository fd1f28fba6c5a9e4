"""A fake of Replicate's predictions API, as documented.

``POST /v1/models/{owner}/{name}/predictions`` and ``POST /v1/predictions`` (with
``version``) answer 201 with a prediction ``{id, model, version, input, logs, output, error,
status, data_removed, urls: {get, cancel}, ...}``; with ``Prefer: wait=N`` and ``fast_models``
the answer is already ``succeeded``. ``GET /v1/predictions/{id}`` walks ``starting`` ->
``processing`` (a tqdm bar in ``logs``) -> ``succeeded`` | ``failed``; ``POST .../cancel``
cancels. Output files are served here and deleted after ``files.ttl_s`` (an hour by
default): the file answers 404 and the prediction shows ``data_removed: true``. Errors are
problem details ``{"title", "detail", "status"}``.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.common import FakeVendor, FileStore, file_response, image_bytes, media_type

# Models that return a list of files (like flux-schnell); the others return one URL.
LIST_OUTPUT_MODELS = frozenset({"black-forest-labs/flux-schnell", "stability-ai/sdxl"})
VERSIONS = {"5599ed30703defd1d160a25a63321b4dec97101d98b4674bcc56e41f62f35637": "stability-ai/sdxl"}
OFFICIAL = frozenset({"black-forest-labs/flux-schnell", "black-forest-labs/flux-1.1-pro"})
NSFW = "NSFW content detected. Try running it again, or try a different prompt."
TERMINAL = frozenset({"succeeded", "failed", "canceled"})


@dataclass
class Prediction:
    id: str
    model: str
    version: str | None
    input: dict[str, Any]
    created_at: str
    polls: int = 0
    status: str = "starting"
    logs: str = ""
    output: Any = None
    error: str | None = None
    files: list[str] = field(default_factory=list)


@dataclass
class ReplicateState(FakeVendor):
    fast_models: frozenset[str] = frozenset()  # finish within a Prefer: wait
    predictions: dict[str, Prediction] = field(default_factory=dict)
    files: FileStore = field(default_factory=lambda: FileStore(ttl_s=3600.0))

    def app(self) -> Starlette:
        return create_app(self)


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"title": title, "detail": detail, "status": status, **extra}
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


def _fault(status: int, message: str) -> Response:
    if status == 429:
        detail = "Request was throttled. Expected available in 2 seconds."
        return problem(429, "Request was throttled.", detail)
    return problem(status, "Internal Server Error", message)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())


class _Routes:
    def __init__(self, state: ReplicateState) -> None:
        self.state = state

    def authorised(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {self.state.api_key}"

    def render(self, prediction: Prediction, request: Request) -> dict[str, Any]:
        get = str(request.url_for("prediction", prediction_id=prediction.id))
        removed = any(self.state.files.expired(name) for name in prediction.files)
        return {
            "id": prediction.id,
            "model": prediction.model,
            "version": prediction.version or "hidden",
            "input": prediction.input,
            "logs": prediction.logs,
            "output": None if removed else prediction.output,
            "data_removed": removed,
            "error": prediction.error,
            "status": prediction.status,
            "created_at": prediction.created_at,
            "urls": {"get": get, "cancel": f"{get}/cancel", "web": f"{get}/web"},
            "metrics": {"predict_time": 1.2} if prediction.status == "succeeded" else {},
        }

    async def create_for_model(self, request: Request) -> Response:
        model = f"{request.path_params['owner']}/{request.path_params['name']}"
        return await self.create(request, model if model in OFFICIAL else None, None)

    async def create_for_version(self, request: Request) -> Response:
        version = json.loads(await request.body()).get("version", "")
        return await self.create(request, VERSIONS.get(version), version)

    async def create(self, request: Request, model: str | None, version: str | None) -> Response:
        state = self.state
        state.create_calls += 1
        state.record(request)
        if not self.authorised(request):
            detail = "You did not pass a valid authentication token"
            return problem(401, "Unauthenticated", detail)
        if (faulted := await state.scripted(state.faults, _fault)) is not None:
            return faulted
        if model is None:
            return problem(404, "Not found", "The requested resource could not be found.")
        model_input = json.loads(await request.body()).get("input") or {}
        if not isinstance(model_input.get("prompt"), str):
            invalid = [{"type": "required", "field": "input", "description": "prompt is required"}]
            detail = "- input: prompt is required"
            return problem(422, "Input validation failed", detail, invalid_fields=invalid)
        state.submissions += 1
        prediction = Prediction(
            id=secrets.token_hex(13),
            model=model,
            version=version,
            input=model_input,
            created_at=_now(),
        )
        state.predictions[prediction.id] = prediction
        if "wait" in request.headers.get("prefer", "") and model in state.fast_models:
            self.finish(prediction, request)
        return JSONResponse(self.render(prediction, request), status_code=201)

    def finish(self, prediction: Prediction, request: Request) -> None:
        state, prompt = self.state, prediction.input["prompt"]
        if state.has_word(prompt, state.unsafe_words | state.blocked_words):
            prediction.status = "failed"
            prediction.error = (
                "NSFW content detected. Try running it again, or try a different prompt."
            )
        elif state.has_word(prompt, state.failing_words):
            prediction.status, prediction.error = "failed", "CUDA out of memory."
        else:
            prediction.status, prediction.logs = (
                "succeeded",
                prediction.logs + "100%|##########| 4/4\n",
            )
            prediction.output = self.outputs(prediction, request)

    def outputs(self, prediction: Prediction, request: Request) -> Any:
        fmt = str(prediction.input.get("output_format", "webp")).replace("jpg", "jpeg")
        width = int(prediction.input.get("width", 512))
        height = int(prediction.input.get("height", 512))
        raw = image_bytes(width, height, fmt, seed=prediction.id)
        name = self.state.files.put(raw, media_type(fmt), suffix=fmt)
        prediction.files.append(name)
        url = str(request.url_for("delivery", name=name))
        return [url] if prediction.model in LIST_OUTPUT_MODELS else url

    async def get(self, request: Request) -> Response:
        state = self.state
        state.polls += 1
        state.record(request)
        if (faulted := await state.scripted(state.poll_faults, _fault)) is not None:
            return faulted
        prediction = state.predictions.get(request.path_params["prediction_id"])
        if prediction is None or not self.authorised(request):
            return problem(404, "Not found", "The requested resource could not be found.")
        prediction.polls += 1
        if prediction.status not in TERMINAL and not state.hold:
            if prediction.polls <= state.polls_to_finish:
                prediction.status = "starting" if prediction.polls == 1 else "processing"
                prediction.logs += " 50%|#####     | 2/4 [00:01<00:01, 2.0it/s]\n"
            else:
                self.finish(prediction, request)
        return JSONResponse(self.render(prediction, request))

    async def cancel(self, request: Request) -> Response:
        self.state.cancels += 1
        prediction = self.state.predictions.get(request.path_params["prediction_id"])
        if prediction is None or not self.authorised(request):
            return problem(404, "Not found", "The requested resource could not be found.")
        if prediction.status not in TERMINAL:
            prediction.status = "canceled"
        return JSONResponse(self.render(prediction, request))

    async def delivery(self, request: Request) -> Response:
        return file_response(
            self.state.files, request.path_params["name"], Response(status_code=404)
        )


def create_app(state: ReplicateState) -> Starlette:
    routes = _Routes(state)
    return Starlette(
        routes=[
            Route(
                "/v1/models/{owner}/{name}/predictions", routes.create_for_model, methods=["POST"]
            ),
            Route("/v1/predictions", routes.create_for_version, methods=["POST"]),
            Route("/v1/predictions/{prediction_id}", routes.get, name="prediction"),
            Route("/v1/predictions/{prediction_id}/cancel", routes.cancel, methods=["POST"]),
            Route("/delivery/{name}", routes.delivery, name="delivery"),
        ]
    )
