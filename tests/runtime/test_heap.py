"""A worker's C heap gives large blocks back: glibc's mmap threshold is fixed in workers."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ocrmill.runtime import heap
from tests.fault.engines import heap_block, read_in_a_worker

BLOCK_MB = heap.BIG_BLOCK // (1024 * 1024) + 4  # above the fixed threshold


def _in_fresh_process(code: str) -> str:
    """What ``code`` prints, run in a new interpreter (a heap no test has touched)."""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return out.stdout.strip()


def _glibc_moves_big_blocks_to_the_heap() -> bool:
    """Whether this C library shows the behaviour being fixed: a large block allocated after
    one of its size was freed comes from the heap (glibc's rising threshold)."""
    probe = f"from tests.fault.engines import heap_block; print(heap_block({BLOCK_MB}))"
    return _in_fresh_process(probe) == "heap"


needs_glibc = pytest.mark.skipif(
    heap_block(1) == "unknown" or not _glibc_moves_big_blocks_to_the_heap(),
    reason="the C library is not glibc >= 2.33 with a rising mmap threshold",
)


@needs_glibc
def test_with_the_threshold_fixed_a_big_block_is_mapped_again_after_a_free():
    code = (
        "from ocrmill.runtime import heap; from tests.fault.engines import heap_block; "
        f"print(heap.map_big_blocks(), heap_block({BLOCK_MB}), heap_block(1))"
    )
    # Taken; the big block is mapped each time; a small block still comes from the heap.
    assert _in_fresh_process(code) == "True mapped heap"


@needs_glibc
def test_a_worker_maps_big_blocks_before_it_reads():
    result = read_in_a_worker(f"heap:{BLOCK_MB}")
    assert result.ok, result
    assert result.text == "mapped"


needs_arenas = pytest.mark.skipif(
    _in_fresh_process("from tests.fault.engines import thread_arena; print(thread_arena())")
    != "own",
    reason="the C library gives no thread an arena of its own (not glibc with mallinfo2)",
)


@needs_arenas
def test_with_one_arena_another_thread_allocates_from_the_main_heap():
    code = (
        "from ocrmill.runtime import heap; from tests.fault.engines import thread_arena; "
        "print(heap.one_arena(), thread_arena())"
    )
    # Without it a fresh process's new thread gets an arena of its own (needs_arenas).
    assert _in_fresh_process(code) == "True main"


@needs_arenas
def test_a_worker_allocates_from_one_arena():
    result = read_in_a_worker("arena")
    assert result.ok, result
    assert result.text == "main"
