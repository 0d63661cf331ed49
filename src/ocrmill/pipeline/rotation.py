"""Page rotation (0, 90, 180 or 270 degrees), decided from the page's own evidence, and the
exact coordinate maps between the input image and its upright frame.

``rotation`` is how far the content is turned counter-clockwise from upright: turning the
input clockwise by that much makes it upright. The page's pixels are never resampled: a
sideways page is detected again on ``np.rot90`` of its pixels (an exact permutation) and
the boxes mapped back with :func:`from_upright`; their corners then start at the text's
top-left in the upright frame, so the perspective crops come out upright. An upside-down
page only has its quads' corners rolled (:func:`turn_over`).

Two pieces of evidence, each behind a gate (a false turn of an upright page is worse than
none):

* the axis (0/180 or 90/270) from the shapes of the detected lines: a sideways page's long
  lines run vertically (:func:`sideways`);
* the direction (0 or 180 within that axis): the engine reads the page in the axis's
  first frame; a page read with low confidence (:func:`doubtful`) is shown to the
  orientation classifier, window by window of its lines (its soft votes, averaged), and
  when it calls the page upside down (:func:`upside_down`) the page is seen turned
  (:func:`turn_over`), its lines read again, and the turn kept only if most of its text
  then reads best as the turned page stands (:func:`confirmed`): the recognizer confirms
  the classifier. A sideways page is shown to the classifier before it is read (its lines
  are then read once, the right way up); when the page it turned reads doubtful, the
  turn is undone the same way, by the recognizer.

On the evaluation images this turns none of 104 upright images and gets every turned
page and receipt right (benchmarks/results/layout_20261201-100637.md, and
layout_20261201-sideways-first.md with sideways pages decided before reading); a 4-way
page-orientation model measured against it turned 12 upright images
(benchmarks/results/page_orientation_model_20261201-094018.md).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import numpy as np

from ocrmill.pipeline.layout import ELONGATED, line_directions
from ocrmill.pipeline.recognize import Reading

ROTATIONS = (0, 90, 180, 270)

# Sideways: at least this share of the elongated lines' length runs vertically (more than
# 45 degrees off horizontal), over at least this many elongated lines.
SIDEWAYS_SHARE = 0.75
SIDEWAYS_MIN_LINES = 3
# A page read with less confidence than this (and at least this many characters) may be
# upside down; the classifier then looks at windows of its lines, and the page is turned
# when their mean "180 degrees" probability reaches TURN_SHARE over at least
# TURN_MIN_WINDOWS windows, and the turned page's lines then read best as they stand for
# at least TURN_SHARE of its text.
DOUBTFUL_PAGE = 0.85
TURN_MIN_CHARS = 12
TURN_SHARE = 0.75
TURN_MIN_WINDOWS = 3
# A page that stands as detected has this many of its longest lines read first: where they
# read doubtful and the classifier calls the page upside down, it is turned over before
# the rest is read (see :func:`probe_lines`).
PROBE_LINES = 8


def vertical_share(quads: np.ndarray) -> tuple[float, int, int]:
    """Of the page's elongated lines (long side >= ``ELONGATED`` x short side): the share of
    their length that runs vertically (more than 45 degrees off horizontal; 0 without
    any), how many there are, and how many of them run vertically."""
    if len(quads) == 0:
        return 0.0, 0, 0
    angle, long_side, short_side = line_directions(quads)
    elongated = long_side >= ELONGATED * np.maximum(short_side, 1e-6)
    vertical = elongated & (np.abs(angle) > math.pi / 4)
    total = float(long_side[elongated].sum())
    share = float(long_side[vertical].sum()) / total if total > 0 else 0.0
    return share, int(elongated.sum()), int(vertical.sum())


def sideways(quads: np.ndarray) -> bool:
    """Whether the page's text runs vertically (rotation 90 or 270): most of the length of
    its elongated lines is vertical (:func:`vertical_share`)."""
    share, _, vertical = vertical_share(quads)
    return vertical >= SIDEWAYS_MIN_LINES and share >= SIDEWAYS_SHARE


def to_upright(points: np.ndarray, rotation: int, width: int, height: int) -> np.ndarray:
    """Points (...x2) of a ``width`` x ``height`` input in its upright frame (an exact
    permutation of coordinates, the input turned clockwise by ``rotation``)."""
    p = np.asarray(points, dtype=np.float64)
    x, y = p[..., 0], p[..., 1]
    if rotation == 0:
        return p.copy()
    if rotation == 90:
        return np.stack([height - y, x], axis=-1)
    if rotation == 180:
        return np.stack([width - x, height - y], axis=-1)
    if rotation == 270:
        return np.stack([y, width - x], axis=-1)
    raise ValueError(f"rotation must be one of {ROTATIONS}, got {rotation}")


def from_upright(points: np.ndarray, rotation: int, width: int, height: int) -> np.ndarray:
    """The inverse of :func:`to_upright`: upright-frame points back in input pixels."""
    p = np.asarray(points, dtype=np.float64)
    x, y = p[..., 0], p[..., 1]
    if rotation == 0:
        return p.copy()
    if rotation == 90:
        return np.stack([y, height - x], axis=-1)
    if rotation == 180:
        return np.stack([width - x, height - y], axis=-1)
    if rotation == 270:
        return np.stack([width - y, x], axis=-1)
    raise ValueError(f"rotation must be one of {ROTATIONS}, got {rotation}")


def upright_share(readings: Sequence[Reading]) -> tuple[float, int]:
    """How much of the page's text read best as it stands (not turned by the line
    classifier): the confidence-weighted share of characters on lines read unturned, and
    the number of characters."""
    chars = np.array([len(r.text.strip()) for r in readings], dtype=np.float64)
    weight = chars * np.array([r.score for r in readings], dtype=np.float64)
    total = float(weight.sum())
    if total <= 0:
        return 0.0, 0
    kept = float(weight[[not r.flipped for r in readings]].sum())
    return kept / total, int(chars.sum())


def doubtful(readings: Sequence[Reading]) -> bool:
    """Whether a page read as it stands may be upside down: it has some text, and its lines
    read as they stand carry less than ``DOUBTFUL_PAGE`` of its confidence-weighted
    characters (a line the classifier had to turn counts for nothing), where an upright
    page of print reads at 0.95 or more."""
    chars = np.array([len(r.text.strip()) for r in readings], dtype=np.float64)
    if chars.sum() < TURN_MIN_CHARS:
        return False
    as_stood = np.array([0.0 if r.flipped else r.score for r in readings])
    return float(np.dot(chars, as_stood) / chars.sum()) < DOUBTFUL_PAGE


def confirmed(readings: Sequence[Reading]) -> bool:
    """After a turn and a second reading: most of the text (``TURN_SHARE``, weighted by
    confidence) now reads best as the turned page stands."""
    share, chars = upright_share(readings)
    return chars >= TURN_MIN_CHARS and share >= TURN_SHARE


def probe_lines(crops: Sequence[np.ndarray], count: int = PROBE_LINES) -> list[int]:
    """The indices of a page's ``count`` longest lines (by width at a common height), in
    page order: read before the rest, they tell whether the page may stand upside down.
    An upside-down page is then turned over and detected again before its other lines are
    read, instead of being read whole, found doubtful, and detected and read again."""
    widths = [c.shape[1] / max(c.shape[0], 1) for c in crops]
    longest = sorted(range(len(crops)), key=lambda i: -widths[i])[:count]
    return sorted(longest)


def longest_boxes(quads: np.ndarray, count: int) -> np.ndarray:
    """The ``count`` boxes of ``quads`` (Nx4x2) with the longest long side, longest first:
    enough of a page's text for the classifier, cut without cutting every line."""
    q = np.asarray(quads, dtype=np.float64).reshape(-1, 4, 2)
    sides = np.linalg.norm(q - np.roll(q, -1, axis=1), axis=2)  # N x 4
    return np.asarray(quads)[np.argsort(-sides.max(axis=1), kind="stable")[:count]]


