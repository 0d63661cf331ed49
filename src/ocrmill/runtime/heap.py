"""How a worker's C heap (glibc malloc) holds the memory of the pages it reads.

A page's buffers are large (a 300-dpi page is ~25 MB of RGB, the detector's maps on it some
more) and short-lived. glibc hands a block at or above its mmap threshold a mapping of its
own, given back to the system when freed; smaller blocks come from the heap, which keeps
what is freed. The threshold starts at 128 KiB and rises to the size of every mapped block
that is freed (up to 32 MiB), so after its first large pages a worker serves the next
pages' buffers from its heap, and whether its peak then holds one page's buffers or two
depends on how they happened to interleave: ``ocrmill pdf`` on the turned brochure of
``benchmarks/searchable_pdf.py`` peaked at ~950 or ~1,170 MiB from run to run, with the
same text. A threshold fixed at ``BIG_BLOCK`` keeps those buffers in mappings: every run
took the low mode (``benchmarks/results/searchable_pdf_20261207-heap-xeon207.md``).

Elsewhere (musl, macOS) these are no-ops.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

# Blocks this large are always mapped and given back on free. A lower threshold maps more
# of the detector's blocks on every call, and was slower (4 MiB; the results file above);
# blocks under it are a line's crops and the models' own small tensors, which the heap
# serves best.
BIG_BLOCK = 16 * 1024 * 1024
_M_MMAP_THRESHOLD = -3  # mallopt's parameter numbers (malloc.h)
_M_ARENA_MAX = -8


@functools.cache
def _libc() -> object | None:
    """The C library this process runs on (opened once), or None."""
    try:
        import ctypes

        return ctypes.CDLL(None)
    except OSError:
        return None


def _mallopt(parameter: int, value: int) -> bool:
    """glibc's ``mallopt``; True when the C library took the setting."""
    mallopt = getattr(_libc(), "mallopt", None)
    return mallopt is not None and bool(mallopt(parameter, value))


def map_big_blocks(size: int = BIG_BLOCK) -> bool:
    """Fix glibc's mmap threshold at ``size`` bytes for the rest of this process, so blocks
    of that size or more are always mapped and given back when freed (the threshold no
    longer rises as large blocks are freed). True when the C library took it."""
    return _mallopt(_M_MMAP_THRESHOLD, size)


def one_arena() -> bool:
    """Have every thread of this process take its blocks from glibc's main heap. By default
    glibc gives each new thread that allocates an arena of its own, which keeps what it
    freed: the engine's thread that detects the next page held a page's worth more (a warm
    engine reading 30 document images four at a time peaked 30-55 MiB higher than reading
    them in turn, and 5-15 MiB with one arena). Call it before a second thread starts:
    threads already on arenas of their own keep them. True when the C library took it."""
    return _mallopt(_M_ARENA_MAX, 1)


def trimmer() -> Callable[[], object]:
    """glibc's ``malloc_trim(0)``: give the free pages of the heap back to the system."""
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is None:
        return lambda: None
    return lambda: trim(0)
