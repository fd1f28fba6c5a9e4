"""Settings: database URLs as people write them, and errors that do not echo secrets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from imagegate.config import Settings


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgresql://u:p@db/images", "postgresql+asyncpg://u:p@db/images"),
        ("postgres://db/images", "postgresql+asyncpg://db/images"),
        ("postgresql+asyncpg://db/images", "postgresql+asyncpg://db/images"),
        ("sqlite:////var/lib/imagegate.db", "sqlite+aiosqlite:////var/lib/imagegate.db"),
        ("sqlite+aiosqlite:///imagegate.db", "sqlite+aiosqlite:///imagegate.db"),
    ],
)
def test_a_database_url_runs_on_the_async_driver_of_its_database(given: str, used: str) -> None:
    assert Settings(database_url=given).resolved_database_url == used


@pytest.mark.parametrize("url", ["mysql://u:hunter22@db/x", "postgresql+psycopg://u:hunter22@db/x"])
def test_a_database_url_of_another_driver_fails_without_echoing_it(url: str) -> None:
    with pytest.raises(ValueError, match="expected a postgresql://") as caught:
        Settings(database_url=url)
    assert "hunter22" not in str(caught.value)


def test_a_bad_key_is_not_echoed_in_the_error() -> None:
    with pytest.raises(ValueError, match="must start with 'sk-'") as caught:
        Settings(api_keys="sk-goodsecret1,hunter22")
    assert "hunter22" not in str(caught.value)
    assert "goodsecret1" not in str(caught.value)


def test_the_worker_command_ends_with_one_line_for_a_wrong_database_url(tmp_path: Path) -> None:
    env = {**os.environ, "IMAGEGATE_DATABASE_URL": "mysql://u:hunter22@127.0.0.1/x"}
    done = subprocess.run(
        [sys.executable, "-m", "imagegate", "worker", "--data-dir", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "Invalid configuration" in done.stderr
    assert "Traceback" not in done.stderr
    assert "hunter22" not in done.stderr
