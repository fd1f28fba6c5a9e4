"""imagegate's httpx transport against real servers on loopback: uvicorn for well-formed
HTTP, a raw asyncio server for what a broken upstream sends, and TLS with a throwaway
certificate."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import inspect
import json
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvloop

from imagegate.outbound import Transport, client
from tests.fakes.server import serve_app

BIG = bytes(range(256)) * 8192  # 2 MiB: more than the connection buffers before pausing


async def _body(receive: Callable[[], Awaitable[dict[str, Any]]]) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers by path; every answer names the client port, which identifies the connection."""
    path = scope["path"]
    body = await _body(receive)
    headers = {k.decode(): v.decode() for k, v in scope["headers"]}
    port = str(scope["client"][1]).encode()
    start: dict[str, Any] = {"type": "http.response.start", "status": 200, "headers": []}
    start["headers"].append((b"x-client-port", port))
    if path == "/echo":
        answer = {
            "method": scope["method"],
            "sha": hashlib.sha256(body).hexdigest(),
            "length": len(body),
            "transfer_encoding": headers.get("transfer-encoding"),
            "query": scope["query_string"].decode(),
            "cookie": headers.get("cookie"),
        }
        payload = json.dumps(answer).encode()
    elif path == "/chunked":  # no content-length: uvicorn frames the parts as chunks
        await send(start)
        for part in (b"one ", b"two ", b"three"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    elif path == "/gzip":
        payload = gzip.compress(b"unzipped " * 100)
        start["headers"].append((b"content-encoding", b"gzip"))
    elif path == "/big":
        payload = BIG
    elif path == "/slow":
        await asyncio.sleep(1.0)
        payload = b"late"
    elif path == "/close":
        payload = b"bye"
        start["headers"].append((b"connection", b"close"))
    elif path == "/set-cookie":
        payload = b"have one"
        start["headers"].append((b"set-cookie", b"session=tenant-a; Path=/"))
    elif path == "/empty":
        start["status"] = 204
        payload = b""
    else:
        start["status"] = 404
        payload = b"no such path"
    start["headers"].append((b"content-length", str(len(payload)).encode()))
    await send(start)
    await send(
        {"type": "http.response.body", "body": payload if scope["method"] != "HEAD" else b""}
    )


def on_both_loops(test: Callable[..., Awaitable[None]]) -> Callable[..., None]:
    """Run an async test on asyncio's loop and on uvloop's (the server runs on uvloop, whose
    transports are not asyncio's classes); a test taking ``http`` gets a client of ours."""
    signature = inspect.signature(test)
    wants_http = "http" in signature.parameters

    async def body(**fixtures: Any) -> None:
        if not wants_http:
            return await test(**fixtures)
        async with client(5.0) as http:
            return await test(http=http, **fixtures)

    def run(loop_factory: Callable[[], asyncio.AbstractEventLoop], **fixtures: Any) -> None:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(body(**fixtures))

    loop = inspect.Parameter("loop_factory", inspect.Parameter.KEYWORD_ONLY)
    rest = [
        p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
        for n, p in signature.parameters.items()
        if n != "http"
    ]
    run.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[loop, *rest], return_annotation=None
    )
    run.__name__ = test.__name__
    loops = [asyncio.new_event_loop, uvloop.new_event_loop]
    return pytest.mark.parametrize("loop_factory", loops, ids=["asyncio", "uvloop"])(run)


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with serve_app(app) as url:
        yield url


@on_both_loops
async def test_connections_are_kept_alive_and_reused(
    http: httpx.AsyncClient, base_url: str
) -> None:
    ports = set()
    for i in range(5):
        response = await http.post(f"{base_url}/echo?i={i}", json={"i": i})
        assert response.status_code == 200
        assert response.json()["query"] == f"i={i}"
        ports.add(response.headers["x-client-port"])
    assert len(ports) == 1


