"""Which detected and recognized lines to report: a line much taller than text usually is
needs a confident reading of letters or digits (pure numpy, runs wherever the engine runs).

The DB detector sometimes finds "text" in smooth gradients, textures and photos, usually as one
box over most of the frame, and the recognizer reads a glyph or two out of it. The detector's
own evidence does not separate these regions from large real text: the DB box score of such
a box (0.54-0.79, p10-p90) overlaps that of large glyphs and titles (0.70-0.92), and so does
how peaked its probability is. What separates them is the reading: large real text reads
cleanly (it is the easiest text there is; 100 % of large rendered text reads with >= 0.9
confidence), while a region that is not text reads as one or two doubtful glyphs or as
punctuation (3 %). Figures: benchmarks/results/tall_lines_20261201-094205.md.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ocrmill.config import RecOptions
from ocrmill.pipeline.geometry import quad_size


def line_heights(quads: np.ndarray) -> np.ndarray:
    """The height of each line: the shorter side of its quad (the width of a vertical line)."""
    return np.array([min(quad_size(q)) for q in quads], dtype=np.float64).reshape(-1)


def has_letters_or_digits(text: str) -> bool:
    """True when ``text`` holds a letter or digit of any script (not only punctuation)."""
    return any(ch.isalnum() for ch in text)


def keep_lines(
    quads: np.ndarray,
    texts: Sequence[tuple[str, float]],
    page_shape: tuple[int, ...],
    opts: RecOptions,
) -> np.ndarray:
    """Which lines to report: a boolean mask over ``quads`` (Nx4x2, page pixels) and their
    ``texts`` (recognized string, mean character confidence); ``page_shape`` is the page's
    ``(height, width, ...)``, e.g. its pixels' shape.

    A line is kept when it reads as a non-empty string with confidence ``>= opts.min_score``.
    A *tall* line -- taller than ``opts.tall_line`` of the page's shorter side -- must also be
    read with confidence ``>= opts.tall_line_min_score`` and contain a letter or digit.
    """
    if len(quads) != len(texts):
        raise ValueError(f"{len(quads)} quads but {len(texts)} readings")
    keep = np.zeros(len(texts), dtype=bool)
    if not len(texts):
        return keep
    tall = line_heights(quads) > opts.tall_line * min(page_shape[:2])
    for k, (text, score) in enumerate(texts):
        text = text.strip()
        if not text or score < opts.min_score:
            continue
        if tall[k] and (score < opts.tall_line_min_score or not has_letters_or_digits(text)):
            continue
        keep[k] = True
    return keep
