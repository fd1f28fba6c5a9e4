"""A local Hugging Face ``diffusers`` text-to-image pipeline (the ``imagegate[diffusers]`` extra).

Loads ``AutoPipelineForText2Image.from_pretrained(model_path, local_files_only=True)`` once,
on first use, and runs it in a worker thread so the event loop keeps serving. ``diffusers``
and ``torch`` are imported only then, by name, so the gateway (and its type check) works
without the extra; without it, this module refuses to import. Options:
``model_path`` (required, a saved pipeline directory), ``num_inference_steps``,
``guidance_scale`` and ``device`` (``cpu`` by default, ``cuda`` where there is one).
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import io
import threading
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from imagegate.errors import JobFailed, ProviderUnavailable
from imagegate.providers.base import (
    Completed,
    GeneratedImage,
    Provider,
    ProviderRequest,
    ProviderSettings,
    Submitted,
)

_PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}

# Without the extra this kind is "not available in this build", reported at configuration load.
if importlib.util.find_spec("diffusers") is None or importlib.util.find_spec("torch") is None:
    raise ImportError("the diffusers provider needs the extra: pip install 'imagegate[diffusers]'")


class DiffusersProvider(Provider):
    """Synchronous: each call renders its images locally and answers them inline."""

    kind = "diffusers"
    max_n_per_call = 4
    option_types: ClassVar[Mapping[str, type]] = {
        "model_path": str,
        "num_inference_steps": int,
        "guidance_scale": float,
        "device": str,
    }

    def __init__(self, settings: ProviderSettings, http: httpx.AsyncClient) -> None:
        super().__init__(settings, http)
        self._pipeline: Any = None
        # One render at a time: a pipeline is not safe to share between threads.
        self._lock = threading.Lock()

    def _load(self) -> Any:
        if self._pipeline is not None:
            return self._pipeline
        model_path = self.settings.options.get("model_path")
        if not model_path:
            raise ProviderUnavailable(f"provider {self.name!r} needs the option model_path")
        diffusers = importlib.import_module("diffusers")
        try:
            pipeline = diffusers.AutoPipelineForText2Image.from_pretrained(
                model_path, local_files_only=True
            )
        except (OSError, ValueError) as exc:
            raise ProviderUnavailable(f"cannot load the pipeline at {model_path}: {exc}") from exc
        pipeline = pipeline.to(self.settings.options.get("device", "cpu"))
        pipeline.set_progress_bar_config(disable=True)
        self._pipeline = pipeline
        return pipeline

    def _render(self, request: ProviderRequest) -> list[GeneratedImage]:
        with self._lock:
            pipeline = self._load()
            options = self.settings.options
            arguments: dict[str, Any] = {
                "prompt": request.prompt,
                "negative_prompt": request.negative_prompt,
                "num_images_per_prompt": request.n,
                "num_inference_steps": int(options.get("num_inference_steps", 30)),
                "output_type": "pil",
            }
            if request.width and request.height:
                arguments.update(width=request.width, height=request.height)
            if "guidance_scale" in options:
                arguments["guidance_scale"] = float(options["guidance_scale"])
            if request.seed is not None:
                device = options.get("device", "cpu")
                torch = importlib.import_module("torch")
                arguments["generator"] = torch.Generator(device).manual_seed(request.seed)
            try:
                pictures = pipeline(**arguments).images
            except (RuntimeError, ValueError) as exc:
                raise JobFailed(f"the diffusers pipeline failed: {exc}") from exc
        return [GeneratedImage(data=_encode(p, request.output_format)) for p in pictures]

    async def submit(self, request: ProviderRequest) -> Completed | Submitted:
        return Completed(images=await asyncio.to_thread(self._render, request))


def _encode(picture: Any, output_format: str) -> bytes:
    buffer = io.BytesIO()
    fmt = _PIL_FORMATS.get(output_format, "PNG")
    (picture.convert("RGB") if fmt == "JPEG" else picture).save(buffer, format=fmt)
    return buffer.getvalue()
