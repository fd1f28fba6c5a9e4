"""The benchmark command keeps working: its quick setting runs every benchmark end to end.

Only the shape of the output is checked; timings never are (they belong in
docs/benchmarks.md, measured on a quiet machine, not in the test suite).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = {
    "1 status polling",
    "2 sync passthrough",
    "3 async throughput",
    "4 completion visibility",
    "5 in-flight scale",
}


def test_quick_benchmarks_print_a_table_and_save_every_result(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--json", str(results)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "| benchmark" in done.stdout
    saved = json.loads(results.read_text())
    assert saved["quick"] is True
    assert len(saved["python_loop_s"]) == 2 and all(s > 0 for s in saved["python_loop_s"])
    assert {row["benchmark"] for row in saved["rows"]} == BENCHMARKS
    for row in saved["rows"]:
        assert row["result"] and row["baseline"] and row["ratio"] is not None
