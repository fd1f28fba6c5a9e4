"""Every example in docs/sdk.md and docs/cli.md runs as written against the real server.

Only the documented default address and the placeholder key are swapped for the test
server's, and each example runs in a fresh directory with the same variables a user exports.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from imagegate.cli import client_output
from tests.support.gateway import Gateway
from tests.support.readme import ROOT, blocks, shell_commands

SDK_DOC = ROOT / "docs" / "sdk.md"
CLI_DOC = ROOT / "docs" / "cli.md"
DEFAULT_BASE = "http://127.0.0.1:8000"
PLACEHOLDER_KEY = "sk-ig-..."

PYTHON_EXAMPLES = blocks(SDK_DOC, "python")
SHELL_EXAMPLES = [b for b in blocks(CLI_DOC, "bash") if "export IMAGEGATE_" not in b]
(SETUP,) = [b for b in blocks(CLI_DOC, "bash") if "export IMAGEGATE_" in b]


def localised(code: str, gateway: Gateway) -> str:
    return code.replace(DEFAULT_BASE, gateway.base_url).replace(PLACEHOLDER_KEY, gateway.key)


def user_env(gateway: Gateway) -> dict[str, str]:
    """A user's shell: the venv's commands first on PATH, the gateway's address and key set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEGATE_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["IMAGEGATE_BASE_URL"] = gateway.base_url
    env["IMAGEGATE_API_KEY"] = gateway.key
    return env


def run_example(runner: list[str], code: str, gateway: Gateway, cwd: Path) -> None:
    """Run one example in ``cwd``; it must succeed and show what it did."""
    code = localised(code, gateway)
    done = subprocess.run(
        [*runner, code],
        cwd=cwd,
        env=user_env(gateway),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"{code}\n--- stderr ---\n{done.stderr}"
    assert done.stdout.strip(), "every example shows what it did"


def test_the_docs_have_their_examples() -> None:
    assert len(PYTHON_EXAMPLES) >= 10
    assert len(SHELL_EXAMPLES) >= 6


@pytest.mark.parametrize("index", range(len(PYTHON_EXAMPLES)))
def test_sdk_doc_example_runs(index: int, gateway: Gateway, tmp_path: Path) -> None:
    run_example([sys.executable, "-c"], PYTHON_EXAMPLES[index], gateway, tmp_path)


@pytest.mark.parametrize("index", range(len(SHELL_EXAMPLES)))
def test_cli_doc_example_runs(index: int, gateway: Gateway, tmp_path: Path) -> None:
    commands = shell_commands(SETUP) + shell_commands(SHELL_EXAMPLES[index])
    script = "set -euo pipefail\n" + "\n".join(commands)
    run_example(["bash", "-c"], script, gateway, tmp_path)


def test_the_exit_code_table_lists_every_code_the_cli_uses() -> None:
    documented = {int(code) for code in re.findall(r"^\| (\d+) \|", CLI_DOC.read_text(), re.M)}
    used = {
        value
        for name, value in vars(client_output).items()
        if name.startswith("EXIT_") and isinstance(value, int)
    }
    assert documented == used | {0}
