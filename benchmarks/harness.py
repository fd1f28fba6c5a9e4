"""What every benchmark needs: processes on loopback ports, a database, and the task table.

Servers are the real commands (``imagegate serve``, ``imagegate worker``) started as
subprocesses with a log file each; a benchmark never measures an in-process shortcut.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from tests.support.gateway import free_port as free_port  # re-exported for the benchmarks
from tests.support.postgres import fresh_database

from benchmarks.load import REPO
from imagegate.store.engine import make_engine
from imagegate.store.schema import tasks

KEY = "sk-bench-0123456789abcdefghijklmnopqrstuvwxyz"
AUTH = {"Authorization": f"Bearer {KEY}"}


class Proc:
    """A background process with a log file, ready once ``ready_path`` answers 200."""

    def __init__(
        self, name: str, cmd: list[str], env: dict[str, str], log_dir: Path, port: int
    ) -> None:
        self.name = name
        self.cmd = cmd
        self.env = {**os.environ, **env}
        self.log_path = log_dir / f"{name}-{port}.log"
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, ready_path: str | None = "/healthz", timeout: float = 120.0) -> Proc:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.cmd, env=self.env, stdout=log, stderr=log, cwd=REPO
            )
        if ready_path is not None:
            self._wait_ready(ready_path, timeout)
        return self

    def _wait_ready(self, path: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + path, timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not become ready:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM (servers drain), then SIGKILL if still running after ``timeout``."""
        if self.process is None:
            return
        self.process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout)
        self.process.kill()  # does nothing once the process has been reaped
        self.process.wait()


@contextlib.contextmanager
def running(*procs: Proc) -> Iterator[None]:
    """Stop the given (already started) processes however the block ends."""
    try:
        yield
    finally:
        for proc in reversed(procs):
            proc.stop()


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set size (``VmHWM``), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process and of its live descendants (uvicorn's workers)."""
    total, pending = 0.0, [pid]
    while pending:
        proc = Path(f"/proc/{pending.pop()}")
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            for thread in (proc / "task").iterdir():
                pending += [int(c) for c in (thread / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue  # it exited meanwhile
    return total


@dataclass(frozen=True)
class Setup:
    """Where one benchmark's gateway keeps its state."""

    data_dir: Path
    database_url: str | None  # None: SQLite in data_dir

    @property
    def backend(self) -> str:
        return "sqlite" if self.database_url is None else "postgres"

    @property
    def resolved_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'imagegate.db'}"

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            "IMAGEGATE_DATA_DIR": str(self.data_dir),
            "IMAGEGATE_API_KEYS": KEY,
            "IMAGEGATE_SECRET_KEY": "benchmark-signing-secret",
            "IMAGEGATE_LOG_LEVEL": "warning",
            **extra,
        }
        if self.database_url:
            env["IMAGEGATE_DATABASE_URL"] = self.database_url
        return env

    def serve(self, name: str, *args: str, **env: str) -> Proc:
        port = free_port()
        cmd = [sys.executable, "-m", "imagegate", "serve", "--port", str(port), *args]
        return Proc(name, cmd, self.env(**env), self.data_dir / "logs", port)

    def worker(self, **env: str) -> Proc:
        cmd = [sys.executable, "-m", "imagegate", "worker"]
        return Proc("worker", cmd, self.env(**env), self.data_dir / "logs", 0)


@contextlib.contextmanager
def setup(root: Path, name: str, postgres_url: str | None) -> Iterator[Setup]:
    """A fresh data directory and, for PostgreSQL, a fresh database dropped afterwards."""
    data_dir = root / name
    data_dir.mkdir(parents=True, exist_ok=True)
    if postgres_url is None:
        yield Setup(data_dir, None)
        return
    with fresh_database(postgres_url) as url:
        yield Setup(data_dir, url)


@dataclass(frozen=True)
class Completion:
    completed: int
    failed: int
    first_created: float
    last_updated: float  # the worker's clock when it asked for the last completion
    seen_at: float  # when a poll of the table first found them all finished (committed)


async def _wait(url: str, count: int, within_s: float, interval: float) -> Completion:
    engine = make_engine(url)
    done = tasks.c.status == "completed"
    query = sa.select(
        sa.func.count().filter(done),
        sa.func.count().filter(tasks.c.status == "failed"),
        sa.func.min(tasks.c.created_at),
        sa.func.max(tasks.c.updated_at).filter(done),
    )
    deadline = time.monotonic() + within_s
    try:
        async with engine.connect() as conn:
            while True:
                row = (await conn.execute(query)).one()
                await conn.rollback()  # the next poll reads a fresh snapshot
                seen_at = time.time()
                if row[0] + row[1] >= count or time.monotonic() > deadline:
                    break
                await asyncio.sleep(interval)
    finally:
        await engine.dispose()
    return Completion(int(row[0]), int(row[1]), float(row[2] or 0), float(row[3] or 0), seen_at)


def wait_completed(url: str, count: int, timeout: float, interval: float = 0.05) -> Completion:
    """Poll the task table on one connection until ``count`` tasks are terminal (or time runs
    out). A task's ``updated_at`` is taken before its completion is committed, and under a
    burst the commit can come a second later, so ``seen_at`` is the figure a client feels."""
    return asyncio.run(_wait(url, count, timeout, interval))


def create_tasks(base_url: str, count: int, *, prompt: str = "a benchmark square") -> list[str]:
    """Create ``count`` asynchronous 64x64 tasks one after another; their ids in order."""
    body = {"prompt": prompt, "size": "64x64", "async": True}
    with httpx.Client(base_url=base_url, headers=AUTH, timeout=60) as client:
        ids = []
        for _ in range(count):
            response = client.post("/v1/images/generations", json=body)
            response.raise_for_status()
            ids.append(str(response.json()["id"]))
    return ids


CREATE_BODY = json.dumps({"prompt": "a benchmark square", "size": "64x64", "async": True})


def create_plan(url: str, total: int, connections: int = 32) -> dict[str, Any]:
    """A driver plan creating ``total`` asynchronous 64x64 tasks as fast as it can."""
    headers = {**AUTH, "Content-Type": "application/json"}
    call = {"method": "POST", "path": "/v1/images/generations", "headers": headers}
    return {
        "url": url,
        "connections": connections,
        "total": total,
        "calls": [{**call, "body": CREATE_BODY}],
    }
