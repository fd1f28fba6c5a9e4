"""Migrations on start: a new database is brought to head by Alembic; one at head is left
alone without loading Alembic at all."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic.script import ScriptDirectory

from imagegate.store.migrate import HEAD, alembic_config
from imagegate.store.sql import SqlStore


def test_head_is_alembics_own() -> None:
    """A migration added without moving ``HEAD`` would be skipped on databases at the old one."""
    assert ScriptDirectory.from_config(alembic_config()).get_heads() == [HEAD]


_START = """
import asyncio, json, sys
from imagegate.store.sql import SqlStore

async def main():
    store = SqlStore(sys.argv[1])
    await store.start()
    await store.close()

asyncio.run(main())
print(json.dumps("alembic" in sys.modules))
"""


def test_a_database_at_head_starts_without_alembic(
    tmp_path: Path, database_factory: Callable[[], Any]
) -> None:
    with database_factory() as url:
        url = url or f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"

        def start() -> bool:
            run = [sys.executable, "-c", _START, url]
            out = subprocess.run(run, capture_output=True, text=True, check=True).stdout
            return bool(json.loads(out.splitlines()[-1]))

        assert start() is True  # a new database: Alembic creates the schema
        assert start() is False  # at head: nothing to load

        async def usable() -> int:
            store = SqlStore(url)
            await store.start()
            try:
                return await store.count_keys()
            finally:
                await store.close()

        assert asyncio.run(usable()) == 0
