"""Unit tests of the benchmark scoring functions (benchmarks/metrics.py)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

try:
    from benchmarks import metrics
except ImportError:  # the repo root is not on sys.path when pytest runs from tests/
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks import metrics

Region = metrics.Region


def rect(text: str | None, x0: float, y0: float, x1: float, y1: float) -> Region:
    return Region.make(text, [(x0, y0), (x1, y0), (x1, y1), (x0, y1)])


def test_page_cer_known_strings() -> None:
    assert metrics.page_cer("kitten", "sitting") == (3 / 7, 3, 7)
    assert metrics.page_cer("abc", "abc") == (0.0, 0, 3)
    assert metrics.page_cer("", "abcd") == (1.0, 4, 4)


def test_page_cer_empty_gt_divides_by_one() -> None:
    assert metrics.page_cer("xy", "") == (2.0, 2, 0)


def test_micro_and_macro_cer() -> None:
    results = [metrics.page_cer("a", "ab"), metrics.page_cer("abcdefgh", "abcdefgh")]
    assert metrics.macro_cer(results) == pytest.approx(0.25)
    assert metrics.micro_cer(results) == pytest.approx(1 / 10)
    assert math.isnan(metrics.micro_cer([]))


def test_macro_cer_skips_pages_without_gt_text() -> None:
    results = [metrics.page_cer("noise", ""), metrics.page_cer("ab", "abcd")]
    assert metrics.macro_cer(results) == pytest.approx(0.5)
    assert metrics.micro_cer(results) == pytest.approx(7 / 4)


def test_normalize_whitespace_and_case() -> None:
    assert metrics.normalize_text("  Total \t RM\n\n12.50 ", True) == "Total RM 12.50"
    assert metrics.normalize_text("  Total \t RM\n\n12.50 ", False) == "total rm 12.50"
    assert metrics.normalize_text("Straße", False) == "strasse"


def test_bow_counts_multiset_intersection() -> None:
    counts = metrics.bow_counts("a a b c", "a b b d e")
    assert counts == (2, 4, 5)
    p, r, f1 = metrics.prf(counts)
    assert p == pytest.approx(0.5)
    assert r == pytest.approx(0.4)
    assert f1 == pytest.approx(2 * 0.5 * 0.4 / 0.9)


def test_prf_edge_cases() -> None:
    assert metrics.prf(metrics.BowCounts(0, 0, 0)) == (1.0, 1.0, 1.0)
    assert metrics.prf(metrics.BowCounts(0, 0, 3)) == (0.0, 0.0, 0.0)
    total = metrics.sum_bow([metrics.BowCounts(1, 2, 3), metrics.BowCounts(4, 5, 6)])
    assert total == (5, 7, 9)


def test_reading_order_two_columns_slightly_different_y() -> None:
    # Two columns; on the first row the right item sits a few pixels higher (a plain sort
    # by y would read it first), on the second row a few pixels lower.
    left1 = rect("L1", 10, 14, 100, 34)
    right1 = rect("R1", 200, 10, 300, 30)
    left2 = rect("L2", 10, 50, 100, 70)
    right2 = rect("R2", 200, 55, 300, 75)
    shuffled = [right2, left2, right1, left1]
    assert [r.text for r in metrics.reading_order(shuffled)] == ["L1", "R1", "L2", "R2"]


def test_reading_order_keeps_page_level_order() -> None:
    lines = [Region("second"), Region("first")]
    assert metrics.reading_order(lines) == lines


def test_dont_care_center_inside_is_dropped() -> None:
    gt = [rect(None, 0, 0, 100, 40), rect("KEEP", 200, 0, 300, 40)]
    preds = [rect("junk", 10, 10, 60, 30), rect("KEEP", 205, 5, 295, 35)]
    kept = metrics.drop_dont_care(preds, gt)
    assert [r.text for r in kept] == ["KEEP"]


def test_dont_care_rules_center_or_majority_overlap() -> None:
    small = metrics._poly([(90, 0), (110, 0), (110, 20), (90, 20)])
    left = metrics._poly([(0, 0), (45, 0), (45, 100), (0, 100)])
    # Centre (100, 10) inside a region covering only 10% of the box: dropped by the centre rule.
    assert metrics.in_dont_care(rect("x", 0, 0, 200, 20).points, [small]) is True
    # Trapezoid with vertex centre (50, 25) outside, but ~65% of its area inside: dropped.
    trapezoid = ((0.0, 0.0), (100.0, 0.0), (100.0, 10.0), (0.0, 90.0))
    assert metrics.in_dont_care(trapezoid, [left]) is True
    # 10% overlap and centre outside: kept.
    assert metrics.in_dont_care(rect("x", 100, 0, 200, 20).points, [small]) is False


def test_score_page_ignores_dont_care_and_case() -> None:
    gt = [rect("Hello", 0, 0, 50, 20), rect(None, 60, 0, 100, 20), rect("World", 110, 0, 160, 20)]
    preds = [
        rect("WORLD", 110, 0, 160, 20),
        rect("###", 62, 2, 98, 18),
        rect("hello", 0, 0, 50, 20),
    ]
    score = metrics.score_page(preds, gt, case_sensitive=True)
    assert score.cer == (0.0, 0, len("hello world"))
    assert score.bow == (2, 2, 2)
    assert score.n_dropped == 1
    assert score.cer_cs is not None
    assert score.cer_cs.edits == 5  # "hello WORLD" vs "Hello World"


def test_score_page_empty_prediction() -> None:
    gt = [rect("ABC", 0, 0, 30, 10)]
    score = metrics.score_page([], gt, case_sensitive=False)
    assert score.cer == (1.0, 3, 3)
    assert score.cer_cs is None
    assert metrics.prf(score.bow) == (0.0, 0.0, 0.0)
