"""Text-line orientation (0 / 180 degrees) with the PP-OCR line classifier: batching, the
decision, and the two ways the engine uses it (every line first, or doubtful lines after).

The model runs through a ``run`` callable, so this module never owns an inference session.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

from ocrmill.config import ClsOptions
from ocrmill.pipeline.normalize import line_batch, scaled_width
from ocrmill.pipeline.recognize import Reading

RunBatch = Callable[[np.ndarray], np.ndarray]

CLS_HEIGHT = 48
CLS_WIDTH = 192


def cls_batch(crops: list[np.ndarray]) -> np.ndarray:
    """Classifier input: crops at height 48, width up to 192, padded."""
    return line_batch(crops, CLS_HEIGHT, CLS_WIDTH)


def upside_down(probs: np.ndarray, thresh: float) -> np.ndarray:
    """Boolean mask of crops the classifier says are rotated 180 degrees (Nx2 softmax)."""
    probs = np.asarray(probs, dtype=np.float32).reshape(len(probs), -1)
    return (probs.argmax(axis=1) == 1) & (probs[:, 1] > thresh)


def rotate_180(crop: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(crop[::-1, ::-1])


def upside_down_flags(crops: Sequence[np.ndarray], opts: ClsOptions, run: RunBatch) -> list[bool]:
    """For each crop: does the classifier call it upside down? Crops are batched by aspect
    ratio (similar padding), ``opts.batch_size`` at a time."""
    flips = [False] * len(crops)
    order = sorted(range(len(crops)), key=lambda i: crops[i].shape[1] / max(crops[i].shape[0], 1))
    for start in range(0, len(order), opts.batch_size):
        chunk = order[start : start + opts.batch_size]
        probs = run(cls_batch([crops[i] for i in chunk]))
        for i, flip in zip(chunk, upside_down(probs, opts.thresh)):
            flips[i] = bool(flip)
    return flips


def reread_upside_down(
    crops: Sequence[np.ndarray],
    readings: list[Reading],
    opts: ClsOptions,
    run: RunBatch,
    read: Callable[[list[np.ndarray]], list[Reading]],
) -> None:
    """Classify only the doubtful readings (confidence under ``opts.doubtful_below``); read
    those the classifier calls upside down again turned by 180 degrees, and keep whichever
    reading is more confident. Updates ``readings`` in place."""
    doubtful = [i for i, r in enumerate(readings) if r.score < opts.doubtful_below]
    if not doubtful:
        return
    flips = upside_down_flags([crops[i] for i in doubtful], opts, run)
    turned = [i for i, flip in zip(doubtful, flips) if flip]
    if not turned:
        return
    again = read([rotate_180(crops[i]) for i in turned])
    for i, reading in zip(turned, again):
        if reading.score > readings[i].score:
            readings[i] = dataclasses.replace(reading, flipped=True)


def line_windows(crop: np.ndarray, limit: int) -> list[np.ndarray]:
    """Up to ``limit`` pieces of a line crop, each about as wide as the classifier's input
    at its height (4 heights), so the classifier sees glyphs at their own shape instead of
    a whole line squeezed into 192 pixels."""
    h, w = crop.shape[:2]
    step = max(1, round(h * CLS_WIDTH / CLS_HEIGHT))
    count = min(limit, max(1, round(w / step)))
    return [crop[:, k * step : min(w, (k + 1) * step)] for k in range(count)]


def turned_share(
    crops: Sequence[np.ndarray], opts: ClsOptions, run: RunBatch, max_windows: int = 64
) -> tuple[float, int]:
    """How much of a page's text the classifier calls upside down: the mean probability of
    "180 degrees" over windows of its lines (longest lines first, at most ``max_windows``
    windows), and the number of windows it is based on."""
    order = sorted(range(len(crops)), key=lambda i: -scaled_width(crops[i], CLS_HEIGHT))
    windows: list[np.ndarray] = []
    for i in order:
        if len(windows) >= max_windows:
            break
        if crops[i].shape[0] >= 4 and scaled_width(crops[i], CLS_HEIGHT) >= CLS_HEIGHT:
            windows.extend(line_windows(crops[i], max_windows - len(windows)))
    if not windows:
        return 0.0, 0
    turned = []
    for start in range(0, len(windows), opts.batch_size):
        probs = np.asarray(run(cls_batch(windows[start : start + opts.batch_size])))
        probs = probs.reshape(len(probs), -1)
        turned.extend(probs[:, 1] / np.maximum(probs[:, :2].sum(axis=1), 1e-6))
    return float(np.mean(turned)), len(windows)
