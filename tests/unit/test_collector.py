"""The collector is paused while a server process loads and runs again, tuned, once loaded.

Each case runs in a fresh interpreter: the collector is process-wide, and pausing it in the
test process would change every test after this one.
"""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import gc
from imagegate import collector
collector.pause()
assert not gc.isenabled()
collector.tune()
assert gc.isenabled()
assert gc.get_freeze_count() > 0
assert gc.get_threshold()[0] == collector.GC_YOUNG_THRESHOLD
collector.tune()  # a second runtime in the same process changes nothing
assert gc.isenabled()
print("ok")
"""


def test_pause_then_tune_leaves_the_collector_running_with_the_loaded_objects_frozen() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_tune_without_a_pause_still_enables_and_freezes() -> None:
    script = SCRIPT.replace("collector.pause()\nassert not gc.isenabled()\n", "")
    assert script != SCRIPT
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
