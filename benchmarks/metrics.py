"""Pure scoring functions for the document benchmark: text normalisation, order, CER, words."""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np
from rapidfuzz.distance import Levenshtein

Point = tuple[float, float]

_WHITESPACE = re.compile(r"\s+")
# A prediction is don't-care when more than this share of its area lies in a don't-care region.
DONT_CARE_OVERLAP = 0.5


@dataclass(frozen=True)
class Region:
    """A ground-truth or predicted text region; ``text=None`` marks a don't-care region."""

    text: str | None
    points: tuple[Point, ...] | None = None

    @classmethod
    def make(cls, text: str | None, points: Iterable[Sequence[float]] | None) -> Region:
        """Build a region from any nested sequence of ``(x, y)`` points (or ``None``)."""
        if points is None:
            return cls(text, None)
        return cls(text, tuple((float(p[0]), float(p[1])) for p in points))


class CerResult(NamedTuple):
    """Character error rate of one page, with the raw counts needed to micro-average."""

    cer: float
    edits: int
    gt_len: int


class BowCounts(NamedTuple):
    """Bag-of-words counts: matched tokens (multiset intersection), predicted and GT tokens."""

    matched: int
    n_pred: int
    n_gt: int


class PRF(NamedTuple):
    """Precision, recall and F1."""

    precision: float
    recall: float
    f1: float


@dataclass(frozen=True)
class PageScore:
    """Scores of one page; ``cer_cs`` is set only when the label is case sensitive.

    ``pred_text`` and ``gt_text`` are the compared (case-insensitive, normalised) texts.
    """

    cer: CerResult
    bow: BowCounts
    cer_cs: CerResult | None
    n_pred: int
    n_dropped: int
    pred_text: str = ""
    gt_text: str = ""


class _Extent(NamedTuple):
    x_min: float
    cy: float
    height: float


def normalize_text(s: str, case_sensitive: bool) -> str:
    """Collapse whitespace runs to one space and strip; casefold unless case sensitive."""
    out = _WHITESPACE.sub(" ", s).strip()
    return out if case_sensitive else out.casefold()


def _extent(points: Sequence[Point]) -> _Extent:
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    return _Extent(min(xs), (min(ys) + max(ys)) / 2.0, max(ys) - min(ys))


def _group_rows(extents: Sequence[_Extent]) -> list[list[int]]:
    """Indices grouped into rows: an item joins the current row when its centre-y is within
    half the median item height of the row's mean centre-y."""
    half = statistics.median(e.height for e in extents) / 2.0
    rows: list[list[int]] = []
    row_cys: list[float] = []
    for i in sorted(range(len(extents)), key=lambda k: (extents[k].cy, extents[k].x_min)):
        cy = extents[i].cy
        if rows and abs(cy - sum(row_cys) / len(row_cys)) <= half:
            rows[-1].append(i)
            row_cys.append(cy)
        else:
            rows.append([i])
            row_cys = [cy]
    return rows


def reading_order(items: Sequence[Region]) -> list[Region]:
    """Regions sorted top-to-bottom into rows, left-to-right inside a row.

    If any region has no points (page-level ground truth) the given order is kept.
    """
    if not items or any(r.points is None for r in items):
        return list(items)
    extents = [_extent(r.points) for r in items if r.points is not None]
    rows = _group_rows(extents)
    return [items[i] for row in rows for i in sorted(row, key=lambda k: extents[k].x_min)]


def page_text(items: Iterable[Region]) -> str:
    """The texts of the cared-for regions, in the given order, joined by newlines."""
    return "\n".join(r.text for r in items if r.text is not None)


def page_cer(pred_text: str, gt_text: str) -> CerResult:
    """Levenshtein distance / max(1, len(gt)); texts are compared exactly as given."""
    edits = int(Levenshtein.distance(pred_text, gt_text))
    return CerResult(edits / max(1, len(gt_text)), edits, len(gt_text))


def bag_of_words(text: str) -> Counter[str]:
    """Multiset of whitespace-separated tokens."""
    return Counter(text.split())


def bow_counts(pred_text: str, gt_text: str) -> BowCounts:
    """Counts for bag-of-words scoring; matched = size of the multiset intersection."""
    pred = bag_of_words(pred_text)
    gt = bag_of_words(gt_text)
    matched = sum((pred & gt).values())
    return BowCounts(matched, sum(pred.values()), sum(gt.values()))


