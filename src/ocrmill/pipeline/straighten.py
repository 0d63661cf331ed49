"""A skewed page turned level before its lines are found, and the geometry found on the
level page carried back to the input's pixels.

The detector finds the lines of a skewed page less well than those of the same page level,
and every later stage (gutters, leaders, the table model, block kinds) then works on boxes
a level page would not have given. Turning the pixels level once (one resampling, as a
scanner's deskew does) makes a skewed page read as the level one does; the boxes a result
carries are mapped back, so they still sit on the input's words.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ocrmill.pipeline.layout import skew_angle, voting_lines

# Pages skewed by less than this (radians) are read as they stand: at 0.3 degrees a line
# across a 300-dpi A4 page (2,480 px) rises 13 px, a third of a 10-pt line's height, and the
# layout levels its boxes itself (pipeline/layout.py). The table model's input is
# straightened above this angle too (pipeline/regions.py).
STRAIGHTEN_ABOVE = math.radians(0.3)
# Only a page of text is turned level: at least this many elongated lines, and this share
# of their length within AGREE of the page's angle. A photo of a street (ICDAR 2015) has a
# few words at many angles (at most 9 elongated lines on each of its 50 test images, and
# the whole image grown by the turn: smaller text for the detector); a skewed scan's lines
# all run one way (receipts: 12-70 lines, most agreeing within a degree).
MIN_LINES = 10
MIN_AGREEMENT = 0.5
AGREE = math.radians(1.0)


@dataclass(frozen=True, eq=False)
class Straightened:
    """A page turned level: its pixels, on a canvas grown to hold every corner, and the
    affine map (2x3) from those pixels back to the input's."""

    pixels: np.ndarray
    back: np.ndarray
    angle: float  # radians, as layout.skew_angle measured it on the input
    size: tuple[int, int]  # the input's width and height

    def to_input(self, points: np.ndarray) -> np.ndarray:
        """``points`` (...x2) on the level page, in the input's pixels (kept inside them:
        a box at the level page's edge may reach past the input's)."""
        p = np.asarray(points, dtype=np.float64) @ self.back[:, :2].T + self.back[:, 2]
        return np.clip(p, 0.0, self.size)


def level_angle(quads: np.ndarray) -> float | None:
    """The angle (radians) by which a page whose upright line quads (Nx4x2) are ``quads``
    should be turned level, or None: level enough (``STRAIGHTEN_ABOVE``), or not a page of
    text whose lines run one way (``MIN_LINES``, ``MIN_AGREEMENT``)."""
    if len(quads) < MIN_LINES:
        return None
    angle = skew_angle(quads)
    if abs(angle) <= STRAIGHTEN_ABOVE:
        return None
    direction, long_side, lines = voting_lines(quads)
    if lines.sum() < MIN_LINES:
        return None
    agreeing = lines & (np.abs(direction - angle) <= AGREE)
    if long_side[agreeing].sum() < MIN_AGREEMENT * long_side[lines].sum():
        return None
    return angle


def straighten(pixels: np.ndarray, angle: float) -> Straightened:
    """``pixels`` (HxWx3) turned by ``-angle`` (radians, the page's text angle) about their
    centre, so that its lines come out level; the canvas grows so no corner is cut, and
    what turns in from outside the page takes the colour of the page's edge."""
    height, width = pixels.shape[:2]
    c, s = abs(math.cos(angle)), abs(math.sin(angle))
    out_w = math.ceil(width * c + height * s)
    out_h = math.ceil(width * s + height * c)
    turn = cv2.getRotationMatrix2D((width / 2.0, height / 2.0), math.degrees(angle), 1.0)
    turn[0, 2] += (out_w - width) / 2.0
    turn[1, 2] += (out_h - height) / 2.0
    level = cv2.warpAffine(
        np.ascontiguousarray(pixels),
        turn,
        (out_w, out_h),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=_edge_colour(pixels),
    )
    return Straightened(level, cv2.invertAffineTransform(turn), angle, (width, height))


def _edge_colour(pixels: np.ndarray) -> tuple[float, float, float]:
    """The median colour of the page's outermost rows and columns: paper, most often."""
    edge = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]], axis=0).reshape(
        -1, pixels.shape[2] if pixels.ndim == 3 else 1
    )
    colour = np.median(edge, axis=0)
    return tuple(float(v) for v in np.broadcast_to(colour, (3,)))  # type: ignore[return-value]
