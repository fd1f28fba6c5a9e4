"""Benchmark 5: in-flight scale, one worker holding 10,000 tasks of a 30 s provider at once.

The backlog is created first with no worker running (so the figure is not the create route's
speed), then one ``imagegate worker`` process starts; the drain time runs from its start to
the moment a poll of the task table first finds every task completed (committed, so what a
client could see; polled every 50 ms). The baselines are the provider's latency (a perfect
worker drains in exactly that time) and the same worker's peak RSS when idle.
"""

from __future__ import annotations

import time

from benchmarks.harness import create_plan, peak_rss_mb, setup, wait_completed
from benchmarks.load import run_driver
from benchmarks.report import Options, Row

TARGET_DRAIN_S = 33.0
TARGET_RSS_MB = 512.0


def run(opts: Options) -> list[Row]:
    url = opts.postgres_url if opts.postgres_url and not opts.quick else None
    total, latency = (100, 1.0) if opts.quick else (10_000, 30.0)
    return [measure(opts, url, total, latency)]


def measure(opts: Options, postgres_url: str | None, total: int, latency: float) -> Row:
    env = {
        "IMAGEGATE_LOCAL_LATENCY": f"{latency:g}",
        "IMAGEGATE_WORKER_CONCURRENCY": str(total),
    }
    with setup(opts.root, f"inflight-{'pg' if postgres_url else 'sqlite'}", postgres_url) as s:
        idle = s.worker(**env).start(ready_path=None)
        time.sleep(1.0 if opts.quick else 3.0)
        idle_rss = peak_rss_mb(idle.pid)
        idle.stop()
        api = s.serve("api", "--workers", str(opts.processes), "--no-worker", **env).start()
        try:
            created = run_driver(create_plan(api.url, total))
        finally:
            api.stop()
        if created.errors:
            raise RuntimeError(f"{created.errors} creates failed")
        worker = s.worker(**env)
        started = time.time()
        worker.start(ready_path=None)
        peak = idle_rss
        try:
            done = wait_completed(s.resolved_url, total, timeout=latency * 4 + 60)
            peak = peak_rss_mb(worker.pid)
        finally:
            worker.stop()
        backend = s.backend
    drain = done.seen_at - started
    if done.completed != total:
        raise RuntimeError(f"in-flight run incomplete: {done.completed}/{total} completed")
    return Row(
        benchmark="5 in-flight scale",
        setup=f"{backend}, 1 worker process, {total:,} tasks x {latency:g} s",
        result=f"drained in {drain:.1f} s, peak RSS {peak:.0f} MiB",
        baseline=f"latency {latency:g} s, idle RSS {idle_rss:.0f} MiB",
        ratio=drain / latency,
        target=f"<= {TARGET_DRAIN_S:g} s, <= {TARGET_RSS_MB:g} MiB",
        met=(drain <= TARGET_DRAIN_S and peak <= TARGET_RSS_MB) if not opts.quick else None,
        figures={
            "drain_s": drain,
            "last_asked_s": done.last_updated - started,  # the last completion's updated_at
            "peak_rss_mb": peak,
            "idle_rss_mb": idle_rss,
        },
    )
