"""Time and memory of commands run as subprocesses (whole process trees)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil


def tree_rss(proc: psutil.Process) -> int:
    """RSS of ``proc`` and all its descendants, summed (bytes); vanished processes count 0."""
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


@dataclass(frozen=True)
class Measured:
    wall_s: float
    peak_rss_bytes: int  # peak of the whole tree's summed RSS
    returncode: int
    stdout: str
    stderr: str

    @property
    def peak_rss_mib(self) -> float:
        return self.peak_rss_bytes / 2**20


def run_measured(
    cmd: Sequence[str],
    cwd: Path,
    *,
    period_s: float = 0.05,
    on_poll: Callable[[float], None] | None = None,
    ok_codes: tuple[int, ...] = (0, 3),
) -> Measured:
    """Run ``cmd`` to completion, sampling its process tree's RSS every ``period_s``
    (``on_poll(elapsed_s)`` is called at each sample). Exits the benchmark with the
    command's stderr tail if it ends with a code outside ``ok_codes``."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        list(cmd), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    ps = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_rss(ps))
        if on_poll is not None:
            on_poll(time.perf_counter() - started)
        time.sleep(period_s)
    out, err = proc.communicate()
    wall = time.perf_counter() - started
    if proc.returncode not in ok_codes:
        raise SystemExit(f"{list(cmd)} failed ({proc.returncode}):\n{err[-3000:]}")
    return Measured(wall, peak, proc.returncode, out, err)
