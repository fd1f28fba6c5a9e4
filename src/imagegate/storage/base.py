"""The storage interface: bytes in, bytes out, and URLs a client may fetch for a while."""

from __future__ import annotations

from typing import Protocol

from imagegate.ids import TASK_PREFIX


def image_key(task_id: str, index: int, extension: str) -> str:
    """Where a task's image is stored: one of 1,024 folders, named by the id's first random
    characters, so a local disk adds a file, not a folder, per image, and no folder grows
    past a few thousand entries per million images."""
    return f"{task_id.removeprefix(TASK_PREFIX)[:2]}/{task_id}-{index}.{extension}"


class Storage(Protocol):
    """Put, get and delete objects by key, and sign time-limited URLs for them."""

    async def put(self, key: str, data: bytes, content_type: str) -> None: ...

    async def get(self, key: str) -> bytes:
        """The object's bytes; raises ``KeyError`` when it does not exist."""
        ...

    async def delete(self, keys: list[str]) -> None:
        """Remove objects; keys that do not exist are ignored."""
        ...

    def url(self, key: str, expires_at: int) -> str:
        """A URL valid until ``expires_at`` (unix seconds).

        It may be relative to the gateway (``/v1/files/...``); the API makes it absolute.
        Signing does no I/O, so the status route can call it for every image it renders.
        """
        ...

    async def start(self) -> None:
        """Connect and check the destination exists, so bad settings fail at start."""
        ...

    async def aclose(self) -> None: ...
