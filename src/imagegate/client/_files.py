"""Naming and decoding of downloaded images; the bytes themselves come through a flow."""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from imagegate.client.exceptions import TaskFailed
from imagegate.client.types import ImageData, ImagesResponse, Task

_MAGIC = ((b"\x89PNG", ".png"), (b"\xff\xd8\xff", ".jpg"), (b"GIF8", ".gif"))
_BY_TYPE = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp", "image/gif": ".gif"}


@dataclass(frozen=True, slots=True)
class Blob:
    """Image bytes and the file extension they deserve."""

    data: bytes
    extension: str


def extension_of(data: bytes, content_type: str | None, url: str | None) -> str:
    """Trust the bytes first, then the Content-Type, then the URL; signed URLs often lie."""
    for magic, ext in _MAGIC:
        if data.startswith(magic):
            return ext
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    media = (content_type or "").split(";")[0].strip().lower()
    if media in _BY_TYPE:
        return _BY_TYPE[media]
    suffix = PurePosixPath(urlsplit(url or "").path).suffix.lower()
    return suffix if suffix in _BY_TYPE.values() or suffix == ".jpeg" else ".bin"


def decode_inline(item: ImageData) -> Blob:
    """The image carried as ``b64_json`` in the answer itself."""
    try:
        data = base64.b64decode(item.b64_json or "", validate=True)
    except binascii.Error as exc:
        raise ValueError(f"b64_json is not valid base64: {exc}") from exc
    return Blob(data, extension_of(data, None, None))


def images_of(result: ImagesResponse | Task) -> tuple[str, list[ImageData]]:
    """A file-name stem and the images of a finished result; an unfinished task is refused."""
    if isinstance(result, Task):
        if result.status == "failed":
            raise TaskFailed(result)
        if result.status != "completed":
            raise ValueError(f"task {result.id} is {result.status}; wait for it first")
        return result.id, result.data
    return f"image-{result.created or 0}-{secrets.token_hex(3)}", result.data


def target(path: Path, source: str | ImageData, blob: Blob) -> Path:
    """``path`` itself, or a name inside it when it is an existing directory."""
    if not path.is_dir():
        return path
    url = source if isinstance(source, str) else source.url
    stem = PurePosixPath(urlsplit(url or "").path).stem or "image"
    return path / f"{stem}{blob.extension}"
