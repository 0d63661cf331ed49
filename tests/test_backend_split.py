"""Out-of-memory handling: batches split and retried, one-item OOM reported, backend reused."""

from __future__ import annotations

import numpy as np
import pytest

from ocrmill.backends.split import run_splitting
from ocrmill.errors import ResourceLimitError

from .conftest import WrappedBackend, render_page


class OomAbove:
    """A fake backend that 'runs out of memory' on batches larger than ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.calls: list[int] = []

    def run(self, batch: np.ndarray) -> np.ndarray:
        self.calls.append(len(batch))
        if len(batch) > self.limit:
            raise ResourceLimitError(f"out of memory on a batch of {len(batch)}")
        return batch.sum(axis=(1, 2, 3))[:, None] * 2.0

    def run_top1(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = self.run(batch)
        return out.astype(np.int64), out.astype(np.float32)


def _batch(n: int) -> np.ndarray:
    return np.arange(n * 6, dtype=np.float32).reshape(n, 1, 2, 3)


@pytest.mark.parametrize("n, limit", [(32, 5), (7, 1), (8, 8), (13, 3)])
def test_split_results_equal_one_big_run(n, limit):
    backend = OomAbove(limit)
    out = run_splitting(backend.run, _batch(n))
    assert np.array_equal(out, OomAbove(10**6).run(_batch(n)))
    assert max(c for c in backend.calls if c <= limit) <= limit
    assert sum(c for c in backend.calls if c <= limit) == n  # every item ran exactly once


def test_split_works_for_tuple_outputs():
    backend = OomAbove(2)
    idx, best = run_splitting(backend.run_top1, _batch(9))
    ref_idx, ref_best = OomAbove(100).run_top1(_batch(9))
    assert np.array_equal(idx, ref_idx) and np.array_equal(best, ref_best)


def test_a_single_item_that_does_not_fit_raises_and_the_backend_still_works():
    backend = OomAbove(0)
    with pytest.raises(ResourceLimitError):
        run_splitting(backend.run, _batch(4))
    backend.limit = 4
    assert run_splitting(backend.run, _batch(4)).shape == (4, 1)


def test_engine_splits_recognition_batches_on_oom(engine):
    """The real engine with a recognizer that fails above 1 crop reads the same text."""
    page = np.asarray(render_page([f"line number {i} of the page" for i in range(8)], size=24))
    expected = engine.read(page).text
    real = engine._rec
    calls: list[int] = []

    def limited(batch):
        calls.append(len(batch))
        if len(batch) > 1:
            raise ResourceLimitError("CUDA out of memory (fake)")
        return real.run(batch)

    engine._rec = WrappedBackend(real, limited)
    try:
        assert engine.read(page).text == expected
        assert any(c > 1 for c in calls) and calls.count(1) >= 8
    finally:
        engine._rec = real


def test_engine_reports_resource_limit_when_one_crop_does_not_fit(engine):
    from ocrmill.results import PageFailure

    page = np.asarray(render_page(["one line"], size=24))
    real = engine._rec

    def never(batch):
        raise ResourceLimitError("CUDA out of memory (fake)")

    engine._rec = WrappedBackend(real, never)
    try:
        [result] = engine.read_many([page], names=["big.png"])
    finally:
        engine._rec = real
    assert isinstance(result, PageFailure)
    assert result.code == "resource_limit" and "out of memory" in result.message
