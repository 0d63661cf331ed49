"""Turning a skewed page level, and carrying its boxes back to the input's pixels."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from ocrmill.pipeline.straighten import level_angle, straighten


def ruled_page(degrees: float, paper: int = 255) -> np.ndarray:
    """A 400 x 600 page of one long dark bar falling ``degrees`` to the right."""
    page = np.full((400, 600, 3), paper, np.uint8)
    a = math.radians(degrees)
    start = np.array([80.0, 200.0])
    end = start + 440 * np.array([math.cos(a), math.sin(a)])
    cv2.line(page, tuple(round(v) for v in start), tuple(round(v) for v in end), (0, 0, 0), 9)
    return page


def bar_angle(page: np.ndarray) -> float:
    ys, xs = np.nonzero(page[..., 0] < 128)
    slope = np.polyfit(xs.astype(float), ys.astype(float), 1)[0]
    return math.degrees(math.atan(slope))


@pytest.mark.parametrize("degrees", [-3.0, 1.0, 4.0])
def test_the_text_angle_comes_out_level(degrees):
    page = ruled_page(degrees)
    assert bar_angle(page) == pytest.approx(degrees, abs=0.1)
    level = straighten(page, math.radians(degrees))
    assert abs(bar_angle(level.pixels)) < 0.1


@pytest.mark.parametrize("degrees", [-3.0, 4.0])
def test_points_go_back_where_they_were_and_no_corner_is_cut(degrees):
    page = ruled_page(degrees)
    level = straighten(page, math.radians(degrees))
    forward = cv2.invertAffineTransform(level.back)
    corners = np.array([[0.0, 0.0], [600.0, 0.0], [600.0, 400.0], [0.0, 400.0]])
    moved = corners @ forward[:, :2].T + forward[:, 2]
    h, w = level.pixels.shape[:2]
    assert (moved >= -0.5).all() and (moved[:, 0] <= w + 0.5).all()
    assert (moved[:, 1] <= h + 0.5).all()
    assert np.allclose(level.to_input(moved), corners, atol=1e-6)
    assert level.size == (600, 400)
    # Past the input's edge on the level page: kept inside the input.
    outside = level.to_input(np.array([[0.0, 0.0], [w, h]]))
    assert (outside >= 0).all() and (outside <= [600, 400]).all()


def test_what_turns_in_takes_the_papers_colour():
    level = straighten(ruled_page(3.0, paper=200), math.radians(3.0))
    corners = level.pixels[[0, 0, -1, -1], [0, -1, 0, -1]]
    assert (corners == 200).all()


def line_quads(angles_degrees, length=600.0, height=30.0) -> np.ndarray:
    """Line boxes (Nx4x2, clockwise from the top-left), one per angle, stacked down a page."""
    quads = []
    for i, degrees in enumerate(angles_degrees):
        a = math.radians(degrees)
        along = np.array([math.cos(a), math.sin(a)]) * length
        across = np.array([-math.sin(a), math.cos(a)]) * height
        top_left = np.array([100.0, 100.0 + 60.0 * i])
        quads.append([top_left, top_left + along, top_left + along + across, top_left + across])
    return np.array(quads)


def test_a_page_of_lines_running_one_way_is_turned_by_their_angle():
    angles = [2.0] * 12 + [1.6, 2.4, -20.0]  # a few off: a stamp, a curled line
    assert math.degrees(level_angle(line_quads(angles))) == pytest.approx(2.0, abs=0.05)


def test_a_level_page_a_few_words_or_lines_at_many_angles_are_left_as_they_stand():
    assert level_angle(line_quads([0.2] * 20)) is None  # level enough
    assert level_angle(line_quads([5.0] * 9)) is None  # a photo's few words
    scattered = [-12.0, -8.0, -5.0, -3.0, 4.0, 6.0, 9.0, 12.0, 15.0, 3.0, 2.0, 7.0]
    assert level_angle(line_quads(scattered)) is None  # a scene: no one direction
