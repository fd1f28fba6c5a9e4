"""Fault-test helpers: ``imagegate worker`` processes beside a gateway, and a peek at its rows.

A worker shares its gateway's environment (data dir, database, settings), exactly as a
second machine of a fleet would share the configuration.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from imagegate.store.schema import tasks
from tests.support.gateway import Gateway


class WorkerProcess:
    """One ``imagegate worker`` process, killable with SIGKILL and restartable."""

    def __init__(self, gateway: Gateway, name: str, env: dict[str, str] | None = None) -> None:
        self.env = {**gateway.env, **(env or {})}
        self.log_path = gateway.data_dir / f"worker-{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> WorkerProcess:
        with open(self.log_path, "ab") as log:
            cmd = [sys.executable, "-m", "imagegate", "worker"]
            self.process = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=log)
        return self

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM, as an orchestrator stops a process; returns the exit status."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def database_url(gateway: Gateway) -> str:
    url = gateway.env.get("IMAGEGATE_DATABASE_URL")
    return url or f"sqlite+aiosqlite:///{(gateway.data_dir / 'imagegate.db').resolve()}"


def peek(gateway: Gateway, query: sa.Select[Any]) -> list[sa.Row[Any]]:
    """Run one read-only query on the gateway's database from the test process."""

    async def run() -> list[sa.Row[Any]]:
        engine = create_async_engine(database_url(gateway))
        try:
            async with engine.connect() as conn:
                return list((await conn.execute(query)).all())
        finally:
            await engine.dispose()

    return asyncio.run(run())


def held_by(gateway: Gateway, pid: int) -> int:
    """How many unfinished tasks a process holds a lease on (owner ids embed the pid)."""
    query = sa.select(sa.func.count()).where(
        tasks.c.lease_owner.like(f"%:{pid}:%"), tasks.c.status == "processing"
    )
    return int(peek(gateway, query)[0][0])


def wait_for(condition: Callable[[], bool], timeout: float, interval: float = 0.1) -> float:
    """Wait until ``condition()`` holds; returns the seconds it took."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)
    return time.monotonic() - start


def create_tasks(http: httpx.Client, count: int, **fields: Any) -> list[str]:
    ids = []
    for i in range(count):
        body = {"prompt": f"task {i}", "size": "64x64", "async": True, **fields}
        response = http.post("/v1/images/generations", json=body)
        assert response.status_code == 200, response.text
        ids.append(response.json()["id"])
    return ids


def statuses(gateway: Gateway, ids: list[str]) -> dict[str, str]:
    rows = peek(gateway, sa.select(tasks.c.id, tasks.c.status).where(tasks.c.id.in_(ids)))
    return {row[0]: row[1] for row in rows}
