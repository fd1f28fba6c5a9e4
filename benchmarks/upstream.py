"""A fast fake OpenAI Images upstream: ``POST /v1/images/generations`` answers one 64x64 PNG.

It follows the OpenAI answer shape (``{"created", "data": [{"b64_json"}]}``) so that both
imagegate's ``openai_compatible`` adapter and LiteLLM's OpenAI route accept it unchanged. It
is a bare asyncio HTTP/1.1 server, so that it costs the machine as little as possible and the
proxies in front of it, not the upstream, set the figures. ``--record FILE`` appends, for
each answer, the request's ``Idempotency-Key`` and the instant the answer was written: the
completion-visibility benchmark measures from that instant.

Run as ``python -m benchmarks.upstream --port P [--delay-ms D] [--record FILE]``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import time
from typing import TextIO

from PIL import Image


def small_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 60, 40)).save(out, "PNG")
    return out.getvalue()


def _response(status: str, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class Upstream:
    def __init__(self, delay_s: float, record: TextIO | None) -> None:
        self.delay_s = delay_s
        self.record = record
        image = base64.b64encode(small_png()).decode()
        body = {"created": int(time.time()), "data": [{"b64_json": image}]}
        self.images = _response("200 OK", json.dumps(body).encode())
        self.ok = _response("200 OK", b'{"status":"ok"}')
        self.missing = _response("404 Not Found", b'{"error":{"message":"not found"}}')

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                answer = await self._answer(head, reader)
                writer.write(answer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _answer(self, head: bytes, reader: asyncio.StreamReader) -> bytes:
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if length := int(headers.get("content-length", "0")):
            await reader.readexactly(length)
        if method == "GET" and path == "/health":
            return self.ok
        if method != "POST" or not path.endswith("/images/generations"):
            return self.missing
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.record is not None:
            self.record.write(f"{headers.get('idempotency-key', '')} {time.time():.6f}\n")
            self.record.flush()
        return self.images


async def serve(port: int, delay_s: float, record: TextIO | None) -> None:
    upstream = Upstream(delay_s, record)
    server = await asyncio.start_server(upstream.handle, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--record", default=None)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    record = open(args.record, "a") if args.record else None  # noqa: SIM115 - lives as long as the process
    asyncio.run(serve(args.port, args.delay_ms / 1000, record))


if __name__ == "__main__":
    main()
