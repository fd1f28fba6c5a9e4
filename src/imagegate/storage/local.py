"""Local-directory storage, served back through the gateway's signed ``/v1/files`` route."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from urllib.parse import quote

from imagegate.config import Durability
from imagegate.storage.signing import URLSigner

_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,255}$")


def check_key(key: str) -> str:
    """Reject keys that could escape the root (``..``, absolute paths, odd characters)."""
    if not _KEY.match(key) or ".." in key.split("/"):
        raise KeyError(key)
    return key


class LocalStorage:
    """Files under one directory, never seen half written (see ``_write``).

    A written file survives a killed process (the OS holds its pages); with ``power``
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

    A new file is created in place: no reader can reach it before the task that names it
    commits, and a crash mid-write leaves a file the retry overwrites. Only replacing an
    existing file goes through a temporary one and an atomic rename, so a reader never sees
    it half written. That makes the common case one directory change instead of three,
    which is what a worker finishing thousands of tasks at once waits on. Plain ``os``
    calls on strings: this runs on the event loop, where ``pathlib`` and buffered files cost
    more than the system calls themselves."""
    name = os.fspath(path)
    try:
        fd = _create(name)
    except FileExistsError:
        tmp = name + ".tmp"
        _fill(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666), data, sync)
        os.replace(tmp, name)
    else:
        _fill(fd, data, sync)
    if sync:
        directory = os.open(os.path.dirname(name), os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def _create(name: str) -> int:
    """Open a new file for writing, making its directory on first use."""
    try:
        return os.open(name, _NEW, 0o666)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(name), exist_ok=True)
        return os.open(name, _NEW, 0o666)


def _fill(fd: int, data: bytes, sync: bool) -> None:
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
