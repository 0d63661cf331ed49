"""Geometry shared by the stages: quadrilateral point order, side lengths and areas, and
points turned about a centre."""

from __future__ import annotations

import math

import numpy as np


def order_quad(points: np.ndarray) -> np.ndarray:
    """Return 4 points clockwise (in image coordinates, y down) starting at the top-left.

    The top-left is the point with the smallest ``x + y`` among the clockwise sequence,
    which is stable for the slightly rotated boxes text detection produces.
    """
    pts = np.asarray(points, dtype=np.float32).reshape(4, 2)
    center = pts.mean(axis=0)
    angles = np.arctan2(pts[:, 1] - center[1], pts[:, 0] - center[0])
    pts = pts[np.argsort(angles)]  # increasing angle = clockwise when y points down
    start = int(np.argmin(pts[:, 0] + pts[:, 1]))
    return np.roll(pts, -start, axis=0)


def quad_size(quad: np.ndarray) -> tuple[float, float]:
    """(width, height) of an ordered quad: the longer of each pair of opposite sides."""
    q = np.asarray(quad, dtype=np.float32)
    width = max(np.linalg.norm(q[0] - q[1]), np.linalg.norm(q[3] - q[2]))
    height = max(np.linalg.norm(q[0] - q[3]), np.linalg.norm(q[1] - q[2]))
    return float(width), float(height)


def polygon_area(points: np.ndarray) -> float:
    """Area of a simple polygon (shoelace formula)."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    x, y = p[:, 0], p[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0)


def polygon_perimeter(points: np.ndarray) -> float:
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return float(np.linalg.norm(p - np.roll(p, -1, axis=0), axis=1).sum())


def rotate_points(points: np.ndarray, angle: float, center: tuple[float, float]) -> np.ndarray:
    """``points`` (...x2) turned by ``-angle`` about ``center``: a line at ``angle`` comes
    out horizontal. Coordinates only; no pixels are touched."""
    c, s = math.cos(angle), math.sin(angle)
    p = np.asarray(points, dtype=np.float64) - center
    x = p[..., 0] * c + p[..., 1] * s
    y = -p[..., 0] * s + p[..., 1] * c
    return np.stack([x, y], axis=-1) + center
