"""Benchmark 4: completion visibility, from the provider's answer to a GET showing completed.

The fake upstream (``benchmarks.upstream --record``) writes down the instant it sends each
result, keyed by the task id inside the ``Idempotency-Key`` imagegate sends. Pollers hammer
``GET /v1/tasks/{id}`` back to back, one connection each, and note when a response first
says ``completed``. The difference spans what the gateway does after the provider answered:
parse, check and store the image, commit the transition, then serve the read. It is an upper
bound: the completed state became visible at some point during that last poll.

The baseline is the poll's own round trip in the same run: the finest resolution any client
could observe. Like the other benchmarks, it measures a warm server: the first ``WARM_UP``
tasks are not counted: a process's first task is slower, once per start (on PostgreSQL,
one poller: 4.3-7.0 ms against 3-4 ms for the tasks after it).
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from benchmarks.driver import Call, Connection, encode, percentile
from benchmarks.harness import AUTH, CREATE_BODY, running, setup
from benchmarks.passthrough import gateway, upstream
from benchmarks.report import Options, Row, fmt_ms, procs

TARGET_P99_MS = 20.0
POLLERS = 4
UPSTREAM_DELAY_MS = 50
WARM_UP = 2 * POLLERS


def run(opts: Options) -> list[Row]:
    return [_run(opts, url) for url in opts.backends()]


def _run(opts: Options, postgres_url: str | None) -> Row:
    total = 20 if opts.quick else 400
    with setup(opts.root, f"visibility-{'pg' if postgres_url else 'sqlite'}", postgres_url) as s:
        record = s.data_dir / "upstream-returns.txt"
        up = upstream(s.data_dir / "logs", "--delay-ms", str(UPSTREAM_DELAY_MS))
        up.cmd += ["--record", str(record)]
        with running(up.start(ready_path="/health")):
            gw = gateway(s, up.url, opts.processes).start()
            with running(gw):
                asyncio.run(_poll_all(gw.port, WARM_UP))  # not counted (see above)
                seen, rtts = asyncio.run(_poll_all(gw.port, total))
        returned = _returns(record)
        backend = s.backend
    delays = [(seen[t] - returned[t]) * 1000 for t in seen if t in returned]
    if len(delays) != total:
        raise RuntimeError(f"visibility: matched {len(delays)} of {total} tasks")
    p50, p99 = percentile(delays, 0.5), percentile(delays, 0.99)
    rtt50, rtt99 = percentile(rtts, 0.5) * 1000, percentile(rtts, 0.99) * 1000
    return Row(
        benchmark="4 completion visibility",
        setup=f"{backend}, {procs(opts.processes)}, {POLLERS} pollers, {total} tasks",
        result=f"p50 {fmt_ms(p50)}, p99 {fmt_ms(p99)}",
        baseline=f"poll round trip p50 {fmt_ms(rtt50)}, p99 {fmt_ms(rtt99)}",
        ratio=p99 / rtt99,
        target=f"p99 <= {TARGET_P99_MS:g} ms",
        met=None if opts.quick else p99 <= TARGET_P99_MS,
        figures={"p50_ms": p50, "p99_ms": p99, "rtt_p50_ms": rtt50, "rtt_p99_ms": rtt99},
    )


def _returns(record: Path) -> dict[str, float]:
    """Task id -> instant the upstream sent its result (the key is ``<task>-<route>-<i>``)."""
    returns = {}
    for line in record.read_text().splitlines():
        key, _, instant = line.partition(" ")
        returns[key.split("-", 1)[0]] = float(instant)
    return returns


async def _poll_all(port: int, total: int) -> tuple[dict[str, float], list[float]]:
    seen: dict[str, float] = {}
    rtts: list[float] = []
    queue = list(range(total))

    async def poller() -> None:
        conn = await Connection.open("127.0.0.1", port)
        try:
            while queue:
                queue.pop()
                task_id, instant = await _follow_one(conn, port, rtts)
                seen[task_id] = instant
        finally:
            conn.close()

    await asyncio.gather(*(poller() for _ in range(POLLERS)))
    return seen, rtts


async def _follow_one(conn: Connection, port: int, rtts: list[float]) -> tuple[str, float]:
    """Create one task, then poll it back to back until it is completed."""
    host = f"127.0.0.1:{port}"
    headers = {**AUTH, "Content-Type": "application/json"}
    create = Call("POST", "/v1/images/generations", headers, CREATE_BODY.encode())
    status, body = await conn.exchange(encode(create, host))
    if status != 200:
        raise RuntimeError(f"create answered {status}: {body[:200]!r}")
    task_id = json.loads(body)["id"]
    poll = encode(Call("GET", f"/v1/tasks/{task_id}", AUTH), host)
    while True:
        sent = time.perf_counter()
        status, body = await conn.exchange(poll)
        received = time.time()
        rtts.append(time.perf_counter() - sent)
        state = json.loads(body).get("status")
        if state == "completed":
            return task_id, received
        if status != 200 or state == "failed":
            raise RuntimeError(f"task {task_id} answered {status}: {body[:200]!r}")
