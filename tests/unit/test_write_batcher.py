"""How the write batcher cuts writes into transactions (the database side is in
``tests/integration/test_write_batch.py``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa

from imagegate.store.batch import MAX_BATCH, MAX_WRITES, Write, WriteBatcher

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
