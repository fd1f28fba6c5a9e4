"""A small HTTP/1.1 load generator: many keep-alive connections on one asyncio loop.

It stands in for wrk where wrk is missing, and it runs the plans wrk cannot: a fixed number
of requests (to build a backlog of tasks) rather than a fixed duration. It always runs in a
process of its own (``python -m benchmarks.driver`` reads a JSON plan on stdin and prints a
JSON result), so its CPU use shows up as a separate process, not inside the benchmark.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""


def encode(call: Call, host: str) -> bytes:
    lines = [f"{call.method} {call.path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in call.headers.items()]
    if call.body or call.method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(call.body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + call.body


class Connection:
    """One keep-alive connection; ``exchange`` sends a request and reads the whole answer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def exchange(self, raw: bytes) -> tuple[int, bytes]:
        self.writer.write(raw)
        status = int((await self.reader.readline()).split(b" ", 2)[1])
        length = 0
        chunked = False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if chunked:
            return status, await self._chunks()
        return status, await self.reader.readexactly(length) if length else b""

    async def _chunks(self) -> bytes:
        body = bytearray()
        while size := int((await self.reader.readline()).strip() or b"0", 16):
            body += await self.reader.readexactly(size)
            await self.reader.readline()
        await self.reader.readline()
        return bytes(body)

    def close(self) -> None:
        self.writer.close()


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by nearest rank; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def run(plan: dict[str, Any]) -> dict[str, Any]:
    """Drive ``plan``: ``url``, ``calls`` (rotated), ``connections``, and ``duration_s`` or
    ``total`` requests. Returns counts, rate and latency quantiles in milliseconds."""
    url = urlsplit(plan["url"])
    host, port = url.hostname or "127.0.0.1", url.port or 80
    raws = [encode(call_from(c), url.netloc) for c in plan["calls"]]
    counter = itertools.count()
    total = plan.get("total")
    stop_at = time.perf_counter() + float(plan.get("duration_s", 0) or 1e9)
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def worker() -> None:
        conn = await Connection.open(host, port)
        try:
            while time.perf_counter() < stop_at:
                index = next(counter)
                if total is not None and index >= total:
                    return
                started = time.perf_counter()
                status, _ = await conn.exchange(raws[index % len(raws)])
                latencies.append(time.perf_counter() - started)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(int(plan["connections"]))))
    elapsed = time.perf_counter() - started
    return summary(latencies, elapsed, statuses)


def call_from(plan_call: dict[str, Any]) -> Call:
    return Call(
        plan_call["method"],
        plan_call["path"],
        plan_call.get("headers", {}),
        plan_call.get("body", "").encode(),
    )


def summary(latencies: list[float], elapsed: float, statuses: dict[int, int]) -> dict[str, Any]:
    errors = sum(n for status, n in statuses.items() if status >= 400)
    return {
        "requests": len(latencies),
        "duration_s": elapsed,
        "rps": len(latencies) / elapsed if elapsed else 0.0,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "errors": errors,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


def main() -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # the standard loop is slower but gives the same answers
        pass
    plan = json.loads(sys.stdin.read())
    print(json.dumps(asyncio.run(run(plan))))


if __name__ == "__main__":
    main()
