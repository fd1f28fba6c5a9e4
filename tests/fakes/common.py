"""What every fake vendor shares: knobs and counters, scripted faults, expiring result files.

A fake's state object is plain attributes that a test sets before (or while) the fake serves:
``latency_s`` delays every answer, ``fail_next(...)`` scripts misbehaviour of the next create
calls, words in a prompt trigger moderation or job failure, ``polls_to_finish`` and ``hold``
control how long jobs run, and ``files.expire_all()`` makes result URLs stale. Counters tell
how many jobs the vendor really started, so fault tests can prove nothing ran twice.
"""

from __future__ import annotations

import asyncio
import io
import secrets
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

# Scripted faults by name. Some faults hit after the vendor did the work (the answer is lost
# or garbled): those count as submissions. A "slow" answer is counted by the normal path.
FAULT_STATUS = {"rate_limit": 429, "server_error": 500, "bad_gateway": 502, "unavailable": 503}
STARTS_JOB = frozenset({"bad_gateway", "malformed"})

ErrorBody = Callable[[int, str], Response]


def image_bytes(width: int, height: int, fmt: str = "png", seed: str = "") -> bytes:
    """A real, decodable image of the requested size, its colour derived from ``seed``."""
    value = zlib.crc32(seed.encode())
    colour = (value & 0xFF, (value >> 8) & 0xFF, (value >> 16) & 0xFF)
    buffer = io.BytesIO()
    pil_format = {"jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP"}.get(fmt, "PNG")
    Image.new("RGB", (width, height), colour).save(buffer, format=pil_format)
    return buffer.getvalue()


def media_type(fmt: str) -> str:
    return {"jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp"}.get(fmt, "image/png")


@dataclass
class StoredFile:
    data: bytes
    media_type: str
    expires_at: float


@dataclass
class FileStore:
    """Result files the fake serves itself; each URL stops working ``ttl_s`` after creation."""

    ttl_s: float = 600.0
    files: dict[str, StoredFile] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def put(self, data: bytes, media: str, suffix: str = "png") -> str:
        name = f"{secrets.token_hex(12)}.{suffix}"
        with self.lock:
            self.files[name] = StoredFile(data, media, time.time() + self.ttl_s)
        return name

    def get(self, name: str) -> StoredFile | None:
        """The file while its URL is valid, else None (expired or never existed)."""
        with self.lock:
            stored = self.files.get(name)
        if stored is None or stored.expires_at <= time.time():
            return None
        return stored

    def expired(self, name: str) -> bool:
        with self.lock:
            stored = self.files.get(name)
        return stored is not None and stored.expires_at <= time.time()

    def expire_all(self) -> None:
        with self.lock:
            for stored in self.files.values():
                stored.expires_at = 0.0


@dataclass
class FakeVendor:
    """Knobs and counters common to every fake; vendor fakes extend it."""

    api_key: str = "test-key"
    latency_s: float = 0.0
    slow_s: float = 5.0  # how long a scripted "slow" answer takes
    retry_after_s: int = 2
    polls_to_finish: int = 2  # polls answered "still running" before a job completes
    hold: bool = False  # while True, jobs never finish (for cancel tests)
    blocked_words: frozenset[str] = frozenset({"forbidden"})  # refused on input
    unsafe_words: frozenset[str] = frozenset({"unsafe"})  # refused on output
    failing_words: frozenset[str] = frozenset({"explode"})  # the job itself fails
    faults: deque[str] = field(default_factory=deque)
    poll_faults: deque[str] = field(default_factory=deque)
    submissions: int = 0  # jobs the vendor started (billed)
    create_calls: int = 0  # every create request that reached the fake
    polls: int = 0
    cancels: int = 0
    files: FileStore = field(default_factory=FileStore)
    headers_seen: list[dict[str, str]] = field(default_factory=list)

    def app(self) -> Starlette:
        """The fake's ASGI app, serving this state."""
        raise NotImplementedError

    def fail_next(self, *faults: str) -> None:
        """Script the next create calls: rate_limit, server_error, bad_gateway, unavailable,
        malformed (a 200 with broken JSON) or slow (``slow_s`` before a normal answer)."""
        self.faults.extend(faults)

    def fail_next_poll(self, *faults: str) -> None:
        self.poll_faults.extend(faults)

    @staticmethod
    def has_word(prompt: str, words: frozenset[str]) -> bool:
        lowered = prompt.lower()
        return any(word in lowered for word in words)

    async def scripted(self, queue: deque[str], error: ErrorBody) -> Response | None:
        """Apply latency and the next scripted fault; None means: answer normally."""
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        if not queue:
            return None
        fault = queue.popleft()
        if queue is self.faults and fault in STARTS_JOB:
            self.submissions += 1
        if fault == "slow":
            await asyncio.sleep(self.slow_s)
            return None
        if fault == "malformed":
            return Response('{"id": "trunc', media_type="application/json")
        response = error(FAULT_STATUS[fault], f"scripted {fault}")
        if fault == "rate_limit":
            response.headers["Retry-After"] = str(self.retry_after_s)
        return response

    def record(self, request: Request) -> None:
        self.headers_seen.append(dict(request.headers))


def file_response(files: FileStore, name: str, gone: Response) -> Response:
    stored = files.get(name)
    if stored is None:
        return gone
    return Response(stored.data, media_type=stored.media_type)
