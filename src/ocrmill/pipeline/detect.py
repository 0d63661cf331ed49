"""Text detection for PP-OCR DB detectors: pre- and post-processing (pure numpy / OpenCV) and
the detection loops over one page or a batch of pages.

``prepare_det_input`` sizes and normalizes a page for the network and records the
geometry needed to map boxes back; ``db_boxes`` turns the probability map into scored
quadrilaterals; ``boxes_to_page`` maps them to the page's pixels. ``detect_page`` and
``detect_batched`` run the network through a ``run`` callable (a backend's ``run``), so
they never own an inference session.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import pyclipper

from ocrmill.config import DetOptions
from ocrmill.pipeline.geometry import order_quad, polygon_area, polygon_perimeter

STRIDE = 32

RunBatch = Callable[[np.ndarray], np.ndarray]
"""A model call: an NCHW float32 batch in, the first output out."""

Boxes = tuple[np.ndarray, np.ndarray]
"""``(quads, scores)``: Nx4x2 float32 quads in page pixels and their N box scores."""

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DetGeometry:
    """How a page was turned into the detector input: optional vertical padding, then a
    resize. Maps detector-input coordinates back to page pixels."""

    page_height: int
    page_width: int
    pad_top: int
    scale_x: float  # page pixels per detector pixel
    scale_y: float


def det_input_size(height: int, width: int, opts: DetOptions) -> tuple[int, int]:
    """Detector input (height, width): scaled by the limit policy, multiples of 32."""
    if opts.limit_type == "max":
        long_side = max(height, width)
        ratio = min(1.0, opts.limit_side_len / long_side)
    elif opts.limit_type == "min":
        short_side = min(height, width)
        ratio = max(1.0, opts.limit_side_len / short_side)
    else:  # pragma: no cover - guarded by the Literal type and config validation
        raise ValueError(f"limit_type must be 'max' or 'min', got {opts.limit_type!r}")
    ratio = min(ratio, opts.max_side_len / max(height, width))
    out_h = max(STRIDE, round(height * ratio / STRIDE) * STRIDE)
    out_w = max(STRIDE, round(width * ratio / STRIDE) * STRIDE)
    return out_h, out_w


def vertical_padding(height: int, width: int, opts: DetOptions) -> int:
    """Rows to add above and below a strip-like page (very short or very wide)."""
    if height > opts.pad_min_height and width / height <= opts.pad_max_aspect:
        return 0
    target = max(int(width / opts.pad_max_aspect), opts.pad_min_height) * 2
    return max(0, (target - height) // 2)


def _border_color(img: np.ndarray) -> tuple[int, int, int]:
    edges = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])
    return tuple(int(v) for v in np.median(edges, axis=0))  # type: ignore[return-value]


# ImageNet's channel statistics, in the BGR order PP-OCR feeds its detectors.
_IMAGENET_MEAN_BGR = np.array([0.485, 0.456, 0.406], np.float32) * 255.0
_IMAGENET_STD_BGR = np.array([0.229, 0.224, 0.225], np.float32) * 255.0


def det_normalize(rgb: np.ndarray, how: str) -> np.ndarray:
    """RGB uint8 HxWx3 -> 1x3xHxW float32 BGR tensor: ``half`` maps 0..255 to [-1, 1] (what
    RapidOCR feeds PP-OCR detectors), ``imagenet`` subtracts ImageNet's channel means and
    divides by their deviations (what the PP-OCRv6 detectors' own configs ask for)."""
    if how == "half":
        return cv2.dnn.blobFromImage(
            rgb, scalefactor=1 / 127.5, mean=(127.5, 127.5, 127.5), swapRB=True
        )
    if hasattr(cv2.dnn, "blobFromImageWithParams"):  # OpenCV >= 4.8: ~8x numpy's speed
        params = cv2.dnn.Image2BlobParams()
        params.swapRB = True  # mean and scale below apply to the swapped (BGR) channels
        params.mean = (*_IMAGENET_MEAN_BGR.tolist(), 0.0)
        params.scalefactor = (*(1.0 / _IMAGENET_STD_BGR).tolist(), 0.0)
        params.ddepth = cv2.CV_32F
        return cv2.dnn.blobFromImageWithParams(rgb, params)
    bgr = rgb[..., ::-1].astype(np.float32)
    bgr -= _IMAGENET_MEAN_BGR
    bgr /= _IMAGENET_STD_BGR
    return np.ascontiguousarray(bgr.transpose(2, 0, 1)[None])


def prepare_det_input(page: np.ndarray, opts: DetOptions) -> tuple[np.ndarray, DetGeometry]:
    """RGB uint8 page -> (1x3xHxW float32 BGR-normalized tensor, geometry)."""
    h, w = page.shape[:2]
    pad = vertical_padding(h, w, opts)
    img = page
    if pad:
        img = cv2.copyMakeBorder(
            page, pad, pad, 0, 0, cv2.BORDER_CONSTANT, value=_border_color(page)
        )
    ph, pw = img.shape[:2]
    out_h, out_w = det_input_size(ph, pw, opts)
    interp = cv2.INTER_AREA if out_h * out_w < ph * pw else cv2.INTER_LINEAR
    resized = cv2.resize(img, (out_w, out_h), interpolation=interp)
    tensor = det_normalize(resized, opts.normalize)
    geometry = DetGeometry(
        page_height=h, page_width=w, pad_top=pad, scale_x=pw / out_w, scale_y=ph / out_h
    )
    return tensor, geometry


def _min_area_quad(points: np.ndarray) -> tuple[np.ndarray, float]:
    rect = cv2.minAreaRect(points.reshape(-1, 1, 2).astype(np.float32))
    return order_quad(cv2.boxPoints(rect)), float(min(rect[1]))


def _mean_score(prob: np.ndarray, quad: np.ndarray) -> float:
    """Mean probability inside ``quad`` (the DB 'fast' box score)."""
    h, w = prob.shape
    x0 = int(np.clip(np.floor(quad[:, 0].min()), 0, w - 1))
    x1 = int(np.clip(np.ceil(quad[:, 0].max()), 0, w - 1))
    y0 = int(np.clip(np.floor(quad[:, 1].min()), 0, h - 1))
    y1 = int(np.clip(np.ceil(quad[:, 1].max()), 0, h - 1))
    mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), dtype=np.uint8)
    shifted = (quad - np.array([x0, y0], dtype=np.float32)).round().astype(np.int32)
    cv2.fillPoly(mask, [shifted], 1)
    return float(cv2.mean(prob[y0 : y1 + 1, x0 : x1 + 1], mask)[0])


