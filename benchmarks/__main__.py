"""``python -m benchmarks [--quick] [--only NAME ...]``: run the benchmarks, print one table.

``--quick`` is the smallest setting (seconds, SQLite only, no LiteLLM): CI runs it to keep the
benchmarks working. Its figures mean little; the full run's are in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import compileall
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks import inflight, passthrough, polling, throughput, visibility
from benchmarks.load import REPO, ensure_wrk
from benchmarks.report import Options, Row, save, table

# Steps of the loop that says how fast the machine runs Python (``python_loop_s``).
LOOP_STEPS = 10_000_000

BENCHMARKS: dict[str, Callable[[Options], list[Row]]] = {
    "polling": polling.run,
    "passthrough": passthrough.run,
    "throughput": throughput.run,
    "visibility": visibility.run,
    "inflight": inflight.run,
}


def python_loop_s() -> float:
    """Seconds of a bare Python loop: the machine's speed at that moment, so that the absolute
    figures of runs on different machines or days can be told apart (the ratios need no
    such help)."""
    started = time.perf_counter()
    for _ in range(LOOP_STEPS):
        pass
    return round(time.perf_counter() - started, 3)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smallest setting, for CI")
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), help="run only these")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("IMAGEGATE_TEST_POSTGRES_URL"),
        help="admin URL of a PostgreSQL server (a fresh database is made per benchmark)",
    )
    parser.add_argument(
        "--json", type=Path, default=REPO / "benchmarks" / "results.json", help="where to save"
    )
    args = parser.parse_args()
    postgres = args.postgres_url
    if postgres and postgres.startswith("postgresql://"):
        postgres = postgres.replace("postgresql://", "postgresql+asyncpg://", 1)
    # Servers start from byte-compiled modules, as from an installed wheel: where the
    # environment sets PYTHONDONTWRITEBYTECODE, each process would compile the source again
    # (about 0.1 s more of every start, which the in-flight benchmark's drain includes).
    compileall.compile_dir(REPO / "src", quiet=1)
    rows: list[Row] = []
    loop_before = python_loop_s()
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="imagegate-bench-") as root:
        wrk = ensure_wrk(install=not args.quick)
        opts = Options(quick=args.quick, root=Path(root), postgres_url=postgres, wrk=wrk)
        for name in args.only or list(BENCHMARKS):
            rows += BENCHMARKS[name](opts)
    loops = [loop_before, python_loop_s()]  # before and after the run
    meta = {
        "quick": args.quick,
        "cores": opts.cores,
        "python": platform.python_version(),
        "load_generator": "wrk" if opts.wrk else "benchmarks.driver",
        "seconds": round(time.time() - started, 1),
        "python_loop_s": loops,
    }
    save(rows, args.json, meta)
    print(
        f"cores: {opts.cores}, load generator: {meta['load_generator']}, {meta['seconds']} s,"
        f" a {LOOP_STEPS:,}-step Python loop {loops[0]:.2f}/{loops[1]:.2f} s (before/after)"
    )
    print(table(rows))


if __name__ == "__main__":
    main()
