"""A throwaway PostgreSQL cluster the tests own: initdb, start, stop (a real outage), start again.

It uses the server binaries that the ``pgserver`` package ships, so no PostgreSQL service is
needed on the machine, and it listens on a fixed loopback TCP port, so a URL stays valid
across a stop and a start. PostgreSQL refuses to run as root; under root the server runs as
the unprivileged user pgserver creates for the same reason.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pgserver
from pgserver import utils as pg_utils

from tests.support.gateway import free_port

BIN = Path(pgserver.__file__).parent / "pginstall" / "bin"
RUN_AS = "pgserver"
# Speed over crash safety: these clusters hold test data only. Clean stops still flush.
_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "",
    "max_connections": "300",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}


def _as_root() -> bool:
    return os.geteuid() == 0


class Cluster:
    """One PostgreSQL server in a temporary directory; ``url`` is a SQLAlchemy URL."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="imagegate-pg-"))
        self.pgdata = self.root / "data"
        self.logfile = self.root / "postgres.log"
        self.port = free_port()
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 60) -> None:
        user = RUN_AS if _as_root() else None
        subprocess.run(
            [str(BIN / args[0]), *args[1:]],
            check=True,
            cwd=self.root,
            user=user,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout,
        )

    def init(self) -> Cluster:
        if _as_root():
            pg_utils.ensure_user_exists(RUN_AS)
            pg_utils.ensure_prefix_permissions(BIN)
            pg_utils.ensure_folder_permissions(BIN, 0o055)
            pg_utils.ensure_folder_permissions(BIN.parent / "lib", 0o044)
            self.root.chmod(0o755)
            shutil.chown(self.root, RUN_AS, RUN_AS)
        self._run("initdb", "-D", str(self.pgdata), "-U", "postgres", "--auth=trust", "-E", "utf8")
        return self

    def start(self) -> Cluster:
        options = " ".join(f"-c {k}={v}" if v else f"-c {k}=''" for k, v in _SETTINGS.items())
        options += f" -p {self.port}"
        self._run(
            "pg_ctl", "-D", str(self.pgdata), "-l", str(self.logfile), "-w", "-o", options, "start"
        )
        return self

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; ``fast`` disconnects every client, as a database restart does."""
        self._run("pg_ctl", "-D", str(self.pgdata), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
