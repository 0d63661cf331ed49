"""Axis-aligned pixel boxes of the result tree's quads, as hOCR and ALTO state them."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

BBox = tuple[int, int, int, int]  # x0, y0, x1, y1 in whole pixels (x1, y1 exclusive)


def bbox(points: Sequence[Sequence[float]], width: int, height: int) -> BBox:
    """The smallest whole-pixel box holding ``points``, clipped to the page."""
    xs = [float(p[0]) for p in points]
    ys = [float(p[1]) for p in points]
    x0 = max(0, math.floor(min(xs)))
    y0 = max(0, math.floor(min(ys)))
    x1 = min(width, max(x0 + 1, math.ceil(max(xs))))
    y1 = min(height, max(y0 + 1, math.ceil(max(ys))))
    return x0, y0, x1, y1


def union(boxes: Iterable[BBox]) -> BBox:
    boxes = list(boxes)
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )
