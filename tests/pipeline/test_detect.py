"""DB post-processing and detector sizing on synthetic inputs (no model needed)."""

from __future__ import annotations

import numpy as np
import pytest

from ocrmill.config import DetOptions
from ocrmill.pipeline import detect


def prob_map_with(
    rects: list[tuple[int, int, int, int]], shape=(200, 400), value=0.9
) -> np.ndarray:
    prob = np.zeros(shape, dtype=np.float32)
    for x0, y0, x1, y1 in rects:
        prob[y0:y1, x0:x1] = value
    return prob


def test_db_boxes_finds_each_region_and_grows_it():
    prob = prob_map_with([(20, 30, 180, 50), (220, 120, 380, 140)])
    quads, scores = detect.db_boxes(prob, DetOptions())
    assert len(quads) == 2
    assert np.all(scores > 0.85)
    order = np.argsort(quads[:, 0, 1])
    first = quads[order[0]]
    # clockwise from top-left, and unclipped beyond the 20 px tall kernel
    assert first[0, 0] < first[1, 0] and first[0, 1] < first[3, 1]
    assert first[:, 0].min() < 20 and first[:, 0].max() > 180
    height = first[:, 1].max() - first[:, 1].min()
    assert 25 < height < 60


def test_db_boxes_drops_weak_and_tiny_regions():
    prob = prob_map_with([(20, 30, 180, 50)], value=0.4)  # above thresh, below box_thresh
    prob[100:102, 100:102] = 0.99  # 2x2 speck: below min_size
    quads, _ = detect.db_boxes(prob, DetOptions(thresh=0.3, box_thresh=0.6))
    assert len(quads) == 0


def test_db_boxes_empty_map():
    quads, scores = detect.db_boxes(np.zeros((64, 64), np.float32), DetOptions())
    assert quads.shape == (0, 4, 2) and scores.shape == (0,)


def test_db_boxes_keeps_largest_candidates_when_capped():
    rects = [(10 + 40 * i, 10, 40 + 40 * i, 20 + (i % 3) * 10) for i in range(9)]
    prob = prob_map_with(rects, shape=(100, 400))
    quads, _ = detect.db_boxes(prob, DetOptions(max_candidates=3))
    assert len(quads) == 3
    heights = sorted(float(q[:, 1].max() - q[:, 1].min()) for q in quads)
    all_quads, _ = detect.db_boxes(prob, DetOptions())
    all_heights = sorted(float(q[:, 1].max() - q[:, 1].min()) for q in all_quads)
    assert heights == all_heights[-3:]


def test_rotated_region_gives_rotated_quad():
    import cv2

    prob = np.zeros((300, 300), np.float32)
    box = cv2.boxPoints(((150, 150), (200, 20), 30)).astype(np.int32)
    cv2.fillPoly(prob, [box], 0.95)
    quads, _ = detect.db_boxes(prob, DetOptions())
    assert len(quads) == 1
    q = quads[0]
    angle = np.degrees(np.arctan2(q[1, 1] - q[0, 1], q[1, 0] - q[0, 0]))
    assert abs(angle - 30) < 3


@pytest.mark.parametrize(
    ("shape", "opts", "expected"),
    [
        ((1000, 500), DetOptions(limit_side_len=960, limit_type="max"), (960, 480)),
        ((300, 200), DetOptions(limit_side_len=960, limit_type="max"), (288, 192)),
        ((300, 200), DetOptions(limit_side_len=736, limit_type="min"), (1088, 736)),
        ((10, 10), DetOptions(), (32, 32)),
        ((20000, 1000), DetOptions(limit_side_len=736, limit_type="min"), (4000, 192)),
    ],
)
def test_det_input_size(shape, opts, expected):
    out = detect.det_input_size(*shape, opts)
    assert out == expected
    assert out[0] % 32 == 0 and out[1] % 32 == 0


def test_prepare_and_map_back_roundtrip():
    page = np.full((100, 1000, 3), 255, np.uint8)  # 10:1 strip -> padded vertically
    opts = DetOptions(limit_side_len=640)
    tensor, geo = detect.prepare_det_input(page, opts)
    assert tensor.shape[0] == 1 and tensor.shape[1] == 3
    assert tensor.dtype == np.float32 and tensor.max() <= 1.0 and tensor.min() >= -1.0
    assert geo.pad_top > 0
    # a box around page pixels (100..300, 40..60) expressed in detector coordinates
    page_quad = np.array([[100, 40], [300, 40], [300, 60], [100, 60]], np.float32)
    det_quad = page_quad.copy()
    det_quad[:, 0] /= geo.scale_x
    det_quad[:, 1] = (det_quad[:, 1] + geo.pad_top) / geo.scale_y
    back = detect.boxes_to_page(det_quad[None], geo)[0]
    np.testing.assert_allclose(back, page_quad, atol=1e-3)


def test_channel_order_is_bgr():
    page = np.zeros((64, 64, 3), np.uint8)
    page[..., 0] = 255  # pure red in RGB
    tensor, _ = detect.prepare_det_input(page, DetOptions())
    assert tensor[0, 2].mean() == pytest.approx(1.0)  # red lands in the last (R of BGR) plane
    assert tensor[0, 0].mean() == pytest.approx(-1.0)


def test_imagenet_normalization_is_per_channel_in_bgr_order():
    page = np.zeros((64, 64, 3), np.uint8)
    page[..., 0] = 255  # pure red in RGB
    tensor, _ = detect.prepare_det_input(page, DetOptions(normalize="imagenet"))
    assert tensor.shape == (1, 3, 64, 64) and tensor.dtype == np.float32
    # B and G planes hold 0, R holds 255: (x / 255 - mean) / std with BGR-ordered stats.
    assert tensor[0, 0].mean() == pytest.approx((0 - 0.485) / 0.229, rel=1e-5)
    assert tensor[0, 1].mean() == pytest.approx((0 - 0.456) / 0.224, rel=1e-5)
    assert tensor[0, 2].mean() == pytest.approx((1 - 0.406) / 0.225, rel=1e-5)


def test_detect_batched_reports_a_failed_call_instead_of_hiding_it(engine, caplog):
    """A detector call that raises leaves its pages as None (the engine then detects them
    one by one) and says so in the log; pages in other calls are detected."""
    from tests.conftest import render_page

    small = np.asarray(render_page(["Small page"], size=24, width=400))
    big = np.asarray(render_page(["A much wider page of text"], size=24, width=1200))

    def run(batch):
        if batch.shape[3] > 640:
            raise RuntimeError("device fell over")
        return engine._det.run(batch)

    found = detect.detect_batched([small, big, small], DetOptions(), run, bucket=128, max_batch=8)
    assert found[1] is None
    assert found[0] is not None and len(found[0][0]) == 1
    assert found[2] is not None and np.allclose(found[2][0], found[0][0])
    assert "device fell over" in caplog.text