@on_both_loops
async def test_request_bodies_arrive_whole(http: httpx.AsyncClient, base_url: str) -> None:
    fixed = await http.post(f"{base_url}/echo", content=BIG)
    assert fixed.json() == {
        "method": "POST",
        "sha": hashlib.sha256(BIG).hexdigest(),
        "length": len(BIG),
        "transfer_encoding": None,
        "query": "",
        "cookie": None,
    }

    async def parts() -> AsyncIterator[bytes]:
        for start in range(0, len(BIG), 300_000):
            yield BIG[start : start + 300_000]

    streamed = await http.post(f"{base_url}/echo", content=parts())
    assert streamed.json()["transfer_encoding"] == "chunked"
    assert streamed.json()["sha"] == hashlib.sha256(BIG).hexdigest()


@on_both_loops
async def test_response_bodies_chunked_compressed_large_and_empty(
    http: httpx.AsyncClient, base_url: str
) -> None:
    assert (await http.get(f"{base_url}/chunked")).content == b"one two three"
    assert (await http.get(f"{base_url}/gzip")).text == "unzipped " * 100
    big = await http.get(f"{base_url}/big")
    assert big.content == BIG
    empty = await http.get(f"{base_url}/empty")
    assert (empty.status_code, empty.content) == (204, b"")
    head = await http.head(f"{base_url}/big")
    assert (head.status_code, head.headers["content-length"], head.content) == (
        200,
        str(len(BIG)),
        b"",
    )
    missing = await http.get(f"{base_url}/nowhere")
    assert (missing.status_code, missing.text) == (404, "no such path")
    # Every one of those left the connection fit for the next request.
    assert (await http.get(f"{base_url}/echo")).status_code == 200


@on_both_loops
async def test_streamed_response_in_parts(http: httpx.AsyncClient, base_url: str) -> None:
    async with http.stream("GET", f"{base_url}/big") as response:
        received = [chunk async for chunk in response.aiter_raw()]
    assert b"".join(received) == BIG
    assert len(received) > 1


@on_both_loops
async def test_connection_close_is_honoured(http: httpx.AsyncClient, base_url: str) -> None:
    first = await http.get(f"{base_url}/close")
    assert first.text == "bye"
    second = await http.get(f"{base_url}/echo")
    assert second.headers["x-client-port"] != first.headers["x-client-port"]


@on_both_loops
async def test_cookies_an_upstream_sets_are_not_sent_back(
    http: httpx.AsyncClient, base_url: str
) -> None:
    """One client serves every API key: a cookie set during one request must not ride on
    the next."""
    assert (await http.get(f"{base_url}/set-cookie")).headers["set-cookie"].startswith("session")
    assert (await http.get(f"{base_url}/echo")).json()["cookie"] is None
    async with httpx.AsyncClient() as plain:  # what httpx alone would have done
        await plain.get(f"{base_url}/set-cookie")
        assert (await plain.get(f"{base_url}/echo")).json()["cookie"] == "session=tenant-a"


@on_both_loops
async def test_read_timeout_then_recovery(base_url: str) -> None:
    async with client(0.2) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.get(f"{base_url}/slow")
        assert (await http.get(f"{base_url}/echo")).status_code == 200


@on_both_loops
async def test_connect_error_for_a_closed_port() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    async with client(2.0) as http:
        with pytest.raises(httpx.ConnectError) as raised:
            await http.get(f"http://127.0.0.1:{port}/")
    assert raised.value.request.url == f"http://127.0.0.1:{port}/"  # as httpx's send attaches it


@on_both_loops
async def test_a_client_with_event_hooks_sends_through_httpx_own_layers(base_url: str) -> None:
    """The direct send is only for requests none of those layers would touch."""
    seen: list[int] = []

    async def hook(response: httpx.Response) -> None:
        seen.append(response.status_code)

    async with client(2.0) as http:
        http.event_hooks = {"response": [hook]}
        assert (await http.get(f"{base_url}/echo")).status_code == 200
        streamed = await http.send(http.build_request("GET", f"{base_url}/echo"), stream=True)
        assert (await streamed.aread()) and seen == [200, 200]
        await streamed.aclose()


@on_both_loops
async def test_unsupported_scheme() -> None:
    transport = Transport()
    with pytest.raises(httpx.UnsupportedProtocol):
        await transport.handle_async_request(httpx.Request("GET", "ftp://example.test/"))


