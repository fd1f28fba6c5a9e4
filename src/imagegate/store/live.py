"""Live tasks remembered between polls, trusted while nothing can have changed them unseen.

A poll of a live task mostly finds it as it was, yet each such poll costs a read: on
PostgreSQL a round trip and a backend's turn on the CPU. So the store keeps the ``Task`` a
poll last read and answers the next polls with it until it learns the task may have changed.

SQLite tells whether any connection committed since the last look (``PRAGMA data_version``,
half the price of the read): the store then forgets everything (``trust`` again), so a poll
is exactly as stored, and cheaper only while nothing is being written.

PostgreSQL has no such counter, so changes are announced: every write that changes what a
poll shows (a claim, progress, a retry, a finish) sends a notice at commit, and the process's
listener (``store.notify``) hands it to ``changed``. There a remembered task is trusted only
while nothing can have been missed:

- while the listener is connected: ``trust`` after it listens, ``distrust`` the moment its
  connection is lost, and what was read before it (re)connected is dropped;
- if no notice came between sending the read and keeping its answer (``mark``): that answer
  may predate a change whose notice has already come and gone;
- for at most ``TTL_S``: a server that vanished without closing the listener's socket takes
  seconds to notice, and this bounds what a missed notice can cost.

So a poll may lag a change committed by another process by the notice's delivery (well under
a millisecond on one machine), and never by more than ``TTL_S``. A change made by this process
is forgotten at once, before its write returns.
"""

from __future__ import annotations

import time

from imagegate.engine.models import Task

TTL_S = 1.0
# Tasks remembered at most; past it the memory starts afresh.
SIZE = 4096


class LiveTasks:
    def __init__(self, ttl_s: float = TTL_S) -> None:
        self.ttl_s = ttl_s
        self._trusted = False
        # Bumped by every notice and by every change of trust: a read whose mark differs
        # from it when its answer comes is not kept.
        self._generation = 0
        self._tasks: dict[str, tuple[Task, float]] = {}

    @property
    def trusted(self) -> bool:
        return self._trusted

    def trust(self) -> None:
        """The listener listens: from now on every change is announced."""
        self._forget_all()
        self._trusted = True

    def distrust(self) -> None:
        """The listener lost its connection: notices may be missed until it is back."""
        self._trusted = False
        self._forget_all()

    def changed(self, task_id: str) -> None:
        self._generation += 1
        self._tasks.pop(task_id, None)

    def get(self, task_id: str) -> Task | None:
        """The task as last kept, if it can still be trusted."""
        kept = self._tasks.get(task_id)
        if kept is None:
            return None
        if time.monotonic() - kept[1] < self.ttl_s:
            return kept[0]
        del self._tasks[task_id]
        return None

    def mark(self) -> int:
        """Taken before a read is sent, and given back to ``keep`` with its answer."""
        return self._generation

    def keep(self, task: Task, mark: int) -> None:
        if not self._trusted or mark != self._generation or task.terminal:
            return  # a finished task is remembered by the service, forever
        if len(self._tasks) >= SIZE:
            self._tasks.clear()
        self._tasks[task.id] = (task, time.monotonic())

    def _forget_all(self) -> None:
        self._generation += 1
        self._tasks.clear()
