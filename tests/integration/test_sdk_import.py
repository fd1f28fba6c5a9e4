"""``import imagegate`` is the SDK only: a client process never loads the server's stack."""

from __future__ import annotations

import json
import subprocess
import sys

SERVER_ONLY = ("fastapi", "starlette", "sqlalchemy", "alembic", "uvicorn", "aiosqlite", "asyncpg")


def test_importing_imagegate_loads_no_server_dependency() -> None:
    # The SDK itself loads on first use of one of its names.
    probe = "import imagegate, json, sys; imagegate.Client; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    loaded = {name.split(".")[0] for name in json.loads(out)}
    assert loaded.isdisjoint(SERVER_ONLY), loaded & set(SERVER_ONLY)
    assert "imagegate.client" in json.loads(out)
