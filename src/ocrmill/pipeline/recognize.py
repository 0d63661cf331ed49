"""Recognition for PP-OCR recognizers: batching, CTC decoding with character positions, and
the recognition loop over a page's (or several pages') crops.

Crops keep their own width (no fixed minimum such as 320 px): they are sorted by width
and grouped so that padding waste and batch memory stay bounded. The model runs through a
``run_top1`` callable, so this module never owns an inference session.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ocrmill.backends.base import top1
from ocrmill.config import RecOptions
from ocrmill.errors import ModelError
from ocrmill.pipeline.normalize import line_batch, scaled_width

REC_HEIGHT = 48

RunTop1 = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
"""A recognizer call: an NCHW batch in; per time step the best class and its probability
(both BxT) out."""


@dataclass(frozen=True)
class Reading:
    """What the recognizer read in one crop, and where in the crop it read each character.

    ``spans[i]`` are the first and last CTC time steps of the run that produced character
    ``i`` of ``text`` (a vocabulary entry of several characters repeats its span);
    ``char_scores[i]`` its probability. A time step covers ``step_px`` pixels of the crop
    as it was read, from its left edge; ``flipped`` says it was read turned by 180 degrees
    (so, in the crop as cut from the page, positions count from the right edge).
    """

    text: str
    score: float
    spans: tuple[tuple[int, int], ...] = ()
    char_scores: tuple[float, ...] = ()
    step_px: float = 0.0
    flipped: bool = False


NO_READING = Reading("", 0.0)


def width_bucket(width: int, min_step: int = 16, per_octave: int = 8) -> int:
    """Round ``width`` up to a geometric grid of ``per_octave`` steps per doubling (a power
    of two; at least ``min_step`` px), so padding wastes at most ~1/``per_octave`` of the
    width and few distinct shapes occur."""
    if per_octave < 1 or per_octave & (per_octave - 1):
        raise ValueError(f"steps per octave must be a power of two, got {per_octave}")
    shift = per_octave.bit_length()  # 8 -> 4: steps of 2**(bit_length - 4)
    step = max(min_step, 1 << max(0, width.bit_length() - shift))
    return math.ceil(width / step) * step


def rec_width(crop: np.ndarray, opts: RecOptions, height: int = REC_HEIGHT) -> int:
    """Padded input width for one crop: its scaled width, clamped, rounded up to its bucket.

    It depends on the crop alone, never on the other crops of a batch, so a line reads
    the same whether it is recognized alone or batched with others.
    """
    w = min(max(scaled_width(crop, height), opts.min_width), opts.max_width)
    return min(width_bucket(w, opts.width_step, opts.steps_per_octave), opts.max_width)


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
    idx, best = top1(probs)
    readings = decode_readings(idx, best, vocabulary, [0.0] * len(idx))
    return [(r.text, r.score) for r in readings]


def line_scores(idx: np.ndarray, best: np.ndarray) -> np.ndarray:
    """Per row of a BxT batch: the score :func:`decode_readings` gives its line (the mean
    probability of the steps that start a kept character; 0.0 when none is kept)."""
    starts = np.ones(idx.shape, dtype=bool)
    starts[:, 1:] = idx[:, 1:] != idx[:, :-1]
    kept = starts & (idx != 0)
    count = kept.sum(axis=1)
    total = np.where(kept, best, 0.0).sum(axis=1, dtype=np.float64)
    return np.divide(total, count, out=np.zeros(len(idx)), where=count > 0)


def decode_readings(
    idx: np.ndarray, best: np.ndarray, vocabulary: Sequence[str], step_px: Sequence[float]
) -> list[Reading]:
    """Greedy CTC collapse of per-step best classes ``idx`` (BxT) with their probabilities
    ``best``: repeats collapse, the blank (class 0) is dropped, a line's score is the mean of
    its kept steps' probabilities (0.0 when empty). Each character keeps its time steps;
    ``step_px[b]``: crop pixels per time step of row ``b``."""
    out: list[Reading] = []
    last = idx.shape[1] - 1
    for row, probs, px, score in zip(idx, best, step_px, line_scores(idx, best).tolist()):
        starts = np.flatnonzero(np.r_[True, row[1:] != row[:-1]])
        ends = np.r_[starts[1:] - 1, last]
        kept = row[starts] != 0
        starts, ends = starts[kept], ends[kept]
        if not len(starts):
            out.append(dataclasses.replace(NO_READING, step_px=float(px)))
            continue
        chars: list[str] = []
        spans: list[tuple[int, int]] = []
        scores: list[float] = []
        for s, e in zip(starts.tolist(), ends.tolist()):
            token = vocabulary[row[s]]
            chars.append(token)
            spans.extend([(s, e)] * len(token))
            scores.extend([float(probs[s])] * len(token))
        out.append(Reading("".join(chars), score, tuple(spans), tuple(scores), float(px)))
    return out


def recognize_crops(
    crops: Sequence[np.ndarray], opts: RecOptions, run_top1: RunTop1, vocabulary: Sequence[str]
) -> list[Reading]:
    """Read every crop at its own padded width; narrow crops read with low confidence are
    read again at ``opts.retry_width`` and the more confident reading is kept."""
    widths = [rec_width(c, opts) for c in crops]
    readings = read_at_widths(crops, widths, opts, run_top1, vocabulary)
    retry = [
        i
        for i, r in enumerate(readings)
        if r.score < opts.retry_below and widths[i] < opts.retry_width
    ]
    if retry:
        again = read_at_widths(
            [crops[i] for i in retry], [opts.retry_width] * len(retry), opts, run_top1, vocabulary
        )
        for i, second in zip(retry, again):
            if second.score > readings[i].score:
                readings[i] = second
    return readings


def read_at_widths(
    crops: Sequence[np.ndarray],
    widths: Sequence[int],
    opts: RecOptions,
    run_top1: RunTop1,
    vocabulary: Sequence[str],
) -> list[Reading]:
    """Read each crop padded to its given width, in batches of equal width."""
    readings: list[Reading] = [NO_READING] * len(crops)
    for batch in plan_rec_batches(widths, opts):
        width = max(widths[i] for i in batch)
        tensor = rec_batch([crops[i] for i in batch], width)
        idx, best = run_top1(tensor)
        if len(idx) != len(batch):
            raise ModelError(f"recognizer returned {len(idx)} rows for a batch of {len(batch)}")
        steps = max(1, idx.shape[1])
        step_px = [
            width / steps * crops[i].shape[1] / min(width, scaled_width(crops[i], REC_HEIGHT))
            for i in batch
        ]
        for i, reading in zip(batch, decode_readings(idx, best, vocabulary, step_px)):
            readings[i] = reading
    return readings
