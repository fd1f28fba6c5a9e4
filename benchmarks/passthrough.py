"""Benchmark 2: synchronous passthrough, imagegate and LiteLLM's proxy before one fast upstream.

Both proxies run 2 server processes in front of ``benchmarks.upstream`` and receive the same
synchronous ``POST /v1/images/generations``. Requests/s is measured with many connections
(the best of three rounds); added latency with one connection (no queueing), as the
difference between the proxy's quantile and the same quantile measured directly against the
upstream in the same run. Every server is up for the whole benchmark and the rounds take
turns (one round of each, then the next), as the polling benchmark alternates with its
baseline: the machine's speed drifts within minutes, and measuring one proxy's rounds after
the other's handed that drift to the ratio.

imagegate does more than forward: it stores the task, checks and stores the image, and
serves it from its own storage. LiteLLM, pinned at ``litellm[proxy]==1.106.2``, runs from its
own virtual environment (``benchmarks/.venv-litellm``, made on first use) with the local model
cost map and no telemetry. The quick setting skips LiteLLM and compares with the upstream.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.harness import AUTH, KEY, Proc, Setup, free_port, running, setup
from benchmarks.load import REPO, LoadResult, run_load
from benchmarks.report import Options, Row, fmt_ms, procs

LITELLM = "litellm[proxy]==1.106.2"
LITELLM_VENV = REPO / "benchmarks" / ".venv-litellm"
CONNECTIONS = 32
# LiteLLM's rate moved between 132 and 271 req/s from one run to the next on the same
# machine; the best of a few rounds, for every proxy alike, is the fairer comparison.
BUSY_ROUNDS = 3
MODEL = "bench-image"
BODY = json.dumps({"model": MODEL, "prompt": "a benchmark square", "size": "64x64"})


def upstream(log_dir: Path, *args: str) -> Proc:
    port = free_port()
    cmd = [sys.executable, "-m", "benchmarks.upstream", "--port", str(port), *args]
    return Proc("upstream", cmd, {}, log_dir, port)


def gateway_config(path: Path, upstream_url: str) -> Path:
    """A TOML catalogue with one model served by the fake upstream."""
    path.write_text(
        f'default_model = "{MODEL}"\n\n'
        "[providers.upstream]\n"
        'kind = "openai_compatible"\n'
        f'base_url = "{upstream_url}"\n'
        "allow_private_urls = true\n"
        "max_concurrency = 10000\n\n"
        f'[models."{MODEL}"]\n'
        'routes = [{ provider = "upstream", upstream_model = "gpt-image-1" }]\n'
    )
    return path


def gateway(s: Setup, upstream_url: str, processes: int) -> Proc:
    config = gateway_config(s.data_dir / "imagegate.toml", upstream_url)
    return s.serve("imagegate", "--workers", str(processes), "--config", str(config))


def ensure_litellm() -> Path:
    """The ``litellm`` command of the pinned version, installed into its own venv if needed."""
    command = LITELLM_VENV / "bin" / "litellm"
    if not command.exists():
        subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
        pip = [str(LITELLM_VENV / "bin" / "pip"), "install", "-q", LITELLM]
        subprocess.run(pip, check=True)
    return command


def litellm(log_dir: Path, upstream_url: str, processes: int) -> Proc:
    config = log_dir / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        f"  - model_name: {MODEL}\n"
        "    litellm_params:\n"
        "      model: openai/gpt-image-1\n"
        f"      api_base: {upstream_url}/v1\n"
        "      api_key: sk-upstream-not-checked\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
        "general_settings:\n"
        f"  master_key: {KEY}\n"
    )
    port = free_port()
    cmd = [str(ensure_litellm()), "--config", str(config), "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--num_workers", str(processes)]
    env = {
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_TELEMETRY": "False",
        "LITELLM_LOG": "ERROR",
    }
    return Proc("litellm", cmd, env, log_dir, port)


def _plan(url: str, connections: int, duration: float) -> dict[str, Any]:
    headers = {**AUTH, "Content-Type": "application/json"}
    call = {"method": "POST", "path": "/v1/images/generations", "headers": headers, "body": BODY}
    return {"url": url, "connections": connections, "duration_s": duration, "calls": [call]}


Pair = tuple[LoadResult, LoadResult]


def measure(opts: Options, urls: dict[str, str]) -> tuple[dict[str, Pair], dict[str, list[float]]]:
    """For each named server: (throughput with many connections, the best of ``BUSY_ROUNDS``;
    latency with one), and every round's requests/s. Round ``r`` measures every server once,
    starting ``r`` places further along, so none always goes first."""
    duration = 2.0 if opts.quick else 8.0
    for url in urls.values():
        run_load(_plan(url, CONNECTIONS, 1.0), opts.wrk)  # warm pools and caches
    names = list(urls)
    busy: dict[str, list[LoadResult]] = {name: [] for name in names}
    for turn in range(BUSY_ROUNDS):
        shift = turn % len(names)
        for name in names[shift:] + names[:shift]:
            busy[name].append(run_load(_plan(urls[name], CONNECTIONS, duration), opts.wrk))
    calm = {name: run_load(_plan(url, 1, duration), opts.wrk) for name, url in urls.items()}
    for result in [*calm.values(), *(r for rounds in busy.values() for r in rounds)]:
        if result.errors:
            raise RuntimeError(f"{result.errors} failed requests during the passthrough benchmark")
    best = {name: (max(busy[name], key=lambda r: r.rps), calm[name]) for name in names}
    return best, {name: [r.rps for r in rounds] for name, rounds in busy.items()}


def run(opts: Options) -> list[Row]:
    log_dir = opts.root / "passthrough-logs"
    with contextlib.ExitStack() as stack:
        up = upstream(log_dir)
        urls = {"direct": _started(stack, up, "/health")}
        for postgres_url in opts.backends():
            backend = "postgres" if postgres_url else "sqlite"
            s = stack.enter_context(setup(opts.root, f"passthrough-{backend}", postgres_url))
            urls[backend] = _started(stack, gateway(s, up.url, opts.processes), "/healthz")
        if not opts.quick:
            proxy = litellm(log_dir, up.url, opts.processes)
            urls["litellm"] = _started(stack, proxy, "/health/liveliness", 300)
        results, rounds = measure(opts, urls)
    direct, theirs = results.pop("direct"), results.pop("litellm", None)
    return [
        _row(direct, pair, theirs, opts.processes, backend, rounds)
        for backend, pair in results.items()
    ]


def _started(stack: contextlib.ExitStack, proc: Proc, ready: str, timeout: float = 120.0) -> str:
    """Start ``proc``, stopped when ``stack`` closes (even if it never became ready); its URL."""
    stack.enter_context(running(proc))
    proc.start(ready, timeout)
    return proc.url


def _added(result: LoadResult, direct: LoadResult) -> tuple[float, float]:
    return result.p50_ms - direct.p50_ms, result.p99_ms - direct.p99_ms


def _describe(name: str, pair: Pair, direct: LoadResult) -> str:
    p50, p99 = _added(pair[1], direct)
    return f"{name} {pair[0].rps:,.0f} req/s, added p50 {fmt_ms(p50)}, p99 {fmt_ms(p99)}"


def _row(
    direct: Pair,
    ours: Pair,
    theirs: Pair | None,
    processes: int,
    backend: str,
    rounds: dict[str, list[float]],
) -> Row:
    figures: dict[str, object] = {
        name: {"busy": pair[0].__dict__, "calm": pair[1].__dict__}
        for name, pair in (("direct", direct), ("imagegate", ours), ("litellm", theirs))
        if pair is not None
    }
    figures["rounds_rps"] = {
        name: rounds[key]
        for name, key in (("direct", "direct"), ("imagegate", backend), ("litellm", "litellm"))
        if key in rounds
    }
    setup_text = f"imagegate on {backend}, {procs(processes)} each, {CONNECTIONS} conns / 1 conn"
    target = ">= 10x req/s, <= 1/5 added p50"
    if theirs is None:
        return Row(
            benchmark="2 sync passthrough",
            setup=setup_text + ", LiteLLM skipped",
            result=_describe("imagegate", ours, direct[1]),
            baseline=f"upstream direct {direct[0].rps:,.0f} req/s",
            ratio=ours[0].rps / direct[0].rps,
            target=target,
            met=None,
            figures=figures,
        )
    ratio = ours[0].rps / theirs[0].rps
    added_ratio = _added(ours[1], direct[1])[0] / _added(theirs[1], direct[1])[0]
    return Row(
        benchmark="2 sync passthrough",
        setup=setup_text,
        result=_describe("imagegate", ours, direct[1]),
        baseline=_describe("LiteLLM", theirs, direct[1]),
        ratio=ratio,
        target=target,
        met=ratio >= 10 and added_ratio <= 0.2,
        figures={**figures, "added_p50_ratio": added_ratio},
    )
