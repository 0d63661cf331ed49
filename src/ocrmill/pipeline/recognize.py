"""Recognition batching and CTC decoding for PP-OCR recognizers.

Crops keep their own width (no fixed minimum such as 320 px): they are sorted by width
and grouped so that padding waste and batch memory stay bounded.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ocrmill.config import RecOptions
from ocrmill.pipeline.normalize import line_batch, scaled_width

REC_HEIGHT = 48


def width_bucket(width: int, min_step: int = 16) -> int:
    """Round ``width`` up to a geometric grid (steps of ~1/8 of the width, at least
    ``min_step``), so padding wastes at most ~12% and few distinct shapes occur."""
    step = max(min_step, 1 << max(0, width.bit_length() - 4))
    return math.ceil(width / step) * step


def rec_width(crop: np.ndarray, opts: RecOptions, height: int = REC_HEIGHT) -> int:
    """Padded input width for one crop: its scaled width, clamped, rounded up to its bucket.

    It depends on the crop alone, never on the other crops of a batch, so a line reads
    the same whether it is recognized alone or batched with others.
    """
    w = min(max(scaled_width(crop, height), opts.min_width), opts.max_width)
    return min(width_bucket(w, opts.width_step), opts.max_width)


def plan_rec_batches(
    widths: Sequence[int], opts: RecOptions, height: int = REC_HEIGHT
) -> list[list[int]]:
    """Group crop indices of equal padded width into batches, narrowest first.

    A batch holds at most ``max_batch_size`` crops and ``max_batch_pixels`` input pixels
    (but always at least one crop).
    """
    order = sorted(range(len(widths)), key=lambda i: widths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        if current and (
            widths[i] != widths[current[0]]
            or len(current) + 1 > opts.max_batch_size
            or (len(current) + 1) * widths[i] * height > opts.max_batch_pixels
        ):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def rec_batch(crops: list[np.ndarray], width: int, height: int = REC_HEIGHT) -> np.ndarray:
    return line_batch(crops, height, width)


def ctc_greedy_decode(probs: np.ndarray, vocabulary: Sequence[str]) -> list[tuple[str, float]]:
    """Greedy CTC decoding of a BxTxC probability batch, vectorized over the batch.

    Repeated classes collapse, the blank (class 0) is dropped; a line's score is the mean
    of the kept steps' probabilities (0.0 for an empty line).
    """
    return decode_indices(*top1(probs), vocabulary)


def top1(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per time step of a BxTxC batch: the best class (BxT) and its probability (BxT)."""
    idx = probs.argmax(axis=2)
    best = np.take_along_axis(probs, idx[..., None], axis=2)[..., 0]
    return idx, best


def decode_indices(
    idx: np.ndarray, best: np.ndarray, vocabulary: Sequence[str]
) -> list[tuple[str, float]]:
    """CTC collapse of per-step class indices ``idx`` (BxT) with their probabilities."""
    keep = idx != 0
    keep[:, 1:] &= idx[:, 1:] != idx[:, :-1]
    counts = keep.sum(axis=1)
    sums = np.where(keep, best, 0.0).sum(axis=1)
    scores = np.divide(sums, counts, out=np.zeros_like(sums, dtype=np.float64), where=counts > 0)
    out: list[tuple[str, float]] = []
    for row, mask, score in zip(idx, keep, scores):
        text = "".join(vocabulary[c] for c in row[mask])
        out.append((text, float(score)))
    return out
