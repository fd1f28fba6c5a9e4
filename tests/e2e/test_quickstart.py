"""The README's first command installs and starts the gateway from a clean clone."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx

from tests.support.readme import ROOT, blocks, shell_commands

PORT = 8000  # the README's command uses the default port


def _install_and_serve_command() -> str:
    commands = [c for b in blocks(ROOT / "README.md", "bash") for c in shell_commands(b)]
    (command,) = [c for c in commands if "imagegate serve" in c and "pip install" in c]
    return command


def _port_free() -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", PORT)) != 0


def test_first_command_installs_starts_and_prints_a_working_key(tmp_path: Path) -> None:
    assert _port_free(), f"port {PORT} is taken; the quick start needs it"
    clone = tmp_path / "imagegate"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    log = open(tmp_path / "quickstart.log", "wb")  # noqa: SIM115 - owned by the child
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEGATE_")}
    proc = subprocess.Popen(
        ["bash", "-c", _install_and_serve_command()],
        cwd=clone,
        env=env,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    try:
        key = _wait_for_key(tmp_path / "quickstart.log", proc, timeout=900)
        headers = {"Authorization": f"Bearer {key}"}
        body = {"prompt": "hello from a clean clone", "size": "64x64"}
        result = httpx.post(
            f"http://127.0.0.1:{PORT}/v1/images/generations", json=body, headers=headers, timeout=60
        )
        assert result.status_code == 200, result.text
        assert httpx.get(result.json()["data"][0]["url"]).status_code == 200
        assert (clone / "imagegate-data" / "imagegate.db").exists()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
        log.close()


def _wait_for_key(log_path: Path, proc: subprocess.Popen[bytes], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    key = None
    while time.monotonic() < deadline:
        text = log_path.read_text(errors="replace")
        key = key or next(iter(re.findall(r"sk-ig-[A-Za-z0-9_-]{20,}", text)), None)
        if key and "Uvicorn running" in text:
            return key
        assert proc.poll() is None, text
        time.sleep(0.5)
    raise AssertionError(log_path.read_text(errors="replace"))
