"""Run a load plan with wrk (C, cheap per request) when present, else with ``benchmarks.driver``.

On a 2-core machine the load generator competes with the server for CPU, so the cheaper it
is per request the more honest the server's figure. wrk comes from Debian's ``wrk`` package;
``ensure_wrk`` installs it for a full run as root; otherwise the driver stands in.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class LoadResult:
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    tool: str

    @classmethod
    def from_json(cls, data: dict[str, Any], tool: str) -> LoadResult:
        return cls(
            requests=int(data["requests"]),
            rps=float(data["rps"]),
            p50_ms=float(data["p50_ms"]),
            p99_ms=float(data["p99_ms"]),
            errors=int(data["errors"]),
            tool=tool,
        )


def ensure_wrk(*, install: bool) -> str | None:
    """Path of wrk; None means: use the driver. With ``install``, a root user without wrk gets
    Debian's package (the package lists are refreshed only when the first attempt fails)."""
    if os.environ.get("IMAGEGATE_BENCH_NO_WRK"):
        return None
    if install and shutil.which("wrk") is None and os.geteuid() == 0 and shutil.which("apt-get"):
        get = ["apt-get", "install", "-y", "-q", "wrk"]
        if _quiet(get) != 0:
            _quiet(["apt-get", "update", "-q"])
            _quiet(get)
    return shutil.which("wrk")


def _quiet(cmd: list[str]) -> int:
    done = subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return done.returncode


def run_driver(plan: dict[str, Any]) -> LoadResult:
    """Run ``plan`` in a separate Python process (``benchmarks.driver``)."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.driver"],
        input=json.dumps(plan).encode(),
        capture_output=True,
        check=True,
        cwd=REPO,
        timeout=float(plan.get("duration_s") or 0) + 600,
    )
    return LoadResult.from_json(json.loads(done.stdout), "driver")


def run_load(plan: dict[str, Any], wrk: str | None) -> LoadResult:
    """Run a duration plan with wrk when available (one thread), else with the driver."""
    if wrk is None or plan.get("total") is not None:
        return run_driver(plan)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_lua(plan["calls"]))
    try:
        done = subprocess.run(
            [
                wrk,
                "-t1",
                f"-c{plan['connections']}",
                f"-d{max(1, round(plan['duration_s']))}s",
                "--timeout",
                "30s",
                "-s",
                script.name,
                plan["url"],
            ],
            capture_output=True,
            check=True,
            timeout=plan["duration_s"] + 60,
        )
    finally:
        os.unlink(script.name)
    line = done.stdout.decode().strip().splitlines()[-1]
    return LoadResult.from_json(json.loads(line), "wrk")


def _lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid Lua string literal here


def _lua(calls: list[dict[str, Any]]) -> str:
    """A wrk script that rotates through ``calls`` and prints a JSON summary."""
    formatted = []
    for call in calls:
        headers = ", ".join(
            f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in call.get("headers", {}).items()
        )
        body = _lua_string(call["body"]) if call.get("body") else "nil"
        formatted.append(
            f"wrk.format({_lua_string(call['method'])}, {_lua_string(call['path'])}, "
            f"{{{headers}}}, {body})"
        )
    return (
        "local calls = {}\n"
        "local i = 0\n"
        "init = function(args)\n"
        + "".join(f"  calls[{n + 1}] = {f}\n" for n, f in enumerate(formatted))
        + "end\n"
        "request = function()\n"
        "  i = i + 1\n"
        "  return calls[(i % #calls) + 1]\n"
        "end\n"
        "done = function(summary, latency, requests)\n"
        "  local e = summary.errors\n"
        "  local secs = summary.duration / 1e6\n"
        '  io.write(string.format(\'{"requests": %d, "rps": %f, "p50_ms": %f, '
        '"p99_ms": %f, "errors": %d}\\n\', summary.requests, summary.requests / secs, '
        "latency:percentile(50) / 1000, latency:percentile(99) / 1000, "
        "e.connect + e.read + e.write + e.status + e.timeout))\n"
        "end\n"
    )
