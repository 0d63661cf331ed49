"""Run a batch through a backend, halving it while the device runs out of memory.

A CUDA out-of-memory on a batch of 32 crops usually means the batch, not the input, is
too big: the halves are run one after the other and their outputs joined. Only a batch
of one that still does not fit raises :class:`~ocrmill.errors.ResourceLimitError` (the
task is then reported as ``resource_limit`` or sent to a CPU worker by the pool); the
backend itself stays usable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np

from ocrmill.errors import ResourceLimitError

T = TypeVar("T", np.ndarray, tuple[np.ndarray, ...])


def is_out_of_memory(exc: BaseException) -> bool:
    """Does a backend's exception say a device allocation failed? ONNX Runtime, cuDNN/cuBLAS
    inside torch and older torch raise generic errors: their text is all there is."""
    text = str(exc).lower()
    return "out of memory" in text or "failed to allocate memory" in text


def _join(parts: list[T]) -> T:
    first = parts[0]
    if isinstance(first, tuple):
        return tuple(np.concatenate(cols) for cols in zip(*parts))
    return np.concatenate(parts)


def run_splitting(run: Callable[[np.ndarray], T], batch: np.ndarray) -> T:
    """``run(batch)``, retried on halves (recursively) when it raises ResourceLimitError."""
    try:
        return run(batch)
    except ResourceLimitError:
        if len(batch) <= 1:
            raise
    half = (len(batch) + 1) // 2
    return _join([run_splitting(run, batch[:half]), run_splitting(run, batch[half:])])
