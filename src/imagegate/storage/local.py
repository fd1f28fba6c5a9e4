"""Local-directory storage, served back through the gateway's signed ``/v1/files`` route."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from urllib.parse import quote

from imagegate.config import Durability
from imagegate.storage.signing import URLSigner

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,255}$")


def check_key(key: str) -> str:
    """Reject keys that could escape the root (``..``, absolute paths, odd characters)."""
    if not _KEY.match(key) or ".." in key.split("/"):
        raise KeyError(key)
    return key


class LocalStorage:
    """Files under one directory; writes go through a temporary file and an atomic rename.

    A renamed file survives a killed process (the OS holds its pages); with ``power``
    durability the file and its directory are also synced, to survive an OS crash.
    """

    def __init__(self, root: Path, signer: URLSigner, durability: Durability = "crash") -> None:
        self.root = root
        self.signer = signer
        self.sync = durability == "power"

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        if self.sync:
            await asyncio.to_thread(_write, path, data, sync=True)
        else:
            # A small write to the page cache costs less than the hop to a thread and back.
            _write(path, data, sync=False)

    async def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError as exc:
            raise KeyError(key) from exc

    async def delete(self, keys: list[str]) -> None:
        def _unlink() -> None:
            for key in keys:
                self._path(key).unlink(missing_ok=True)

        await asyncio.to_thread(_unlink)

    def url(self, key: str, expires_at: int) -> str:
        sig = self.signer.signature(key, expires_at)
        return f"/v1/files/{quote(key)}?expires={expires_at}&sig={sig}"

    async def start(self) -> None:
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)

    async def aclose(self) -> None:
        return None


def _write(path: Path, data: bytes, *, sync: bool) -> None:
    """Write ``data`` whole or not at all; with ``sync``, on disk (bytes, then the name).

    Plain ``os`` calls on strings: a worker finishing thousands of tasks at once writes a
    file per task on its event loop, where ``pathlib`` and buffered files cost more than
    the system calls themselves."""
    name = os.fspath(path)
    parent = os.path.dirname(name)
    try:
        os.mkdir(parent)
    except FileExistsError:
        pass
    except FileNotFoundError:
        os.makedirs(parent, exist_ok=True)
    tmp = name + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, name)
    if sync:
        directory = os.open(parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
