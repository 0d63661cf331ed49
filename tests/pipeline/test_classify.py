"""The line classifier's page vote: windows of lines, soft votes averaged."""

from __future__ import annotations

import numpy as np
import pytest

from ocrmill.config import ClsOptions
from ocrmill.pipeline import classify


def test_line_windows_keep_the_glyphs_shape():
    crop = np.zeros((24, 500, 3), np.uint8)
    windows = classify.line_windows(crop, limit=10)
    assert len(windows) == 5  # 500 / (24 * 192 / 48) ~ 5.2
    assert all(w.shape[0] == 24 and w.shape[1] <= 96 for w in windows)
    assert len(classify.line_windows(crop, limit=2)) == 2
    assert len(classify.line_windows(np.zeros((24, 30, 3), np.uint8), limit=4)) == 1


def test_turned_share_averages_soft_votes_over_windows_of_the_longest_lines():
    crops = [np.zeros((20, 400, 3), np.uint8), np.zeros((20, 60, 3), np.uint8)]
    batches: list[int] = []

    def run(batch: np.ndarray) -> np.ndarray:
        batches.append(len(batch))
        return np.tile([[0.2, 0.8]], (len(batch), 1))

    share, windows = classify.turned_share(crops, ClsOptions(batch_size=4), run, max_windows=6)
    assert windows == 6 and sum(batches) == 6 and max(batches) <= 4
    assert share == pytest.approx(0.8)


def test_turned_share_without_usable_lines():
    tiny = [np.zeros((2, 50, 3), np.uint8), np.zeros((40, 20, 3), np.uint8)]
    assert classify.turned_share(tiny, ClsOptions(), lambda b: b) == (0.0, 0)