def prf(counts: BowCounts) -> PRF:
    """P = matched / predicted, R = matched / GT (0 when a denominator is 0); both empty = 1."""
    if counts.n_pred == 0 and counts.n_gt == 0:
        return PRF(1.0, 1.0, 1.0)
    p = counts.matched / counts.n_pred if counts.n_pred else 0.0
    r = counts.matched / counts.n_gt if counts.n_gt else 0.0
    f1 = 2 * p * r / (p + r) if p + r > 0 else 0.0
    return PRF(p, r, f1)


def sum_bow(counts: Iterable[BowCounts]) -> BowCounts:
    """Element-wise sum, for micro-averaging over pages."""
    m = p = g = 0
    for c in counts:
        m, p, g = m + c.matched, p + c.n_pred, g + c.n_gt
    return BowCounts(m, p, g)


def macro_cer(results: Iterable[CerResult]) -> float:
    """Mean of per-page CER over pages with GT text (a page whose GT is all don't-care
    would turn any stray character into a CER of 100% or more); NaN for no such pages."""
    values = [r.cer for r in results if r.gt_len > 0]
    return statistics.fmean(values) if values else math.nan


def micro_cer(results: Iterable[CerResult]) -> float:
    """Total edits / total GT characters (NaN for no pages)."""
    rs = list(results)
    if not rs:
        return math.nan
    return sum(r.edits for r in rs) / max(1, sum(r.gt_len for r in rs))


def _poly(points: Sequence[Point]) -> np.ndarray:
    return np.asarray(points, dtype=np.float32).reshape(-1, 1, 2)


def _overlap_fraction(box: np.ndarray, poly: np.ndarray) -> float:
    """Share of ``box``'s area inside ``poly`` (both taken as their convex hulls)."""
    box_area = float(cv2.contourArea(box))
    if box_area <= 0.0:
        return 0.0
    inter, _ = cv2.intersectConvexConvex(cv2.convexHull(box), cv2.convexHull(poly))
    return float(inter) / box_area


def in_dont_care(points: Sequence[Point], polygons: Sequence[np.ndarray]) -> bool:
    """Whether a box's centre lies in, or more than half its area overlaps, a don't-care polygon."""
    box = _poly(points)
    center = (float(box[:, 0, 0].mean()), float(box[:, 0, 1].mean()))
    for poly in polygons:
        if cv2.pointPolygonTest(poly, center, False) >= 0:
            return True
        if _overlap_fraction(box, poly) > DONT_CARE_OVERLAP:
            return True
    return False


def drop_dont_care(preds: Sequence[Region], gt: Sequence[Region]) -> list[Region]:
    """Predictions left after removing those that fall in the GT's don't-care regions."""
    polygons = [_poly(r.points) for r in gt if r.text is None and r.points is not None]
    if not polygons:
        return list(preds)
    return [p for p in preds if p.points is None or not in_dont_care(p.points, polygons)]


def score_page(preds: Sequence[Region], gt: Sequence[Region], case_sensitive: bool) -> PageScore:
    """Score one page: drop don't-care predictions, put both sides in reading order, compare.

    The primary CER and bag-of-words scores are case-insensitive; ``cer_cs`` adds a
    case-sensitive CER for labels marked case sensitive.
    """
    kept = drop_dont_care(preds, gt)
    pred_raw = page_text(reading_order(kept))
    gt_raw = page_text(reading_order([r for r in gt if r.text is not None]))
    pred_ci = normalize_text(pred_raw, case_sensitive=False)
    gt_ci = normalize_text(gt_raw, case_sensitive=False)
    cer_cs = None
    if case_sensitive:
        cer_cs = page_cer(normalize_text(pred_raw, True), normalize_text(gt_raw, True))
    return PageScore(
        cer=page_cer(pred_ci, gt_ci),
        bow=bow_counts(pred_ci, gt_ci),
        cer_cs=cer_cs,
        n_pred=len(preds),
        n_dropped=len(preds) - len(kept),
        pred_text=pred_ci,
        gt_text=gt_ci,
    )


def pct(x: float | None) -> str:
    """A rate as a percentage with two decimals, ``n/a`` where there is none."""
    return "n/a" if x is None or math.isnan(x) else f"{100 * x:.2f}"


def nanmean(values: Iterable[float]) -> float:
    """The mean of the values that are numbers (NaN: not measured); NaN if none are."""
    kept = [v for v in values if not math.isnan(v)]
    return statistics.fmean(kept) if kept else math.nan
