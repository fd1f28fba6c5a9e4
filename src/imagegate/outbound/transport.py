"""An httpx transport over ``outbound.connection``: a keep-alive pool per origin, httpx's
limits and timeouts, and httpx's exception classes, so adapters keep their
``httpx.AsyncClient`` and cannot tell the difference (except in CPU per request).

Only HTTP/1.1 over TCP, with TLS for https. Requests through the environment's proxies go
through httpx's own transports, which ``outbound.client`` mounts for them.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import httpx

from imagegate.outbound.connection import Connection, ConnectionClosed, MalformedResponse

Origin = tuple[bytes, bytes, int]
# A response's status, reason phrase and headers.
_Head = tuple[int, bytes, list[tuple[bytes, bytes]]]
_DEFAULT_PORTS = {b"http": 80, b"https": 443}
DEFAULT_LIMITS = httpx.Limits()  # httpx's: 100 connections, 20 kept idle for 5 s


@contextmanager
def _translated(
    timeout: type[httpx.TimeoutException], error: type[httpx.TransportError]
) -> Iterator[None]:
    """Turn the connection's and asyncio's failures into httpx's, for one phase."""
    try:
        yield
    except TimeoutError as exc:
        raise timeout(f"timed out: {timeout.__name__}") from exc
    except MalformedResponse as exc:
        raise httpx.RemoteProtocolError(str(exc)) from exc
    except ConnectionClosed as exc:
        raise error(str(exc)) from exc
    except (OSError, ssl.SSLError) as exc:
        raise error(f"{exc.__class__.__name__}: {exc}") from exc


