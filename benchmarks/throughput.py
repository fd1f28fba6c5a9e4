"""Benchmark 3: asynchronous throughput, tasks/s from create to completed.

The built-in provider with no latency draws 64x64 images, so the figure is the gateway's own
cost per task: create (insert), claim, render, rehost, complete. The baseline is the rate at
which the same server accepts tasks when no worker runs: the ceiling the create route sets,
so the ratio says how much of it the whole pipeline keeps.
"""

from __future__ import annotations

from benchmarks.harness import cpu_seconds, create_plan, setup, wait_completed
from benchmarks.load import LoadResult, run_driver
from benchmarks.report import Options, Row

TARGET_PG = 1000.0


def run(opts: Options) -> list[Row]:
    processes = [1] if opts.quick else [1, 2]
    return [_run_one(opts, url, procs) for url in opts.backends() for procs in processes]


def _run_one(opts: Options, postgres_url: str | None, procs: int) -> Row:
    total = 200 if opts.quick else 4000
    name = f"throughput-{'pg' if postgres_url else 'sqlite'}-{procs}"
    with setup(opts.root, name, postgres_url) as s:
        server = s.serve("serve", "--workers", str(procs), IMAGEGATE_LOCAL_LATENCY="0").start()
        try:
            cpu_before = cpu_seconds(server.pid)
            created = run_driver(create_plan(server.url, total))
            done = wait_completed(s.resolved_url, total, timeout=300)
            cpu = cpu_seconds(server.pid) - cpu_before
        finally:
            server.stop()
        api_only = s.serve("api", "--workers", str(procs), "--no-worker").start()
        try:
            ceiling = run_driver(create_plan(api_only.url, total))
        finally:
            api_only.stop()
        backend = s.backend
    _check(created, ceiling, done.completed, total)
    rate = done.completed / (done.last_updated - done.first_created)
    met = rate >= TARGET_PG if backend == "postgres" and procs == 2 else None
    return Row(
        benchmark="3 async throughput",
        setup=f"{backend}, {procs} x (API + worker) process, {total} tasks",
        result=f"{rate:,.0f} tasks/s created->completed",
        baseline=f"create-only {ceiling.rps:,.0f} tasks/s",
        ratio=rate / ceiling.rps,
        target=f">= {TARGET_PG:,.0f}/s (postgres, 2 procs)",
        met=met,
        figures={
            "tasks_per_s": rate,
            # Timed to when the driver, done creating, first saw them all committed: an upper
            # bound on the time, that includes the driver's exit.
            "tasks_per_s_seen": done.completed / (done.seen_at - done.first_created),
            "create_during_run_rps": created.rps,
            # The server processes' CPU (the database's not included), less noisy than rates.
            "gateway_cpu_us_per_task": cpu / total * 1e6,
            "ceiling": ceiling.rps,
        },
    )


def _check(created: LoadResult, ceiling: LoadResult, completed: int, total: int) -> None:
    if created.errors or ceiling.errors or completed != total:
        raise RuntimeError(
            f"throughput run incomplete: {created.errors}+{ceiling.errors} failed creates, "
            f"{completed}/{total} completed"
        )
