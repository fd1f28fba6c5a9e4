"""One HTTP/1.1 client connection: an asyncio protocol that writes a request and parses the
response with httptools (the C parser uvicorn already brings).

It exists because httpx's default stack (httpcore, h11 and anyio) spent about a third of a
synchronous passthrough request's CPU; see ``docs/benchmarks.md``. The connection knows
nothing of pools or timeouts' meaning: it raises ``ConnectionClosed`` or
``MalformedResponse`` and lets ``outbound.transport`` translate them into httpx's errors.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import cast

import httptools

# Above this many unread body bytes the socket stops being read until the consumer catches up.
HIGH_WATER = 256 * 1024


class ConnectionClosed(Exception):
    """The server closed the connection (or the socket failed) before the response ended."""


class MalformedResponse(Exception):
    """The bytes the server sent are not an HTTP/1.1 response."""


class Connection(asyncio.Protocol):
    """A connection carries one exchange at a time; ``reusable`` says whether another may
    follow (the response was read to its end and the server keeps the connection alive)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._error: Exception | None = None
        self._changed: asyncio.Future[None] | None = None
        self._can_write: asyncio.Future[None] | None = None
        self._reset(head_only=False)

    def _reset(self, *, head_only: bool) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._head_only = head_only
        self._status = 0
        self._reason = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._has_length = False
        self._headers_done = False
        self._done = False
        self._keep_alive = False
        self._body: deque[bytes] = deque()
        self._buffered = 0
        self._exchanging = False

    # ---- asyncio.Protocol ----

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports quack like asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if not self._exchanging or self._done:  # bytes nobody asked for: never reuse this
            self._fail(MalformedResponse("unexpected data from the server"))
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(MalformedResponse(str(exc)))
            return
        if self._buffered > HIGH_WATER and self.transport is not None:
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        # A response without a length or chunked framing ends when the connection does.
        if self._headers_done and not self._done and not self._has_length:
            self._done = True
        self._fail(ConnectionClosed("the server closed the connection"))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ConnectionClosed(str(exc) if exc else "the connection was closed"))
        self._wake_writer()

    def pause_writing(self) -> None:
        self._can_write = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        self._wake_writer()

    # ---- httptools callbacks ----

    def on_status(self, status: bytes) -> None:
        self._reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))
        lowered = name.lower()
        if lowered == b"content-length" or (
            lowered == b"transfer-encoding" and b"chunked" in value.lower()
        ):
            self._has_length = True

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()
        if 100 <= self._status < 200:  # an interim response: the real one follows
            self._reason, self._headers, self._has_length = b"", [], False
            return
        self._headers_done = True
        if self._head_only or self._status in (204, 304):
            self._done = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self._body.append(body)
        self._buffered += len(body)
        self._wake()

    def on_message_complete(self) -> None:
        if self._status >= 200:
            self._done = True
            # Asked now: the parser forgets the message's framing once the callback returns.
            self._keep_alive = self._parser.should_keep_alive()
            self._wake()

    # ---- the exchange ----

    @property
    def reusable(self) -> bool:
        return (
            not self.closed
            and self._done
            and not self._head_only
            and not self._body
            and self._keep_alive
        )

    def begin(self, *, head_only: bool) -> None:
        """Start a new exchange on this connection."""
        self._reset(head_only=head_only)
        self._exchanging = True
        if self.transport is not None:
            self.transport.resume_reading()

    @property
    def writable(self) -> bool:
        """Whether the socket takes more now (``write_now`` then needs no wait)."""
        return self._can_write is None

    def write_now(self, data: bytes) -> None:
        """Hand ``data`` to the socket; it may be full afterwards (see ``writable``)."""
        if self.closed or self.transport is None:
            raise self._error or ConnectionClosed("the connection is closed")
        self.transport.write(data)

    async def write(self, data: bytes) -> None:
        self.write_now(data)
        if self._can_write is not None:
            await self._can_write
            if self.closed:
                raise self._error or ConnectionClosed("the connection is closed")

    async def head(self) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        """Wait for the response's status line and headers."""
        while not self._headers_done:
            await self._wait()
        return self._status, self._reason, self._headers

    async def read(self) -> bytes:
        """The response body's next chunk; ``b""`` once it has all been read."""
        while (chunk := self.ready()) is None:
            await self._wait()
        return chunk

    def ready(self) -> bytes | None:
        """``read`` when it would not wait: the next chunk, ``b""`` at the end, or None."""
        if not self._body:
            if self._done:
                self._exchanging = False
                return b""
            return None
        chunk = self._body.popleft()
        self._buffered -= len(chunk)
        if self.transport is not None and self._buffered <= HIGH_WATER:
            self.transport.resume_reading()
        return chunk

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _wait(self) -> asyncio.Future[None]:
        if self._error is not None and not self._done:
            raise self._error
        self._changed = asyncio.get_running_loop().create_future()
        return self._changed

    def _wake(self) -> None:
        if self._changed is not None and not self._changed.done():
            self._changed.set_result(None)

    def _wake_writer(self) -> None:
        if self._can_write is not None and not self._can_write.done():
            self._can_write.set_result(None)
        self._can_write = None

    def _fail(self, error: Exception) -> None:
        if self._error is None:
            self._error = error
        self.closed = True
        if self.transport is not None:
            self.transport.close()
        self._wake()
