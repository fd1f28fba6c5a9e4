"""Local-directory storage, served back through the gateway's signed ``/v1/files`` route."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from urllib.parse import quote

from imagegate.storage.signing import URLSigner

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,255}$")


def check_key(key: str) -> str:
    """Reject keys that could escape the root (``..``, absolute paths, odd characters)."""
    if not _KEY.match(key) or ".." in key.split("/"):
        raise KeyError(key)
    return key


class LocalStorage:
    """Files under one directory; writes go through a temporary file and an atomic rename."""

    def __init__(self, root: Path, signer: URLSigner) -> None:
        self.root = root
        self.signer = signer

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(self._write, self._path(key), data)

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

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
