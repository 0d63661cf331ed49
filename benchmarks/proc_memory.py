"""Memory of a process tree, for benchmarks that run commands as subprocesses."""

from __future__ import annotations

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
