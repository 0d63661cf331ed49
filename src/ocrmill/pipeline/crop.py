"""Cut text lines out of a page: perspective crops of detected quadrilaterals, and the way
back from a point of a crop to the page."""

from __future__ import annotations

import cv2
import numpy as np

from ocrmill.pipeline.geometry import quad_size

# A crop at least this much taller than wide is vertical text or a rotated line:
# turn it a quarter so the recognizer sees a horizontal line.
TALL_RATIO = 1.5


def _crop_frame(quad: np.ndarray) -> tuple[int, int, bool]:
    """Width and height of the rectified quad, and whether the crop is turned (tall)."""
    width, height = quad_size(quad)
    w = max(1, round(width))
    h = max(1, round(height))
    return w, h, h >= TALL_RATIO * w


def _rectangle(w: int, h: int) -> np.ndarray:
    return np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)


def crop_quad(page: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """Perspective-rectify the ordered quad (tl, tr, br, bl) of ``page`` into an upright crop.

    Tall crops (height >= 1.5 x width) are rotated 90 degrees counter-clockwise.
    """
    w, h, tall = _crop_frame(quad)
    matrix = cv2.getPerspectiveTransform(np.asarray(quad, dtype=np.float32), _rectangle(w, h))
    crop = cv2.warpPerspective(
        page, matrix, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
    )
    if tall:
        crop = np.ascontiguousarray(np.rot90(crop))
    return crop


def crop_quads(page: np.ndarray, quads: np.ndarray) -> list[np.ndarray]:
    return [crop_quad(page, q) for q in quads]


def crop_to_page(quad: np.ndarray, points: np.ndarray, *, flipped: bool = False) -> np.ndarray:
    """Page coordinates of ``points`` (Nx2, x right and y down) given in the crop of ``quad``
    as the recognizer read it: as :func:`crop_quad` cut it, or turned by 180 degrees when
    ``flipped``. The exact inverse of the crop: un-flip, un-turn, inverse perspective."""
    w, h, tall = _crop_frame(quad)
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if flipped:
        cut_w, cut_h = (h, w) if tall else (w, h)
        pts = np.stack([cut_w - pts[:, 0], cut_h - pts[:, 1]], axis=1)
    if tall:  # np.rot90 put the rectified crop's point (w - y', x') at (x', y')
        pts = np.stack([w - pts[:, 1], pts[:, 0]], axis=1)
    back = cv2.getPerspectiveTransform(_rectangle(w, h), np.asarray(quad, dtype=np.float32))
    out = cv2.perspectiveTransform(pts.reshape(-1, 1, 2), back.astype(np.float64))
    return np.asarray(out, dtype=np.float64).reshape(-1, 2)
