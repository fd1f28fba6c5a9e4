"""PostgreSQL LISTEN/NOTIFY: wake idle workers and synchronous waiters in other processes,
and tell the store which remembered live tasks changed.

The store sends ``pg_notify`` in the transaction that creates, changes or finishes a task, so
a listener hears of it the moment it commits. One dedicated connection per process listens on
the three channels and turns each notification into a ``Signals`` call or a ``LiveTasks``
one. For the signals notifications are only hints: a listener that was disconnected misses
some, so on every (re)connect it raises the new-work signal and the worker looks at the store
itself. The store's memory of live tasks is trusted only while the listener is connected.

A process that serves no API (``imagegate worker``) listens for new tasks only: nobody there
waits for a finish or reads a status, and a worker finishing 10,000 tasks at once would
otherwise take 10,000 notices of its own finishes on its busy loop. Its store then never
trusts what it remembers of live tasks: every read goes to the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from imagegate.engine.signals import Signals
from imagegate.store.channels import CHANGED_CHANNEL, FINISHED_CHANNEL, NEW_TASK_CHANNEL
from imagegate.store.engine import asyncpg_dsn
from imagegate.store.live import LiveTasks

log = logging.getLogger("imagegate.store")

CONNECT_TIMEOUT_S = 5.0


class Listener:
    """Keeps one LISTEN connection open, reconnecting after the database comes back."""

    def __init__(
        self,
        url: str,
        signals: Signals,
        live: LiveTasks,
        *,
        reconnect_s: float = 1.0,
        check_s: float = 5.0,
        serves_api: bool = True,
    ) -> None:
        self.dsn = asyncpg_dsn(url)
        self.serves_api = serves_api
        self.signals = signals
        self.live = live
        self.reconnect_s = reconnect_s
        self.check_s = check_s
        self.connected = asyncio.Event()

    async def run(self) -> None:
        """Listen until cancelled; a lost connection is retried every ``reconnect_s``."""
        while True:
            try:
                await self._listen_once()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("notification listener disconnected: %s", exc)
            self.connected.clear()
            await asyncio.sleep(self.reconnect_s)

    async def _listen_once(self) -> None:
        conn = await asyncpg.connect(self.dsn, timeout=CONNECT_TIMEOUT_S)
        lost = asyncio.Event()

        def on_lost(_conn: object) -> None:
            self.live.distrust()
            lost.set()

        try:
            conn.add_termination_listener(on_lost)
            await conn.add_listener(NEW_TASK_CHANNEL, self._on_new_task)
            if self.serves_api:
                await conn.add_listener(FINISHED_CHANNEL, self._on_finished)
                await conn.add_listener(CHANGED_CHANNEL, self._on_changed)
                self.live.trust()
            self.connected.set()
            # Anything created while we were away was not announced to us: look now.
            self.signals.work_available()
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.check_s):
                        await lost.wait()
                if not lost.is_set():
                    # A server that vanished without closing the socket is found here.
                    await conn.execute("SELECT 1", timeout=CONNECT_TIMEOUT_S)
        finally:
            self.live.distrust()
            conn.terminate()

    def _on_new_task(self, _conn: object, _pid: int, _channel: str, _payload: str) -> None:
        self.signals.work_available()

    def _on_finished(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self.live.changed(payload)
        self.signals.finished(payload)

    def _on_changed(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self.live.changed(payload)
