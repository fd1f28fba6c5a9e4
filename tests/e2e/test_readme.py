"""The README's examples work as written (only the address and key are the test server's)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.gateway import Gateway
from tests.support.readme import ROOT, blocks, shell_commands

README = ROOT / "README.md"
DEFAULT_BASE = "http://127.0.0.1:8000"


def _curl_commands() -> list[str]:
    return [c for b in blocks(README, "bash") for c in shell_commands(b) if c.startswith("curl")]


def _run(command: str, gateway: Gateway) -> Any:
    env = {**os.environ, "IMAGEGATE_API_KEY": gateway.key}
    command = command.replace(DEFAULT_BASE, gateway.base_url)
    out = subprocess.run(
        ["bash", "-c", command], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    return json.loads(out.stdout)


def _client_commands() -> list[str]:
    (block,) = [b for b in blocks(README, "bash") if "imagegate generate" in b]
    return shell_commands(block)


def test_readme_has_the_curl_examples() -> None:
    commands = _curl_commands()
    assert len(commands) == 3
    assert any("igt_..." in c for c in commands)


def test_readme_curl_examples_run(gateway: Gateway) -> None:
    create, poll, sync = _curl_commands()
    task = _run(create, gateway)
    assert task["status"] == "pending" and task["poll_url"]
    status = _run(poll.replace("igt_...", task["id"]), gateway)
    assert status["id"] == task["id"]
    assert status["status"] in ("pending", "processing", "completed")
    images = _run(sync, gateway)
    assert images["data"][0]["url"].startswith(gateway.base_url)


def test_readme_openai_sdk_example_runs(
    gateway: Gateway, capsys: pytest.CaptureFixture[str]
) -> None:
    (code,) = [b for b in blocks(README, "python") if "from openai import OpenAI" in b]
    code = code.replace(DEFAULT_BASE, gateway.base_url).replace('"sk-ig-..."', repr(gateway.key))
    exec(compile(code, "README.md", "exec"), {})  # noqa: S102 - the README's own example
    printed = capsys.readouterr().out.split()
    assert printed[0].startswith(gateway.base_url + "/v1/files/")
    assert re.fullmatch(r"/v1/tasks/igt_[a-z2-7]{32}", printed[1])


def test_readme_imagegate_sdk_example_runs(
    gateway: Gateway,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (code,) = [b for b in blocks(README, "python") if "import imagegate" in b]
    code = code.replace(DEFAULT_BASE, gateway.base_url).replace('"sk-ig-..."', repr(gateway.key))
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})  # noqa: S102 - the README's own example
    printed = capsys.readouterr().out
    assert printed.startswith("completed ")
    assert len(list((tmp_path / "images").iterdir())) == 1


def test_readme_cli_examples_run(gateway: Gateway, tmp_path: Path) -> None:
    commands = _client_commands()
    assert len(commands) == 2
    env = {**os.environ, "IMAGEGATE_API_KEY": gateway.key, "IMAGEGATE_BASE_URL": gateway.base_url}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    for command in commands:
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    assert [p.suffix for p in (tmp_path / "images").iterdir()] == [".png"]
