"""The installed ``imagegate`` command's client side against the real server process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import GatewayFactory
from tests.support.gateway import Gateway, free_port

IMAGEGATE = str(Path(sys.executable).with_name("imagegate"))


def run(
    gateway: Gateway | None, *args: str, key: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the console script with the gateway's address and key in the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEGATE_")}
    if gateway is not None:
        env["IMAGEGATE_BASE_URL"] = gateway.base_url
        env["IMAGEGATE_API_KEY"] = key or gateway.key
    return subprocess.run(
        [IMAGEGATE, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_generate_saves_the_images_and_prints_their_paths(gateway: Gateway, tmp_path: Path) -> None:
    done = run(
        gateway,
        "generate",
        "a lighthouse",
        "--size",
        "64x64",
        "-n",
        "2",
        "--interval",
        "0.2",
        "--out",
        str(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    paths = [Path(line) for line in done.stdout.splitlines()]
    assert len(paths) == 2
    assert all(p.parent == tmp_path and p.read_bytes().startswith(b"\x89PNG") for p in paths)


def test_generate_json_reports_the_task_and_the_files(gateway: Gateway, tmp_path: Path) -> None:
    done = run(
        gateway,
        "generate",
        "a kite",
        "--size",
        "64x64",
        "--seed",
        "7",
        "--json",
        "--interval",
        "0.2",
        "--out",
        str(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["status"] == "completed"
    assert Path(document["files"][0]).is_file()


def test_no_wait_then_wait_and_status_follow_one_task(gateway: Gateway) -> None:
    created = run(gateway, "generate", "a comet", "--size", "64x64", "--no-wait")
    assert created.returncode == 0, created.stderr
    task_id = created.stdout.strip()
    assert f"imagegate wait {task_id}" in created.stderr
    waited = run(gateway, "wait", task_id, "--interval", "0.2")
    assert waited.returncode == 0, waited.stderr
    assert waited.stdout.startswith("http")
    status = run(gateway, "status", task_id, "--json")
    assert json.loads(status.stdout)["status"] == "completed"


def test_flags_override_the_environment(gateway: Gateway) -> None:
    done = run(None, "models", "--json", "--base-url", gateway.base_url, "--api-key", gateway.key)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["data"][0]["id"]


def test_tasks_piped_prints_one_tab_separated_line_per_task(gateway: Gateway) -> None:
    created = run(gateway, "generate", "a list entry", "--size", "64x64", "--no-wait")
    listed = run(gateway, "tasks", "--limit", "5")
    assert listed.returncode == 0, listed.stderr
    first = listed.stdout.splitlines()[0].split("\t")
    assert first[0] == created.stdout.strip()


def test_an_unknown_task_exits_4_with_a_json_error(gateway: Gateway) -> None:
    done = run(gateway, "status", "igt_" + "b" * 32, "--json")
    assert done.returncode == 4
    assert json.loads(done.stdout)["error"]["code"] == "async_task_not_found"
    assert "Task not found" in done.stderr


def test_a_bad_key_exits_3_and_says_what_to_check(gateway: Gateway) -> None:
    done = run(gateway, "models", key="sk-not-a-real-key-00")
    assert done.returncode == 3
    assert "IMAGEGATE_API_KEY" in done.stderr


def test_a_rejected_parameter_exits_2(gateway: Gateway) -> None:
    done = run(gateway, "generate", "tiny", "--size", "1x1")
    assert done.returncode == 2
    assert "size" in done.stderr


def test_a_missing_argument_exits_2(gateway: Gateway) -> None:
    assert run(gateway, "status").returncode == 2


def test_an_unreachable_gateway_exits_7() -> None:
    done = run(None, "models", "--base-url", f"http://127.0.0.1:{free_port()}")
    assert done.returncode == 7
    assert "--base-url" in done.stderr


def test_a_failed_task_exits_5(gateway_factory: GatewayFactory) -> None:
    broken = gateway_factory(env={"IMAGEGATE_LOCAL_FAILURE_RATE": "1"})
    done = run(broken, "generate", "doomed", "--size", "64x64", "--interval", "0.2", "--json")
    assert done.returncode == 5
    assert json.loads(done.stdout)["status"] == "failed"


def test_waiting_too_long_exits_6_and_says_how_to_resume(gateway_factory: GatewayFactory) -> None:
    # Far longer than the command takes to start, so the task is surely still running.
    slow = gateway_factory(env={"IMAGEGATE_LOCAL_LATENCY": "60"})
    created = run(slow, "generate", "slow", "--size", "64x64", "--no-wait").stdout.strip()
    done = run(slow, "wait", created, "--timeout", "0.5", "--interval", "0.2")
    assert done.returncode == 6
    assert f"imagegate wait {created}" in done.stderr


@pytest.mark.parametrize("as_json", [False, True])
def test_cancel_stops_a_pending_task(gateway_factory: GatewayFactory, as_json: bool) -> None:
    idle = gateway_factory(args=["--no-worker"])
    task_id = run(idle, "generate", "never", "--size", "64x64", "--no-wait").stdout.strip()
    flags = ["--json"] if as_json else []
    done = run(idle, "cancel", task_id, *flags)
    assert done.returncode == 0, done.stderr
    assert "cancelled" in done.stdout
    assert run(idle, "cancel", task_id).returncode == 1


def test_ctrl_c_while_waiting_exits_130_and_leaves_the_task_running(
    gateway_factory: GatewayFactory,
) -> None:
    slow = gateway_factory(env={"IMAGEGATE_LOCAL_LATENCY": "60"})
    task_id = run(slow, "generate", "slow", "--size", "64x64", "--no-wait").stdout.strip()
    env = {**os.environ, "IMAGEGATE_BASE_URL": slow.base_url, "IMAGEGATE_API_KEY": slow.key}
    with subprocess.Popen(
        [IMAGEGATE, "wait", task_id, "--interval", "0.2"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    ) as waiting:
        assert waiting.stderr is not None
        assert task_id in waiting.stderr.readline()  # the first polled state: it is watching
        waiting.send_signal(signal.SIGINT)
        hint = waiting.stderr.read()
    assert waiting.returncode == 130
    assert f"imagegate wait {task_id}" in hint
    assert json.loads(run(slow, "status", task_id, "--json").stdout)["status"] == "processing"
