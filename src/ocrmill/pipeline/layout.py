"""Reading order of detected lines: rows top-to-bottom, left-to-right within a row."""

from __future__ import annotations

import numpy as np


def reading_order(quads: np.ndarray) -> list[int]:
    """Indices of ``quads`` (Nx4x2) in reading order.

    Boxes are taken top to bottom by their vertical centre; a box joins the current row
    when its centre lies within half a line height of the row's centre (so a row survives
    slight skew and mixed font sizes). Rows are read left to right.
    """
    n = len(quads)
    if n == 0:
        return []
    q = np.asarray(quads, dtype=np.float32)
    cy = q[:, :, 1].mean(axis=1)
    heights = np.maximum(q[:, :, 1].max(axis=1) - q[:, :, 1].min(axis=1), 1.0)
    left = q[:, :, 0].min(axis=1)
    rows: list[list[int]] = []
    row_cy = row_h = 0.0
    for i in np.argsort(cy, kind="stable"):
        i = int(i)
        if rows and abs(cy[i] - row_cy) <= 0.5 * min(row_h, float(heights[i])):
            rows[-1].append(i)
            k = len(rows[-1])
            row_cy += (cy[i] - row_cy) / k
            row_h += (float(heights[i]) - row_h) / k
        else:
            rows.append([i])
            row_cy, row_h = float(cy[i]), float(heights[i])
    order: list[int] = []
    for row in rows:
        order.extend(sorted(row, key=lambda j: float(left[j])))
    return order