class Transport(httpx.AsyncBaseTransport):
    def __init__(
        self,
        limits: httpx.Limits = DEFAULT_LIMITS,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._max = limits.max_connections
        self._max_idle = limits.max_keepalive_connections
        self._expiry = limits.keepalive_expiry
        self._ssl = ssl_context
        self._idle: dict[Origin, deque[Connection]] = {}
        self._idle_count = 0
        self._open = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._closing = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        origin, connection, head = await self._exchange(request)
        stream = _ResponseStream(self, origin, connection, _read_timeout(request))
        return _response(head, stream)

    async def fetch(self, request: httpx.Request) -> httpx.Response:
        """The response read to its end: ``handle_async_request`` and ``aread`` in one, without
        the stream's async iteration and a timeout per chunk (a chunk already received needs
        no wait, so only a wait gets a timeout, as httpx's read timeout is per read)."""
        origin, connection, head = await self._exchange(request)
        chunks = []
        try:
            while True:
                chunk = connection.ready()
                if chunk is None:
                    with _translated(httpx.ReadTimeout, httpx.ReadError):
                        async with asyncio.timeout(_read_timeout(request)):
                            chunk = await connection.read()
                if not chunk:
                    break
                chunks.append(chunk)
        except BaseException:
            self._discard(connection)
            raise
        self._give_back(origin, connection)
        response = _response(head, httpx.ByteStream(b"".join(chunks)))
        response.read()  # decodes a compressed body, as ``aread`` would
        return response

    async def _exchange(self, request: httpx.Request) -> tuple[Origin, Connection, _Head]:
        """Send ``request`` on a pooled (or new) connection and read the response's head."""
        url = request.url
        if url.raw_scheme not in _DEFAULT_PORTS:
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {url.scheme!r}")
        timeouts = request.extensions.get("timeout", {})
        origin = (url.raw_scheme, url.raw_host, url.port or _DEFAULT_PORTS[url.raw_scheme])
        connection = await self._acquire(origin, timeouts.get("pool"))
        if connection is None:
            try:
                connection = await self._connect(origin, timeouts.get("connect"))
            except BaseException:
                self._release()
                raise
        try:
            connection.begin(head_only=request.method == "HEAD")
            with _translated(httpx.WriteTimeout, httpx.WriteError):
                if not _sent_at_once(connection, request):
                    async with asyncio.timeout(timeouts.get("write")):
                        await _send_request(connection, request)
            with _translated(httpx.ReadTimeout, httpx.RemoteProtocolError):
                async with asyncio.timeout(timeouts.get("read")):
                    head = await connection.head()
        except BaseException:
            self._discard(connection)
            raise
        return origin, connection, head

    async def aclose(self) -> None:
        self._closing = True
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()
        self._idle_count = 0

    # ---- the pool ----

    async def _acquire(self, origin: Origin, wait_s: float | None) -> Connection | None:
        """An idle connection to ``origin``, or None with the right to open a new one
        (``max_connections`` counts idle and busy connections alike)."""
        loop = asyncio.get_running_loop()
        deadline = None if wait_s is None else loop.time() + wait_s
        while True:
            connection = self._take_idle(origin)
            if connection is not None:
                return connection
            if self._max is None or self._open < self._max:
                self._open += 1
                return None
            if self._idle_count:  # make room: an idle connection to another origin goes
                self._discard(self._oldest_idle())
                continue
            waiter = loop.create_future()
            self._waiters.append(waiter)
            try:
                async with asyncio.timeout_at(deadline):
                    await waiter
            except BaseException as exc:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                elif waiter.done() and not waiter.cancelled():
                    self._wake_one()  # woken but leaving: the freed room goes to the next
                if isinstance(exc, TimeoutError):
                    raise httpx.PoolTimeout("no connection available in time") from exc
                raise

    def _take_idle(self, origin: Origin) -> Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            self._idle_count -= 1
            fresh = self._expiry is None or now - connection.idle_since < self._expiry
            if fresh and not connection.closed:
                return connection
            self._discard(connection)
        return None

    def _oldest_idle(self) -> Connection:
        origin = min(
            (o for o, idle in self._idle.items() if idle), key=lambda o: self._idle[o][0].idle_since
        )
        self._idle_count -= 1
        return self._idle[origin].popleft()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _release(self) -> None:
        self._open -= 1
        self._wake_one()

    def _discard(self, connection: Connection) -> None:
        connection.close()
        self._release()

    def _give_back(self, origin: Origin, connection: Connection) -> None:
        full = self._max_idle is not None and self._idle_count >= self._max_idle
        if self._closing or full or not connection.reusable:
            self._discard(connection)
            return
        connection.idle_since = time.monotonic()
        self._idle.setdefault(origin, deque()).append(connection)
        self._idle_count += 1
        self._wake_one()

    async def _connect(self, origin: Origin, connect_s: float | None) -> Connection:
        scheme, host, port = origin
        tls = scheme == b"https"
        hostname = host.decode("ascii")
        if tls and self._ssl is None:
            self._ssl = httpx.create_ssl_context()
        with _translated(httpx.ConnectTimeout, httpx.ConnectError):
            async with asyncio.timeout(connect_s):
                _, connection = await asyncio.get_running_loop().create_connection(
                    Connection,
                    hostname,
                    port,
                    ssl=self._ssl if tls else None,
                    server_hostname=hostname if tls else None,
                )
        return connection


def _read_timeout(request: httpx.Request) -> float | None:
    timeout: float | None = request.extensions.get("timeout", {}).get("read")
    return timeout


def _response(head: _Head, stream: httpx.AsyncByteStream) -> httpx.Response:
    status, reason, headers = head
    extensions = {"http_version": b"HTTP/1.1", "reason_phrase": reason}
    return httpx.Response(status, headers=headers, stream=stream, extensions=extensions)


def _head(request: httpx.Request) -> bytes:
    head = [b"%s %s HTTP/1.1\r\n" % (request.method.encode("ascii"), request.url.raw_path)]
    head += [b"%s: %s\r\n" % pair for pair in request.headers.raw]
    head.append(b"\r\n")
    return b"".join(head)


def _sent_at_once(connection: Connection, request: httpx.Request) -> bool:
    """Hand a request with its body in memory to the socket without waiting, when the socket
    takes it (the usual case, which then needs no write timeout); False when it is streamed
    or the socket is full, for ``_send_request`` to send."""
    if not isinstance(request.stream, httpx.ByteStream) or not connection.writable:
        return False
    connection.write_now(_head(request) + request.content)
    return True


async def _send_request(connection: Connection, request: httpx.Request) -> None:
    if isinstance(request.stream, httpx.ByteStream):
        await connection.write(_head(request) + request.content)
        return
    chunked = request.headers.get("transfer-encoding", "").lower() == "chunked"
    await connection.write(_head(request))
    async for chunk in request.stream:  # type: ignore[union-attr]
        if chunk:
            await connection.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
    if chunked:
        await connection.write(b"0\r\n\r\n")


class _ResponseStream(httpx.AsyncByteStream):
    """The body as it arrives; closing it gives the connection back to the pool when the
    response was read to its end, and closes it otherwise."""

    def __init__(
        self, pool: Transport, origin: Origin, connection: Connection, timeout: float | None
    ) -> None:
        self._pool = pool
        self._origin = origin
        self._connection: Connection | None = connection
        self._timeout = timeout

    async def __aiter__(self) -> AsyncIterator[bytes]:
        connection = self._connection
        if connection is None:
            raise httpx.StreamClosed()
        while True:
            with _translated(httpx.ReadTimeout, httpx.ReadError):
                async with asyncio.timeout(self._timeout):
                    chunk = await connection.read()
            if not chunk:
                return
            yield chunk

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            self._pool._give_back(self._origin, connection)
