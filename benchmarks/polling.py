"""Benchmark 1: status polling, ``GET /v1/tasks/{id}`` against a trivial route on the same stack.

Half the polled tasks are completed (signed URLs rendered, ETag computed), half are pending;
every request carries a valid key. The server runs 2 processes (as on 2 cores) without a
worker, so nothing but the polls and the baseline compete for the CPU.
"""

from __future__ import annotations

import sys
from typing import Any

from benchmarks.harness import AUTH, Proc, create_tasks, free_port, running, setup, wait_completed
from benchmarks.load import LoadResult, run_load
from benchmarks.report import Options, Row, fmt_ms, procs

CONNECTIONS = 64
TARGET_RATIO = 0.6
TARGET_RPS = 5000.0


def run(opts: Options) -> list[Row]:
    return [_run_backend(opts, url) for url in opts.backends()]


def _best(results: list[LoadResult]) -> LoadResult:
    return max(results, key=lambda r: r.rps)


def _run_backend(opts: Options, postgres_url: str | None) -> Row:
    count = 20 if opts.quick else 250
    with setup(opts.root, f"polling-{'pg' if postgres_url else 'sqlite'}", postgres_url) as s:
        seeder = s.serve("seed").start()
        with running(seeder):
            done_ids = create_tasks(seeder.url, count)
            wait_completed(s.resolved_url, count, timeout=120)
        port = free_port()
        cmd = [sys.executable, "-m", "benchmarks.stack", "--port", str(port)]
        cmd += ["--workers", str(opts.processes)]
        stack = Proc("stack", cmd, s.env(IMAGEGATE_RUN_WORKER="0"), s.data_dir / "logs", port)
        with running(stack.start()):
            pending_ids = create_tasks(stack.url, count)
            ids = [i for pair in zip(done_ids, pending_ids, strict=True) for i in pair]
            polls, trivial = _measure(opts, stack.url, ids)
        backend = s.backend
    poll, base = _best(polls), _best(trivial)
    ratio = poll.rps / base.rps
    return Row(
        benchmark="1 status polling",
        setup=f"{backend}, {procs(opts.processes)}, {CONNECTIONS} conns, {poll.tool}",
        result=f"{poll.rps:,.0f} req/s, p50 {fmt_ms(poll.p50_ms)}, p99 {fmt_ms(poll.p99_ms)}",
        baseline=f"trivial {base.rps:,.0f} req/s, p50 {fmt_ms(base.p50_ms)}",
        ratio=ratio,
        target=f">= {TARGET_RATIO} and >= {TARGET_RPS:,.0f}/s",
        met=None if opts.quick else ratio >= TARGET_RATIO and poll.rps >= TARGET_RPS,
        figures={"polls": [r.__dict__ for r in polls], "trivial": [r.__dict__ for r in trivial]},
    )


def _measure(opts: Options, url: str, ids: list[str]) -> tuple[list[LoadResult], list[LoadResult]]:
    """Alternate poll and baseline runs so drifting machine load hits both alike."""
    duration, rounds = (1.0, 1) if opts.quick else (5.0, 3)
    polls_plan: dict[str, Any] = {
        "url": url,
        "connections": CONNECTIONS,
        "duration_s": duration,
        "calls": [{"method": "GET", "path": f"/v1/tasks/{i}", "headers": AUTH} for i in ids],
    }
    trivial_plan = {**polls_plan, "calls": [{"method": "GET", "path": "/bench/trivial"}]}
    if not opts.quick:
        run_load({**polls_plan, "duration_s": 2.0}, opts.wrk)  # warm caches and pools
    polls, trivial = [], []
    for _ in range(rounds):
        trivial.append(run_load(trivial_plan, opts.wrk))
        polls.append(run_load(polls_plan, opts.wrk))
    for result in polls + trivial:
        if result.errors:
            raise RuntimeError(f"{result.errors} failed requests during the polling benchmark")
    return polls, trivial
