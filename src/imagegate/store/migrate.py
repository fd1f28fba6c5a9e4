"""Apply Alembic migrations on start, inside the caller's connection and transaction."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
# Any constant works; it only has to be the same in every process of a fleet.
_PG_MIGRATION_LOCK = 0x1A6E_6A7E


def alembic_config(connection: sa.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def upgrade(connection: sa.Connection) -> None:
    """Bring the schema to head; on PostgreSQL, concurrent starts wait on an advisory lock."""
    if connection.dialect.name == "postgresql":
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_MIGRATION_LOCK)))
    command.upgrade(alembic_config(connection), "head")
