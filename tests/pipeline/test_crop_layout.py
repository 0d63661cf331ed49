"""Crop geometry, quad ordering and reading order."""

from __future__ import annotations

import numpy as np

from ocrmill.pipeline.crop import crop_quad
from ocrmill.pipeline.geometry import order_quad, quad_size
from ocrmill.pipeline.layout import reading_order


def test_order_quad_is_clockwise_from_top_left():
    shuffled = np.array([[50, 30], [10, 10], [10, 30], [50, 10]], np.float32)
    q = order_quad(shuffled)
    np.testing.assert_array_equal(q, [[10, 10], [50, 10], [50, 30], [10, 30]])


def test_crop_axis_aligned_keeps_content():
    page = np.full((100, 200, 3), 255, np.uint8)
    page[20:40, 50:150] = (10, 20, 30)
    crop = crop_quad(page, np.array([[50, 20], [150, 20], [150, 40], [50, 40]], np.float32))
    assert crop.shape == (20, 100, 3)
    assert np.abs(crop.astype(int) - [10, 20, 30]).max() <= 2


def test_crop_rectifies_a_rotated_quad():
    import cv2

    page = np.full((300, 300, 3), 255, np.uint8)
    box = cv2.boxPoints(((150, 150), (160, 30), 25))
    cv2.fillPoly(page, [box.astype(np.int32)], (0, 0, 0))
    quad = order_quad(box)
    w, h = quad_size(quad)
    crop = crop_quad(page, quad)
    assert abs(crop.shape[1] - w) <= 1 and abs(crop.shape[0] - h) <= 1
    assert crop[3:-3, 3:-3].mean() < 20  # the inside of the rotated bar is all dark


def test_tall_crop_is_turned_horizontal():
    page = np.zeros((300, 100, 3), np.uint8)
    crop = crop_quad(page, np.array([[10, 10], [40, 10], [40, 200], [10, 200]], np.float32))
    assert crop.shape[1] > crop.shape[0]


def box(x0, y0, x1, y1):
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def test_reading_order_rows_then_columns():
    quads = np.array(
        [
            box(300, 12, 400, 32),  # row 1, right (slightly lower)
            box(10, 100, 200, 120),  # row 3
            box(10, 10, 120, 30),  # row 1, left
            box(10, 50, 400, 70),  # row 2
        ],
        np.float32,
    )
    assert reading_order(quads) == [2, 0, 3, 1]


def test_reading_order_empty():
    assert reading_order(np.zeros((0, 4, 2), np.float32)) == []
