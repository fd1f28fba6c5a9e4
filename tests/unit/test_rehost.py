"""Checking upstream images: small ones on the event loop, the rest in a thread, same verdicts."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest
from PIL import Image

from imagegate.errors import JobFailed
from imagegate.worker.rehost import INLINE_BYTES, check_image


def png(width: int, height: int, *, noisy: bool = False) -> bytes:
    image = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
    if not noisy:
        image = Image.new("RGB", (width, height), (10, 120, 200))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize("noisy", [False, True], ids=["small", "large"])
async def test_an_image_in_the_asked_format_is_kept_as_sent(noisy: bool) -> None:
    data = png(400, 300, noisy=noisy)
    assert (len(data) > INLINE_BYTES) is noisy
    checked = await check_image(data, "png")
    assert (checked.data, checked.extension, checked.content_type) == (data, "png", "image/png")
    assert (checked.width, checked.height) == (400, 300)


@pytest.mark.parametrize("noisy", [False, True], ids=["small", "large"])
async def test_an_image_in_another_format_is_re_encoded(noisy: bool) -> None:
    checked = await check_image(png(400, 300, noisy=noisy), "jpeg")
    assert (checked.extension, checked.content_type) == ("jpeg", "image/jpeg")
    with Image.open(io.BytesIO(checked.data)) as image:
        assert (image.format, image.size) == ("JPEG", (400, 300))


@pytest.mark.parametrize("data", [b"not an image", png(64, 64)[:-20]], ids=["junk", "cut"])
async def test_data_that_is_not_a_whole_image_is_refused(data: bytes) -> None:
    with pytest.raises(JobFailed):
        await check_image(data)


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF"])
async def test_formats_outside_png_jpeg_and_webp_are_never_decoded(fmt: str) -> None:
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, fmt)
    with pytest.raises(JobFailed, match="not a PNG, JPEG or WebP image"):
        await check_image(out.getvalue())


def test_checking_a_webp_image_loads_no_other_decoder() -> None:
    """Pillow loads all of its decoders (on the event loop) when asked for one not loaded."""
    code = (
        "import io, sys\n"
        "from imagegate.worker.rehost import inspect_image, load_decoders\n"
        "load_decoders()\n"
        "from PIL import Image\n"
        "out = io.BytesIO(); Image.new('RGB', (8, 8)).save(out, 'WEBP')\n"
        "print(inspect_image(out.getvalue()).extension, 'PIL.EpsImagePlugin' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True)
    assert result.stdout.split() == [b"webp", b"False"]