@on_both_loops
async def test_pool_limit_waits_then_times_out(base_url: str) -> None:
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(
        transport=Transport(limits), timeout=httpx.Timeout(5.0, pool=0.2)
    ) as http:
        async with http.stream("GET", f"{base_url}/big") as held:
            with pytest.raises(httpx.PoolTimeout):
                await http.get(f"{base_url}/echo")
            waiting = asyncio.create_task(http.get(f"{base_url}/echo", timeout=httpx.Timeout(5.0)))
            await asyncio.sleep(0.05)
            assert not waiting.done()
            await held.aread()
        port = held.headers["x-client-port"]
        assert (await waiting).headers["x-client-port"] == port  # it took the same connection


@on_both_loops
async def test_cancelled_request_frees_its_connection(base_url: str) -> None:
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(transport=Transport(limits), timeout=5.0) as http:
        slow = asyncio.create_task(http.get(f"{base_url}/slow"))
        await asyncio.sleep(0.2)
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        response = await http.get(f"{base_url}/echo", timeout=httpx.Timeout(5.0, pool=0.5))
        assert response.status_code == 200


class RawServer:
    """A TCP server that answers every request with the bytes a test scripts."""

    def __init__(self, answer: bytes, *, close_after: bool = True) -> None:
        self.answer = answer
        self.close_after = close_after
        self.connections = 0
        self.request_lines: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.request_lines.append(head.split(b"\r\n", 1)[0])
            writer.write(self.answer)
            await writer.drain()
            if not self.close_after:
                await reader.read()  # hold the connection until the client goes
        finally:  # also when the test's loop ends first and cancels this handler
            writer.close()

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *_: object) -> None:
        self.server.close()


@on_both_loops
async def test_body_ended_by_closing_the_connection(http: httpx.AsyncClient) -> None:
    async with RawServer(b"HTTP/1.1 200 OK\r\n\r\nuntil the end") as url:
        assert (await http.get(url)).text == "until the end"
        assert (await http.get(url)).text == "until the end"


@on_both_loops
async def test_idle_connection_closed_by_the_server_is_not_reused(http: httpx.AsyncClient) -> None:
    raw = RawServer(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
    async with raw as url:
        assert (await http.get(url)).text == "ok"
        await asyncio.sleep(0.05)  # the server's close reaches the idle connection
        assert (await http.get(url)).text == "ok"
    assert raw.connections == 2


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhalf", httpx.ReadError),
        (b"SMTP ready\r\n\r\n", httpx.RemoteProtocolError),
        (b"", httpx.RemoteProtocolError),
    ],
)
@on_both_loops
async def test_broken_answers_raise_httpx_errors(
    http: httpx.AsyncClient, answer: bytes, error: type[Exception]
) -> None:
    async with RawServer(answer) as url:
        with pytest.raises(error):
            await http.get(url)


@on_both_loops
async def test_the_environment_proxy_is_used_except_for_no_proxy_hosts(
    base_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = RawServer(b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\nproxied")
    async with proxy as proxy_url:
        monkeypatch.setenv("HTTP_PROXY", proxy_url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        async with client(5.0) as http:
            assert (await http.get("http://upstream.invalid/v1/x")).text == "proxied"
            assert (await http.get(f"{base_url}/echo")).json()["method"] == "GET"  # direct
    assert proxy.request_lines == [b"GET http://upstream.invalid/v1/x HTTP/1.1"]


@on_both_loops
async def test_interim_response_is_skipped(http: httpx.AsyncClient) -> None:
    answer = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 4\r\n\r\ndone"
    async with RawServer(answer, close_after=False) as url:
        response = await http.post(url, content=b"x")
        assert (response.status_code, response.text) == (201, "done")


def _certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@on_both_loops
async def test_https_with_certificate_verification(tmp_path: Path) -> None:
    cert, key = _certificate(tmp_path)
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(cert, key)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nsecret")
            await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_side)
    url = f"https://localhost:{server.sockets[0].getsockname()[1]}/"
    try:
        trusting = ssl.create_default_context(cafile=str(cert))
        async with httpx.AsyncClient(transport=Transport(ssl_context=trusting)) as http:
            assert (await http.get(url)).text == "secret"
        async with client(5.0) as untrusting:  # the default trust store has never seen it
            with pytest.raises(httpx.ConnectError):
                await untrusting.get(url)
    finally:
        server.close()
