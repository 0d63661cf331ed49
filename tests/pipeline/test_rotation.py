"""Page rotation: coordinate maps, corner order, and the decisions (pure functions)."""

from __future__ import annotations

import numpy as np
import pytest

from ocrmill.pipeline import rotation
from ocrmill.pipeline.crop import crop_quad
from ocrmill.pipeline.recognize import Reading

W, H = 120, 80


@pytest.mark.parametrize("turn", [0, 90, 180, 270])
def test_to_upright_undoes_np_rot90_exactly(turn):
    page = np.zeros((H, W), np.uint8)
    page[10, 30] = 1  # pixel centre (30.5, 10.5)
    turned = np.rot90(page, turn // 90)  # content turned counter-clockwise by `turn`
    ys, xs = np.nonzero(turned)
    h, w = turned.shape
    back = rotation.to_upright(np.array([xs[0] + 0.5, ys[0] + 0.5]), turn, w, h)
    np.testing.assert_allclose(back, [30.5, 10.5])
    np.testing.assert_allclose(rotation.from_upright(back, turn, w, h), [xs[0] + 0.5, ys[0] + 0.5])


def test_unknown_rotation_is_refused():
    with pytest.raises(ValueError, match="rotation"):
        rotation.to_upright(np.zeros(2), 45, W, H)
    with pytest.raises(ValueError, match="rotation"):
        rotation.from_upright(np.zeros(2), 45, W, H)


@pytest.mark.parametrize("turn", [90, 180, 270])
def test_quads_found_upright_crop_upright_from_the_turned_page(turn):
    page = np.full((H, W, 3), 255, np.uint8)
    page[20:40, 10:100] = 0
    page[20:40, 10:20] = 128  # a mark at the line's left end
    quad = np.array([[8, 18], [102, 18], [102, 42], [8, 42]], np.float32)
    upright_crop = crop_quad(page, quad)
    turned = np.ascontiguousarray(np.rot90(page, turn // 90))
    h, w = turned.shape[:2]
    # The quad as a detector finds it on the page turned upright, mapped back.
    crop = crop_quad(turned, rotation.from_upright(quad, turn, w, h).astype(np.float32))
    assert crop.shape == upright_crop.shape
    # The same crop, up to a pixel (OpenCV puts pixel centres on integers).
    a, b = crop.astype(int)[1:-1, 1:-1], upright_crop.astype(int)
    diffs = [
        np.abs(a - b[1 + dy : b.shape[0] - 1 + dy, 1 + dx : b.shape[1] - 1 + dx]).mean()
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
    ]
    assert min(diffs) < 3
    assert 100 < crop[12, 6].mean() < 160 and crop[12, 50].mean() < 30  # mark on the left


def box(x0, y0, x1, y1):
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def test_sideways_needs_most_elongated_lines_to_run_vertically():
    horizontal = [box(10, 10 + 30 * k, 400, 35 + 30 * k) for k in range(6)]
    vertical = [box(10 + 30 * k, 10, 35 + 30 * k, 400) for k in range(6)]
    assert not rotation.sideways(np.array(horizontal, np.float64))
    assert rotation.sideways(np.array(vertical, np.float64))
    # Two vertical lines (a sign on a pole) do not turn a page.
    assert not rotation.sideways(np.array(vertical[:2], np.float64))
    # A few vertical lines among many horizontal ones do not either.
    assert not rotation.sideways(np.array(horizontal + vertical[:3], np.float64))
    # Short boxes (square-ish words) say nothing.
    assert not rotation.sideways(np.array([box(0, 0, 30, 25)] * 8, np.float64))
    assert not rotation.sideways(np.zeros((0, 4, 2)))


def reading(text: str, score: float, flipped: bool = False) -> Reading:
    return Reading(text, score, flipped=flipped)


def test_a_confident_page_is_not_doubtful():
    page = [reading("The quick brown fox", 0.98), reading("jumps over", 0.95)]
    assert not rotation.doubtful(page)
    assert not rotation.doubtful([reading("OK", 0.2)])  # too little text to judge


def test_a_page_read_mostly_by_turning_lines_is_doubtful():
    page = [reading("The quick brown fox", 0.97, flipped=True), reading("jumps", 0.9)]
    assert rotation.doubtful(page)
    assert rotation.doubtful([reading("xq ii lnn ue", 0.6), reading("ssi nu", 0.5)])


def test_upside_down_needs_a_clear_share_over_enough_windows():
    assert rotation.upside_down(0.95, 20)
    assert not rotation.upside_down(0.6, 20)
    assert not rotation.upside_down(0.99, 2)


def test_sideways_turn_is_settled_only_when_the_classifier_is_clear():
    assert rotation.sideways_turn(0.9, 40) == 90
    assert rotation.sideways_turn(0.1, 40) == 270
    assert rotation.sideways_turn(0.5, 40) is None  # in between: looked at again at 270
    assert rotation.sideways_turn(0.72, 64) is None
    assert rotation.sideways_turn(0.0, 2) is None  # too few windows to tell
    assert rotation.sideways_turn(1.0, 2) is None


def test_probe_lines_are_the_longest_in_page_order():
    crops = [np.zeros((20, w, 3), np.uint8) for w in (100, 400, 50, 300, 400, 10)]
    assert rotation.probe_lines(crops, 3) == [1, 3, 4]
    assert rotation.probe_lines(crops[:2], 8) == [0, 1]
    assert rotation.probe_lines([], 8) == []
    tall = [np.zeros((40, 200, 3), np.uint8), np.zeros((10, 150, 3), np.uint8)]
    assert rotation.probe_lines(tall, 1) == [1]  # by width at a common height


def test_longest_boxes_come_longest_first_whatever_their_direction():
    def box(x, y, w, h):
        return [[x, y], [x + w, y], [x + w, y + h], [x, y + h]]

    quads = np.array([box(0, 0, 100, 10), box(0, 20, 10, 300), box(0, 40, 200, 12)], np.float32)
    assert rotation.longest_boxes(quads, 2).tolist() == [quads[1].tolist(), quads[2].tolist()]
    assert len(rotation.longest_boxes(quads, 10)) == 3
    assert rotation.longest_boxes(np.zeros((0, 4, 2), np.float32), 4).shape == (0, 4, 2)


def test_confirmed_when_most_text_reads_best_as_the_turned_page_stands():
    good = [reading("The quick brown fox", 0.97), reading("jumps", 0.6, flipped=True)]
    assert rotation.confirmed(good)
    bad = [reading("The quick brown fox", 0.97, flipped=True), reading("jumps", 0.9)]
    assert not rotation.confirmed(bad)


def test_turn_over_rolls_quads_turns_crops_and_toggles_flips():
    quads = np.array([box(0, 0, 10, 5)], np.float32)
    crop = np.arange(6, dtype=np.uint8).reshape(2, 3)
    q, crops, readings = rotation.turn_over(quads, [crop], [reading("ab", 0.9)])
    np.testing.assert_array_equal(q[0], [[10, 5], [0, 5], [0, 0], [10, 0]])
    np.testing.assert_array_equal(crops[0], crop[::-1, ::-1])
    assert readings[0].flipped and readings[0].text == "ab"


def test_reread_turned_keeps_the_more_confident_reading():
    crops = [np.zeros((2, 2), np.uint8), np.ones((2, 2), np.uint8), np.zeros((2, 2), np.uint8)]
    readings = [reading("x", 0.3, True), reading("kept", 0.9), reading("y", 0.95, True)]
    seen: list[int] = []

    def read(batch):
        seen.append(len(batch))
        return [reading("better", 0.8), reading("worse", 0.5)]

    rotation.reread_turned(crops, readings, read)
    assert seen == [2]
    assert [r.text for r in readings] == ["better", "kept", "y"]
    assert not readings[0].flipped and readings[2].flipped
