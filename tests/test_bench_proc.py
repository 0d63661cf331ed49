"""The benchmarks' subprocess measurement: wall time, peak RSS of the tree, failures."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from benchmarks.proc_memory import run_measured

CHILD_HOLDS_80MB = (
    "import subprocess, sys, time; "
    "c = subprocess.Popen([sys.executable, '-c', "
    "'b = bytearray(80 * 2**20); b[::4096] = bytes(len(b[::4096])); import time; time.sleep(0.6)']); "
    "c.wait(); print('done')"
)


def test_peak_counts_children_and_output_is_kept(tmp_path: Path):
    polls: list[float] = []
    m = run_measured([sys.executable, "-c", CHILD_HOLDS_80MB], tmp_path, on_poll=polls.append)
    assert m.returncode == 0 and m.stdout.strip() == "done"
    assert m.peak_rss_mib > 80  # the grandchild's touched 80 MiB is in the tree's peak
    assert m.wall_s >= 0.6 and polls and polls == sorted(polls)


def test_a_failing_command_stops_the_benchmark_with_its_stderr(tmp_path: Path):
    cmd = [sys.executable, "-c", "import sys; sys.stderr.write('boom'); sys.exit(5)"]
    with pytest.raises(SystemExit, match="boom"):
        run_measured(cmd, tmp_path)
    assert run_measured(cmd, tmp_path, ok_codes=(5,)).returncode == 5
