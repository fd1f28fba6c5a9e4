"""How the write batcher cuts writes into transactions (the database side is in
``tests/integration/test_write_batch.py``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from imagegate.store.batch import MAX_BATCH, MAX_WRITES, Unsettled, Write, WriteBatcher

STATEMENT = sa.text("UPDATE t SET x = 1")


class Transaction:
    def __init__(self) -> None:
        self.ran: list[tuple[str, Any]] = []  # ("together", n) or ("alone", parameters)

    async def execute(self, statement: sa.Executable, parameters: Any = None) -> Any:
        self.ran.append(("alone", parameters))
        return SimpleNamespace(rowcount=1)


class Recorder:
    """Records what each transaction ran."""

    def __init__(self) -> None:
        self.transactions: list[list[tuple[str, Any]]] = []

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[Transaction]:
        tx = Transaction()
        self.transactions.append(tx.ran)
        await asyncio.sleep(0)  # a round trip
        yield tx

    async def together(self, conn: Transaction, writes: Sequence[Write]) -> list[int]:
        conn.ran.append(("together", len(writes)))
        return [1] * len(writes)


async def no_notices(conn: Any, sent: Sequence[tuple[str, str]]) -> None:
    return None


async def test_writes_of_one_turn_share_a_transaction_up_to_the_write_limit() -> None:
    db = Recorder()
    batcher = WriteBatcher(db.begin, no_notices, flushers=8)
    count = MAX_WRITES + 10
    writes = [
        batcher.run(STATEMENT, f"k{i:05}", params={"p": i}, together=db.together)
        for i in range(count)
    ]
    assert await asyncio.gather(*writes) == [1] * count
    # Not a transaction of the first write alone, then 64 at a time: all of that turn's
    # writes, as one statement, up to the limit; the rest in the next transaction.
    assert db.transactions == [[("together", MAX_WRITES)], [("together", 10)]]


async def test_writes_that_need_statements_of_their_own_are_cut_at_the_statement_limit() -> None:
    db = Recorder()
    batcher = WriteBatcher(db.begin, no_notices, flushers=1)
    runs = [batcher.run(STATEMENT, f"k{i:03}", params={"n": i}) for i in range(MAX_BATCH + 1)]
    assert await asyncio.gather(*runs) == [1] * (MAX_BATCH + 1)
    assert [len(t) for t in db.transactions] == [MAX_BATCH, 1]


class WithAlone(Recorder):
    """A database that also runs lone statements outside BEGIN and COMMIT."""

    def __init__(self, lost: bool = False) -> None:
        super().__init__()
        self.alone_runs: list[list[tuple[str, Any]]] = []
        self.lost = lost  # the connection drops while a lone statement runs

    @asynccontextmanager
    async def alone(self) -> AsyncIterator[Transaction]:
        tx = Transaction()
        self.alone_runs.append(tx.ran)
        await asyncio.sleep(0)
        yield tx
        if self.lost:
            raise Unsettled()


async def test_a_batch_of_one_statement_runs_alone_and_others_in_a_transaction() -> None:
    db = WithAlone()
    batcher = WriteBatcher(db.begin, no_notices, flushers=1, alone=db.alone)
    assert await batcher.run(STATEMENT, "k1", params={"n": 1}) == 1
    # Many writes of one kind are one statement too.
    shared = [
        batcher.run(STATEMENT, f"k{i}", params={"n": i}, together=db.together) for i in range(5)
    ]
    assert await asyncio.gather(*shared) == [1] * 5
    # Two statements, or a write whose notice takes a statement of its own: a transaction.
    two = [batcher.run(STATEMENT, "a", params={"n": 1}), batcher.run(STATEMENT, "b", params={})]
    assert await asyncio.gather(*two) == [1, 1]
    assert await batcher.run(STATEMENT, "c", notify=("ch", "c"), params={"n": 3}) == 1
    assert db.alone_runs == [[("alone", {"n": 1})], [("together", 5)]]
    assert db.transactions == [[("alone", {"n": 1}), ("alone", {})], [("alone", {"n": 3})]]


async def test_a_lone_statement_of_unknown_outcome_fails_only_its_own_writers() -> None:
    db = WithAlone(lost=True)
    batcher = WriteBatcher(db.begin, no_notices, flushers=1, alone=db.alone)
    first = asyncio.ensure_future(batcher.run(STATEMENT, "k1", params={"n": 1}))
    await asyncio.sleep(0)  # its flush has taken it
    queued = asyncio.ensure_future(batcher.run(STATEMENT, "k2", params={"n": 2}))
    with pytest.raises(Unsettled):
        await first
    db.lost = False
    assert await queued == 1  # not failed along with it: it ran on its own
