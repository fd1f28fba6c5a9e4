"""Group commit: single-row writes issued at the same time share one transaction.

A worker finishing many tasks at once used to open one transaction per step, each waiting for
its own commit (an ``fsync``) and queueing for a pooled connection. The batcher collects the
writes that arrive while a flush is running and commits them together: each statement keeps
its own compare-and-swap guard and hands its own row count back to its caller, whose await
returns only after the commit, so a caller learns nothing a crash could take back.

A statement that fails for any reason but an unreachable database aborts the shared
transaction; the batch is then retried one statement per transaction, so one bad write never
decides its batch-mates' results. An unreachable database fails every waiter of the batch
with ``StoreUnavailable``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

import sqlalchemy as sa

from imagegate.errors import StoreUnavailable

# Statements per transaction. Each statement is a round trip, and on an event loop busy with
# thousands of tasks each round trip waits a full turn of the loop, so a batch holds its row
# locks (delaying claims and lease renewal) for as many turns as it has statements. Writes
# that share a statement (``Together``) count as one, up to ``MAX_WRITES`` writes a batch.
MAX_BATCH = 64
MAX_WRITES = 1000


class NotBegun(StoreUnavailable):
    """The transaction's connection was found dead before anything was committed (the
    database rolled it back): the batch may run again as it is, once."""


class Unsettled(StoreUnavailable):
    """The connection was lost while a statement that commits by itself ran: whether it
    committed is unknown. Its writers hear ``StoreUnavailable``; writes queued behind it go on
    (fresh connections). Every write here is a compare-and-swap or an insert of a new id, so
    a worker's run that meets this ends as if its lease had lapsed."""


class Result(Protocol):
    """What a batch reads of a statement's result (a SQLAlchemy ``CursorResult`` is one)."""

    @property
    def rowcount(self) -> int: ...

    def scalars(self) -> Iterable[Any]: ...


class Executor(Protocol):
    """What a batch's statements run on: an ``AsyncConnection``, the connection SQLite's
    batches use on the event loop's thread (``store.fastwrite``), or PostgreSQL's raw one
    (``store.pgwrite``)."""

    async def execute(self, statement: sa.Executable, parameters: Any = None) -> Result: ...


Begin = Callable[[], AbstractAsyncContextManager[Executor]]
# Sends the notifications of a batch's changed writes inside its transaction: (channel, payload).
Notify = Callable[[Executor, Sequence[tuple[str, str]]], Awaitable[None]]


class Together(Protocol):
    """Runs several writes of one kind (one statement, the same parameter names, distinct
    keys) as a single statement; the row count of each, in order."""

    async def __call__(self, conn: Executor, writes: Sequence[Write]) -> list[int]: ...


@dataclass
class Write:
    """One statement, whose row count its caller awaits; ``key`` orders a batch's writes."""

    statement: sa.Executable
    key: str
    notify: tuple[str, str] | None = None  # sent when the statement changed a row
    params: dict[str, Any] | None = None  # for a statement built once with bound parameters
    together: Together | None = None  # how writes like this one share one statement
    result: asyncio.Future[int] = field(default_factory=asyncio.Future)


