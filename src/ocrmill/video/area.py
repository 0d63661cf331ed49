"""Text-area ratio of a frame: the union of text polygons over the frame area (parent side).

Polygons are rasterized onto one uint8 mask with ``cv2.fillPoly``, so where boxes overlap
the area is counted once (summing box areas counts it twice and can exceed 1).

Tolerance: the mask's long side is always :data:`RASTER_SIDE` pixels (frames are scaled
up or down to it; vertices keep 4 bits of sub-pixel precision). ``fillPoly`` fills every
mask pixel a polygon touches, edges included, so each polygon is over-counted by about
half its perimeter in mask pixels, plus about one pixel per corner. For a 300 x 30 pixel
text line on a 1920 x 1080 frame that is +0.03 % of the frame; for any frame the error is
at most ``sum(perimeter_i * s / 2 + 4) / mask_pixels`` with ``s = RASTER_SIDE / long side``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import cv2
import numpy as np

RASTER_SIDE = 1024
"""Long side of the rasterization mask in pixels (about 1 MB of memory at most)."""

_SHIFT = 4  # fractional bits of the vertex coordinates given to fillPoly

Polygon = Sequence[Sequence[float]]


def union_mask(
    polygons: Iterable[Polygon], width: int, height: int, *, side: int = RASTER_SIDE
) -> tuple[np.ndarray, float]:
    """The union of ``polygons`` (pixel coordinates of a ``width`` x ``height`` frame)
    rasterized on a mask whose long side is ``side``; returns the mask and its scale."""
    if width <= 0 or height <= 0:
        raise ValueError(f"frame size must be positive, got {width} x {height}")
    scale = side / max(width, height)
    mask = np.zeros((max(1, round(height * scale)), max(1, round(width * scale))), np.uint8)
    points = [
        np.round(np.asarray(poly, dtype=np.float64).reshape(-1, 2) * scale * (1 << _SHIFT)).astype(
            np.int32
        )
        for poly in polygons
    ]
    for p in points:
        # One call per polygon: fillPoly given several polygons fills them even-odd, so
        # an overlap would become a hole.
        if len(p) >= 3:
            cv2.fillPoly(mask, [p], 1, lineType=cv2.LINE_8, shift=_SHIFT)
    return mask, scale


def text_area_ratio(
    polygons: Iterable[Polygon], width: int, height: int, *, side: int = RASTER_SIDE
) -> float:
    """Area of the union of ``polygons`` divided by the frame area, in [0, 1].

    Parts of polygons outside the frame do not count. See the module docstring for the
    rasterization tolerance.
    """
    mask, _ = union_mask(polygons, width, height, side=side)
    return float(np.count_nonzero(mask)) / mask.size
