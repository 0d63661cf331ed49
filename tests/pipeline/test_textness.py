"""Which read lines are reported: the confidence floor, and the stronger evidence a line much
taller than text needs (pure function, no model)."""

from __future__ import annotations

import numpy as np
import pytest

from ocrmill.config import RecOptions
from ocrmill.pipeline import textness

PAGE_H, PAGE_W = 360, 640  # tall line: taller than 0.2 x 360 = 72 px by default


def box(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)


def keep(quads: list[np.ndarray], texts: list[tuple[str, float]], opts=None) -> list[bool]:
    stacked = np.stack(quads) if quads else np.zeros((0, 4, 2), np.float32)
    mask = textness.keep_lines(stacked, texts, (PAGE_H, PAGE_W), opts or RecOptions())
    return mask.tolist()


def test_ordinary_lines_need_only_the_confidence_floor():
    quads = [box(10, 10, 300, 40)] * 4
    texts = [("Subtitle line", 0.95), ("weak but kept", 0.72), ("too weak", 0.6), ("   ", 0.99)]
    assert keep(quads, texts) == [True, True, False, False]


def test_a_frame_sized_box_read_as_a_doubtful_glyph_is_dropped():
    frame = box(0, 0, PAGE_W - 1, PAGE_H - 1)
    assert keep([frame], [("心", 0.8)]) == [False]
    assert keep([frame], [("心", 0.8)], RecOptions(min_score=0.0)) == [False]  # video filter


def test_a_tall_line_read_confidently_is_kept():
    big_glyph = box(200, 40, 420, 320)  # 280 px of a 360 px frame
    title = box(40, 120, 600, 220)
    assert keep([big_glyph, title], [("A", 0.99), ("SALE 50%", 0.93)]) == [True, True]


def test_a_tall_line_of_punctuation_only_is_dropped():
    disc = box(250, 100, 390, 240)
    assert keep([disc, disc], [("●", 0.97), (":.", 0.95)]) == [False, False]
    small = box(10, 10, 30, 30)  # punctuation in an ordinary line is text (receipts: ":", "%")
    assert keep([small], [(":", 0.95)]) == [True]


def test_tall_is_relative_to_the_shorter_side_and_follows_the_options():
    line = box(10, 10, 600, 80)  # 70 px: below 0.2 x 360
    assert keep([line], [("Heading", 0.8)]) == [True]
    line = box(10, 10, 600, 90)  # 80 px: above
    assert keep([line], [("Heading", 0.8)]) == [False]
    assert keep([line], [("Heading", 0.8)], RecOptions(tall_line_min_score=0.75)) == [True]
    assert keep([line], [("Heading", 0.8)], RecOptions(tall_line=1.5)) == [True]  # off
    vertical = np.roll(box(300, 10, 330, 350), 1, axis=0)  # 30 px wide: an ordinary line
    assert keep([vertical], [("竖排标题", 0.8)]) == [True]


def test_the_stricter_of_both_floors_applies_to_tall_lines():
    tall = box(0, 0, 400, 200)
    assert keep([tall], [("BIG", 0.93)], RecOptions(min_score=0.95)) == [False]


def test_line_heights_are_the_shorter_sides():
    quads = np.stack([box(0, 0, 100, 20), box(0, 0, 20, 100)])
    np.testing.assert_allclose(textness.line_heights(quads), [20, 20])


def test_empty_and_mismatched_inputs():
    assert keep([], []) == []
    with pytest.raises(ValueError, match="2 quads but 1 readings"):
        textness.keep_lines(np.stack([box(0, 0, 9, 9)] * 2), [("a", 1.0)], (10, 10), RecOptions())