def _unclip(quad: np.ndarray, ratio: float) -> np.ndarray | None:
    """Grow a shrunk text kernel back to the text's extent (DB's unclip), via pyclipper."""
    perimeter = polygon_perimeter(quad)
    if perimeter <= 0:
        return None
    distance = polygon_area(quad) * ratio / perimeter
    offset = pyclipper.PyclipperOffset()
    offset.AddPath(
        quad.round().astype(np.int64).tolist(), pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON
    )
    expanded = offset.Execute(distance)
    if len(expanded) != 1:
        return None
    return np.asarray(expanded[0], dtype=np.float32)


def db_boxes(prob: np.ndarray, opts: DetOptions) -> tuple[np.ndarray, np.ndarray]:
    """DB post-processing of one probability map (HxW, values in [0, 1]).

    Returns ``(quads, scores)``: ``quads`` is Nx4x2 float32 in probability-map
    coordinates, clockwise from top-left; ``scores`` the mean probability per box.
    """
    bitmap: np.ndarray = (prob > opts.thresh).astype(np.uint8)
    if opts.use_dilation:
        bitmap = cv2.dilate(bitmap, np.ones((2, 2), dtype=np.uint8))
    contours, _ = cv2.findContours(bitmap, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    if len(contours) > opts.max_candidates:
        # Keep the largest regions rather than whichever OpenCV happened to list first.
        areas = np.array([cv2.contourArea(c) for c in contours])
        keep = np.argsort(-areas, kind="stable")[: opts.max_candidates]
        contours = [contours[i] for i in sorted(keep)]
    quads: list[np.ndarray] = []
    scores: list[float] = []
    for contour in contours:
        quad, short_side = _min_area_quad(contour)
        if short_side < opts.min_size:
            continue
        score = _mean_score(prob, quad)
        if score < opts.box_thresh:
            continue
        grown = _unclip(quad, opts.unclip_ratio)
        if grown is None:
            continue
        quad, short_side = _min_area_quad(grown)
        if short_side < opts.min_size + 2:
            continue
        quads.append(quad)
        scores.append(score)
    if not quads:
        return np.zeros((0, 4, 2), dtype=np.float32), np.zeros((0,), dtype=np.float32)
    return np.stack(quads).astype(np.float32), np.asarray(scores, dtype=np.float32)


def boxes_to_page(quads: np.ndarray, geometry: DetGeometry) -> np.ndarray:
    """Map detector-input quads to page pixels (undo resize and padding, clip to the page)."""
    if len(quads) == 0:
        return quads.reshape(0, 4, 2).astype(np.float32)
    out = quads.astype(np.float32).copy()
    out[..., 0] *= geometry.scale_x
    out[..., 1] = out[..., 1] * geometry.scale_y - geometry.pad_top
    out[..., 0] = np.clip(out[..., 0], 0, geometry.page_width - 1)
    out[..., 1] = np.clip(out[..., 1], 0, geometry.page_height - 1)
    return out


def drop_degenerate(
    quads: np.ndarray, scores: np.ndarray, min_side: float = 3.0
) -> tuple[np.ndarray, np.ndarray]:
    """Remove boxes that collapsed to (almost) nothing after clipping to the page."""
    if len(quads) == 0:
        return quads, scores
    widths = np.linalg.norm(quads[:, 0] - quads[:, 1], axis=1)
    heights = np.linalg.norm(quads[:, 0] - quads[:, 3], axis=1)
    keep = (widths > min_side) & (heights > min_side)
    return quads[keep], scores[keep]


def detect_page(pixels: np.ndarray, opts: DetOptions, run: RunBatch) -> Boxes:
    """Text boxes of a page in its own pixels: one detector pass at the ``opts`` sizing."""
    tensor, geometry = prepare_det_input(pixels, opts)
    prob = run(tensor)[0, 0]
    quads, scores = db_boxes(prob, opts)
    return drop_degenerate(boxes_to_page(quads, geometry), scores)


def detect_batched(
    pages: Sequence[np.ndarray], opts: DetOptions, run: RunBatch, *, bucket: int, max_batch: int
) -> list[Boxes | None]:
    """Detect several pages in batches (on GPUs one call for many pages pays).

    Each detector input is padded up to a multiple of ``bucket`` pixels per side; pages of
    one padded shape run together, at most ``max_batch`` per call. Returns each page's boxes
    in input order, or ``None`` for the pages of a call that raised: the caller detects
    those alone (:func:`detect_page`), where the error, if it is one page's, surfaces for
    that page only.
    """
    found: list[Boxes | None] = [None] * len(pages)
    groups: dict[tuple[int, int], list[tuple[int, np.ndarray, DetGeometry]]] = {}
    for i, pixels in enumerate(pages):
        tensor, geometry = prepare_det_input(pixels, opts)
        h, w = tensor.shape[2:]
        key = (-(-h // bucket) * bucket, -(-w // bucket) * bucket)
        groups.setdefault(key, []).append((i, tensor, geometry))
    for (bh, bw), group in groups.items():
        for start in range(0, len(group), max_batch):
            chunk = group[start : start + max_batch]
            batch = np.zeros((len(chunk), 3, bh, bw), dtype=np.float32)
            for k, (_, tensor, _) in enumerate(chunk):
                batch[k, :, : tensor.shape[2], : tensor.shape[3]] = tensor[0]
            try:
                probs = run(batch)
            except Exception as exc:
                log.warning(
                    "batched detection of %d page(s) failed (%s: %s); detecting them one by one",
                    len(chunk),
                    type(exc).__name__,
                    exc,
                )
                continue
            for k, (i, tensor, geometry) in enumerate(chunk):
                prob = probs[k, 0, : tensor.shape[2], : tensor.shape[3]]
                quads, scores = db_boxes(prob, opts)
                found[i] = drop_degenerate(boxes_to_page(quads, geometry), scores)
    return found
