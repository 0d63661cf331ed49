"""Cut text lines out of a page: perspective crops of detected quadrilaterals."""

from __future__ import annotations

import cv2
import numpy as np

from ocrmill.pipeline.geometry import quad_size

# A crop at least this much taller than wide is vertical text or a rotated line:
# turn it a quarter so the recognizer sees a horizontal line.
TALL_RATIO = 1.5


def crop_quad(page: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """Perspective-rectify the ordered quad (tl, tr, br, bl) of ``page`` into an upright crop.

    Tall crops (height >= 1.5 x width) are rotated 90 degrees counter-clockwise.
    """
    width, height = quad_size(quad)
    w = max(1, round(width))
    h = max(1, round(height))
    target = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(np.asarray(quad, dtype=np.float32), target)
    crop = cv2.warpPerspective(
        page, matrix, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
    )
    if h >= TALL_RATIO * w:
        crop = np.ascontiguousarray(np.rot90(crop))
    return crop


def crop_quads(page: np.ndarray, quads: np.ndarray) -> list[np.ndarray]:
    return [crop_quad(page, q) for q in quads]
