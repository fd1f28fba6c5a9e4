"""Bring provider images into our storage: fetch safely, check they are images, store them.

Upstream URLs expire and reveal the vendor, so no task completes with one. Fetching refuses
private, loopback and link-local addresses unless the provider allows them (self-hosted
upstreams such as ComfyUI), so a hostile or confused upstream cannot aim us at the inside.
"""

from __future__ import annotations

import asyncio
import io
import ipaddress
import socket
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

import httpx
from PIL import (
    Image,
    WebPImagePlugin,  # noqa: F401 - registered, so no open loads every decoder
)

from imagegate.errors import JobFailed, ProviderUnavailable

MAX_IMAGE_BYTES = 50 * 1024 * 1024
MAX_PIXELS = 64 * 1024 * 1024
# Verifying an image reads its bytes without decoding pixels, so up to this size it takes
# less time on the event loop than a hop to a thread and back. Re-encoding always goes to a
# thread: its cost follows the pixel count, which a small file does not bound.
INLINE_BYTES = 256 * 1024
FORMATS = {
    "PNG": ("png", "image/png"),
    "JPEG": ("jpeg", "image/jpeg"),
    "WEBP": ("webp", "image/webp"),
}
_PIL_NAME = {ext: name for name, (ext, _) in FORMATS.items()}
_OPEN = tuple(FORMATS)  # the only decoders an upstream's bytes ever reach


def load_decoders() -> None:
    """Load Pillow's decoders now, at start: the first image a process checked used to pay
    for it on the event loop (8 ms of a 13 ms completion, measured from the upstream's
    answer to the commit)."""
    Image.preinit()


@dataclass(frozen=True)
class CheckedImage:
    data: bytes
    extension: str
    content_type: str
    width: int
    height: int


def inspect_image(data: bytes, want_format: str | None = None) -> CheckedImage:
    """Verify ``data`` is a PNG, JPEG or WebP within bounds; convert to ``want_format`` if asked."""
    checked = _verify(data)
    target = _target(checked, want_format)
    return checked if target is None else _converted(checked, target)


async def check_image(data: bytes, want_format: str | None = None) -> CheckedImage:
    """``inspect_image`` where it costs least: a small image is verified on the event loop."""
    if len(data) > INLINE_BYTES:
        return await asyncio.to_thread(inspect_image, data, want_format)
    checked = _verify(data)
    target = _target(checked, want_format)
    return checked if target is None else await asyncio.to_thread(_converted, checked, target)


def _verify(data: bytes) -> CheckedImage:
    if len(data) > MAX_IMAGE_BYTES:
        raise JobFailed(f"upstream image is larger than {MAX_IMAGE_BYTES} bytes")
    try:
        with Image.open(io.BytesIO(data), formats=_OPEN) as probe:
            fmt, (width, height) = probe.format, probe.size
            probe.verify()
    except Exception as exc:  # Pillow raises many types for corrupt input
        raise JobFailed("upstream returned data that is not a PNG, JPEG or WebP image") from exc
    if fmt not in FORMATS:  # a variant a decoder hands over, such as a multi-picture JPEG
        raise JobFailed(f"upstream returned an unsupported image type: {fmt}")
    if width * height > MAX_PIXELS:
        raise JobFailed("upstream image has too many pixels")
    ext, content_type = FORMATS[fmt]
    return CheckedImage(data, ext, content_type, width, height)


def _target(checked: CheckedImage, want_format: str | None) -> str | None:
    """The Pillow format to re-encode into, or None when the image already is what was asked."""
    if want_format and want_format in _PIL_NAME and want_format != checked.extension:
        return _PIL_NAME[want_format]
    return None


def _converted(checked: CheckedImage, fmt: str) -> CheckedImage:
    ext, content_type = FORMATS[fmt]
    return replace(
        checked, data=_convert(checked.data, fmt), extension=ext, content_type=content_type
    )


def _convert(data: bytes, fmt: str) -> bytes:
    with Image.open(io.BytesIO(data), formats=_OPEN) as opened:
        image: Image.Image = opened
        if fmt == "JPEG" and image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        out = io.BytesIO()
        image.save(out, fmt)
        return out.getvalue()


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def check_public_url(url: str) -> None:
    """Raise unless every address ``url``'s host resolves to is public."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise JobFailed("upstream returned an image URL that is not http(s)")
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
        )
    except socket.gaierror as exc:
        raise ProviderUnavailable(f"cannot resolve image host {parts.hostname}") from exc
    addresses = {str(info[4][0]) for info in infos}
    if not addresses or not all(is_public_address(a) for a in addresses):
        raise JobFailed("upstream image URL points at a private or loopback address; refused")


async def fetch_image(http: httpx.AsyncClient, url: str, *, allow_private: bool) -> bytes:
    """Download an image URL with a size bound; expired or missing results fail the job."""
    if not allow_private:
        await check_public_url(url)
    try:
        async with http.stream("GET", url, follow_redirects=False) as response:
            if response.status_code in (401, 403, 404, 410):
                raise JobFailed(
                    f"upstream image URL is gone or expired (HTTP {response.status_code})"
                )
            if response.status_code >= 400:
                raise ProviderUnavailable(f"image download failed (HTTP {response.status_code})")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_IMAGE_BYTES:
                    raise JobFailed("upstream image is too large")
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.HTTPError as exc:
        raise ProviderUnavailable(f"image download failed: {exc.__class__.__name__}") from exc
