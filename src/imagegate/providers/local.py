"""The built-in provider: draws a real picture from the prompt with Pillow, no network, no weights.

The picture is deterministic for (prompt, seed, size): colours and shapes come from a hash of
them, and the prompt is written on it, so a person can tell which request made which image.
Being deterministic, the last few pictures drawn are kept and a repeated request is not drawn
again: under a load test of one prompt the worker's CPU goes to the gateway, not to Pillow.
Latency and a failure rate can be simulated for demos, tests and benchmarks.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import random
import textwrap
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from functools import lru_cache
from typing import ClassVar

import httpx
from PIL import Image, ImageDraw, ImageFont

from imagegate.config import parse_latency
from imagegate.errors import JobFailed
from imagegate.providers.base import (
    Completed,
    GeneratedImage,
    Provider,
    ProviderRequest,
    ProviderSettings,
    Submitted,
)

_PIL_FORMAT = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
# Pictures kept for repeated requests; at most 32 x ~1 MB for 1024x1024 PNGs.
DRAWN_CACHE_SIZE = 32


def _rng(request: ProviderRequest, index: int) -> random.Random:
    seed = request.seed if request.seed is not None else 0
    material = f"{request.prompt}\x00{seed}\x00{request.width}x{request.height}\x00{index}"
    return random.Random(hashlib.sha256(material.encode()).digest())


def _colour(rng: random.Random, alpha: int = 255) -> tuple[int, int, int, int]:
    return (rng.randrange(256), rng.randrange(256), rng.randrange(256), alpha)


def render(request: ProviderRequest, index: int = 0) -> bytes:
    """Draw image ``index`` of ``request`` and encode it in the requested format."""
    width, height = request.width or 1024, request.height or 1024
    rng = _rng(request, index)
    transparent = request.background == "transparent" and request.output_format != "jpeg"
    image = Image.new("RGBA", (width, height), (0, 0, 0, 0) if transparent else _colour(rng))
    top, bottom = _colour(rng, 160), _colour(rng, 160)
    image.alpha_composite(_gradient(top, bottom, width, height))
    draw = ImageDraw.Draw(image, "RGBA")
    for _ in range(rng.randint(4, 9)):
        x, y = rng.randrange(width), rng.randrange(height)
        r = rng.randint(min(width, height) // 16, min(width, height) // 4)
        box = (x - r, y - r, x + r, y + r)
        if rng.random() < 0.5:
            draw.ellipse(box, fill=_colour(rng, 170))
        else:
            draw.rectangle(box, fill=_colour(rng, 140))
    _caption(draw, request.prompt, width, height)
    return _encode(image, request)


def _gradient(
    top: tuple[int, int, int, int], bottom: tuple[int, int, int, int], width: int, height: int
) -> Image.Image:
    """A vertical blend from ``top`` to ``bottom``, drawn in C rather than row by row."""
    mask = Image.linear_gradient("L").resize((width, height))
    return Image.composite(
        Image.new("RGBA", mask.size, bottom), Image.new("RGBA", mask.size, top), mask
    )


@lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Loading the font costs more than drawing a small picture: once per size."""
    return ImageFont.load_default(size=size)


def _caption(draw: ImageDraw.ImageDraw, prompt: str, width: int, height: int) -> None:
    size = max(10, min(width, height) // 18)
    font = _font(size)
    lines = textwrap.wrap(prompt, width=max(8, int(width / (size * 0.6))))[:4]
    text = "\n".join(lines)
    _, top, _, bottom = draw.multiline_textbbox((0, 0), text, font=font)
    pad = size // 2
    x, y = pad, height - (bottom - top) - 3 * pad
    draw.rectangle((0, y - pad, width, height), fill=(0, 0, 0, 150))
    draw.multiline_text((x, y), text, font=font, fill=(255, 255, 255, 255))


def _encode(image: Image.Image, request: ProviderRequest) -> bytes:
    fmt = _PIL_FORMAT.get(request.output_format, "PNG")
    out = io.BytesIO()
    if fmt == "JPEG":
        image = image.convert("RGB")
    quality = request.output_compression if request.output_compression is not None else 90
    image.save(out, fmt, **({"quality": quality} if fmt != "PNG" else {}))
    return out.getvalue()


def picture_key(request: ProviderRequest) -> Hashable:
    """Everything ``render`` reads from a request: equal keys draw identical bytes."""
    return (
        request.prompt,
        request.seed,
        request.width,
        request.height,
        request.background,
        request.output_format,
        request.output_compression,
    )


class Drawn:
    """The most recently drawn pictures of a request (least recent evicted).

    A picture being drawn is kept as its future, so requests arriving together (a batch of
    tasks that all woke at once) wait for one drawing instead of each starting their own.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._pictures: OrderedDict[Hashable, asyncio.Future[list[bytes]]] = OrderedDict()

    async def get_or_draw(self, request: ProviderRequest) -> list[bytes]:
        key = (picture_key(request), request.n)
        drawing = self._pictures.get(key)
        if drawing is None:
            drawing = asyncio.ensure_future(
                asyncio.to_thread(lambda: [render(request, i) for i in range(request.n)])
            )
            self._pictures[key] = drawing
            while len(self._pictures) > self.size:
                self._pictures.popitem(last=False)
        else:
            self._pictures.move_to_end(key)
        try:
            return await asyncio.shield(drawing)
        except Exception:
            if self._pictures.get(key) is drawing:
                del self._pictures[key]  # a failed drawing is not kept
            raise


class LocalProvider(Provider):
    """Synchronous provider: every call returns finished images."""

    kind: ClassVar[str] = "local"
    max_n_per_call: ClassVar[int] = 10
    option_types: ClassVar[Mapping[str, type]] = {"latency": str, "failure_rate": float}

    def __init__(self, settings: ProviderSettings, http: httpx.AsyncClient) -> None:
        super().__init__(settings, http)
        self.latency = parse_latency(str(settings.options.get("latency", "0")))
        self.failure_rate = float(settings.options.get("failure_rate", 0.0))
        self._drawn = Drawn(DRAWN_CACHE_SIZE)

    async def submit(self, request: ProviderRequest) -> Completed | Submitted:
        low, high = self.latency
        if high > 0:
            await asyncio.sleep(random.uniform(low, high))
        if self.failure_rate and random.random() < self.failure_rate:
            raise JobFailed("The local provider simulated a generation failure.")
        images = await self._drawn.get_or_draw(request)
        revised = request.prompt.strip()
        return Completed([GeneratedImage(data=data, revised_prompt=revised) for data in images])