class WriteBatcher:
    """Runs submitted writes in as few transactions as the database's speed allows.

    Up to ``flushers`` transactions are open at once: one for SQLite (a single writer); on
    PostgreSQL several, each on its own connection, so a loop turn advances several batches.
    """

    def __init__(
        self, begin: Begin, notify: Notify, *, flushers: int = 1, alone: Begin | None = None
    ) -> None:
        """``alone``, where given, opens a connection on which one statement commits by
        itself (PostgreSQL runs a lone statement in a transaction of its own): a batch of one
        statement runs there, one round trip where BEGIN, it and COMMIT took three, each of
        which waited for a turn of a busy loop."""
        self._begin = begin
        self._alone = alone
        self._notify = notify
        self._flushers = flushers
        self._active = 0
        self._pending: list[Write] = []
        self._flushes: set[asyncio.Task[None]] = set()
        # A flush started but not yet run takes its batch when it runs, so every write
        # submitted in the same turn of the loop joins it; no other starts meanwhile.
        self._starting: asyncio.Task[None] | None = None

    async def run(
        self,
        statement: sa.Executable,
        key: str,
        notify: tuple[str, str] | None = None,
        params: dict[str, Any] | None = None,
        together: Together | None = None,
    ) -> int:
        """Execute ``statement`` in the next batch; its row count once that batch committed."""
        write = Write(statement, key, notify, params, together)
        self._pending.append(write)
        self._kick()
        # The write goes on if the caller stops waiting: a compare-and-swap is safe either way.
        return await asyncio.shield(write.result)

    async def drain(self) -> None:
        """Wait until every submitted write has been settled (before closing the engine)."""
        while self._flushes:
            await asyncio.gather(*self._flushes, return_exceptions=True)

    def _kick(self) -> None:
        if self._pending and self._starting is None and self._active < self._flushers:
            self._active += 1
            flush = asyncio.get_running_loop().create_task(self._flush())
            self._starting = flush
            self._flushes.add(flush)
            flush.add_done_callback(self._flushed)

    def _flushed(self, flush: asyncio.Task[None]) -> None:
        self._flushes.discard(flush)
        self._active -= 1
        if self._starting is flush:  # cancelled before it ran
            self._starting = None
        self._kick()

    def _take(self) -> list[Write]:
        """The next batch: up to ``MAX_BATCH`` statements' worth of the oldest writes."""
        taken = 0
        for statements in _statements(self._pending[:MAX_WRITES]):
            if statements > MAX_BATCH:
                break
            taken += 1
        batch, self._pending = self._pending[:taken], self._pending[taken:]
        return batch

    async def _flush(self) -> None:
        batch = self._take()
        self._starting = None
        self._kick()  # what did not fit
        # One order for every transaction's row locks, so two batches never deadlock; a
        # stable sort keeps one task's writes in the order they were made.
        batch.sort(key=lambda w: w.key)
        try:
            counts = await self._together(batch)
        except Unsettled as exc:
            for write in batch:
                _settle(write, exc=exc)
        except StoreUnavailable as exc:
            # Writes queued behind this batch would only wait as long again for the same
            # answer: a client hears "unavailable" within one timeout, not two.
            queued, self._pending = self._pending, []
            for write in [*batch, *queued]:
                _settle(write, exc=exc)
        except Exception:
            await self._one_by_one(batch)
        else:
            for write, count in zip(batch, counts, strict=True):
                _settle(write, count=count)
        finally:
            # Cancelled mid-flush (the process is stopping): nobody may wait forever.
            for write in batch:
                if not write.result.done():  # an exception made only where one is raised
                    _settle(write, exc=StoreUnavailable())

    async def _together(self, batch: Sequence[Write]) -> list[int]:
        try:
            return await self._attempt(batch)
        except NotBegun:
            return await self._attempt(batch)  # once more, on a fresh connection

    async def _attempt(self, batch: Sequence[Write]) -> list[int]:
        alone = self._alone
        # A write that notifies needs a statement of its own for it: never alone.
        if alone is not None and not any(w.notify for w in batch) and max(_statements(batch)) == 1:
            async with alone() as conn:
                return await _execute_all(conn, batch)
        async with self._begin() as conn:
            counts = await _execute_all(conn, batch)
            changed = [w.notify for w, n in zip(batch, counts, strict=True) if n and w.notify]
            if changed:
                await self._notify(conn, changed)
        return counts

    async def _one_by_one(self, batch: Sequence[Write]) -> None:
        for write in batch:
            try:
                count = (await self._together([write]))[0]
            except Exception as exc:
                _settle(write, exc=exc)
            else:
                _settle(write, count=count)


async def _execute_all(conn: Executor, batch: Sequence[Write]) -> list[int]:
    """Each write's row count: writes of one kind together (one statement a kind, where a kind
    has two or more writes, each of its own key), the others one by one, in key order."""
    kinds: dict[tuple[Together, frozenset[str]], list[int]] = {}
    keys: set[str] = set()
    alone: list[int] = []
    for index, write in enumerate(batch):
        kind = _shared_kind(write, keys)
        if kind is None:
            alone.append(index)
        else:
            kinds.setdefault(kind, []).append(index)
    counts = [0] * len(batch)
    for (together, _), indexes in kinds.items():
        if len(indexes) == 1:
            alone.append(indexes[0])
            continue
        changed = await together(conn, [batch[i] for i in indexes])
        for index, count in zip(indexes, changed, strict=True):
            counts[index] = count
    for index in sorted(alone):
        counts[index] = await _execute(conn, batch[index])
    return counts


def _statements(writes: Sequence[Write]) -> Iterator[int]:
    """For each write in turn, how many statements the writes up to it take together."""
    kinds: set[tuple[Together, frozenset[str]]] = set()
    keys: set[str] = set()
    statements = 0
    for write in writes:
        kind = _shared_kind(write, keys)
        if kind is None:
            statements += 1
        elif kind not in kinds:
            kinds.add(kind)
            statements += 1
        yield statements


def _shared_kind(write: Write, keys: set[str]) -> tuple[Together, frozenset[str]] | None:
    """The statement ``write`` may share with writes like it, or None when it runs alone: it
    has no shared form, or its key already wrote in this batch (a key's later writes go
    alone, after its first, so one task's writes keep their order). Notes its key in ``keys``."""
    seen = write.key in keys
    keys.add(write.key)
    if write.together is None or seen:
        return None
    return write.together, frozenset(write.params or ())


async def _execute(conn: Executor, write: Write) -> int:
    return int((await conn.execute(write.statement, write.params)).rowcount)


def _settle(write: Write, *, count: int = 0, exc: BaseException | None = None) -> None:
    if write.result.done():
        return
    if exc is not None:
        write.result.set_exception(exc)
    else:
        write.result.set_result(count)