def sideways_turn(turned_share: float, windows: int) -> int | None:
    """A sideways page's turn from the classifier's look at the lines found on it as it
    stands, each cut as if the page were turned by 270 degrees: 90 where it clearly calls
    them upside down (``upside_down``), 270 where it clearly does not (a share of at most
    1 - ``TURN_SHARE``), and None in between: the page is then detected again at 270 and
    its better boxes looked at before reading."""
    if upside_down(turned_share, windows):
        return 90
    if windows >= TURN_MIN_WINDOWS and turned_share <= 1.0 - TURN_SHARE:
        return 270
    return None


def upside_down(turned_share: float, windows: int) -> bool:
    """The classifier's verdict on a doubtful page: the mean "180 degrees" probability over
    windows of its lines (see ``classify.turned_share``) passes ``TURN_SHARE``, over at
    least ``TURN_MIN_WINDOWS`` windows."""
    return windows >= TURN_MIN_WINDOWS and turned_share >= TURN_SHARE


def turn_over(
    quads: np.ndarray, crops: Sequence[np.ndarray], readings: Sequence[Reading]
) -> tuple[np.ndarray, list[np.ndarray], list[Reading]]:
    """The same lines seen from the page turned by 180 degrees: quads rolled by two corners,
    crops turned, and each reading's ``flipped`` toggled (a reading made on the turned crop
    is now one of the crop as cut). Nothing is read again."""
    q = np.roll(np.asarray(quads).reshape(-1, 4, 2), 2, axis=1)
    turned = [np.ascontiguousarray(c[::-1, ::-1]) for c in crops]
    flipped = [dataclasses.replace(r, flipped=not r.flipped) for r in readings]
    return q, turned, flipped


def reread_turned(
    crops: Sequence[np.ndarray],
    readings: list[Reading],
    read: Callable[[list[np.ndarray]], list[Reading]],
) -> None:
    """Read the lines that were read turned by 180 degrees again as cut, keeping the more
    confident reading (after :func:`turn_over`, these are the lines the classifier did not
    turn: in the page's own orientation they are upright). Updates ``readings``."""
    again = [i for i, r in enumerate(readings) if r.flipped]
    if not again:
        return
    for i, reading in zip(again, read([crops[i] for i in again])):
        if reading.score > readings[i].score:
            readings[i] = reading
