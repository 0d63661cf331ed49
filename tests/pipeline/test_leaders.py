"""Dot leaders: two pieces of one row joined when the pixels between them hold a leader
(and only then), on upright, turned and skewed pages; and the narrow gutter between two
columns that leaders fill."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ocrmill.pipeline import layout, rotation
from ocrmill.pipeline.geometry import rotate_points
from ocrmill.pipeline.leaders import join_leaders
from ocrmill.pipeline.words import LinePiece, Word

H = 40  # line height in pixels


def box(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64)


def piece(text: str, x0: float, y0: float, x1: float) -> LinePiece:
    b = box(x0, y0, x1, y0 + H)
    return LinePiece(text, 0.9, [Word(text, 0.9, b)], b, b)


def page_with(gap_ink: str) -> tuple[np.ndarray, list[LinePiece]]:
    """A white page with the row 'Entry [gap] 12' at y=100: ``gap_ink`` says what is in
    the gap (dots on the baseline, a word-sized blob, dots half-way up, the dashes of a rule
    just under the row, or nothing)."""
    page = np.full((400, 1200), 255, np.uint8)
    page[110:130, 100:300] = 0  # "Entry"
    page[110:130, 900:960] = 0  # "12"
    if gap_ink == "dots":
        for x in range(320, 880, 24):
            page[124:128, x : x + 4] = 0
    elif gap_ink == "word":
        page[108:132, 500:620] = 0
    elif gap_ink == "high dots":
        for x in range(320, 880, 24):
            page[104:108, x : x + 4] = 0
    elif gap_ink == "dashed rule":  # a scanned receipt's rule under the row, in dashes
        for x in range(320, 880, 12):
            page[134:135, x : x + 8] = 0
    pieces = [piece("Entry", 100, 100, 300), piece("12", 900, 100, 960)]
    return page, pieces


def test_a_row_split_at_a_dot_leader_is_one_line_with_its_dots():
    page, pieces = page_with("dots")
    (joined,) = join_leaders(pieces, page, 0)
    dots = len(range(320, 880, 24))
    assert joined.text == "Entry " + " ".join(["."] * dots) + " 12"
    assert [w.text for w in joined.words] == ["Entry", *["."] * dots, "12"]
    assert joined.ink[:, 0].min() == 100 and joined.ink[:, 0].max() == 960


@pytest.mark.parametrize("gap_ink", ["nothing", "word", "high dots", "dashed rule"])
def test_a_gap_without_a_leader_keeps_the_pieces_apart(gap_ink):
    page, pieces = page_with(gap_ink)
    assert [p.text for p in join_leaders(pieces, page, 0)] == ["Entry", "12"]


@pytest.mark.parametrize("turn", [90, 180, 270])
def test_leaders_are_found_on_a_turned_page(turn):
    page, pieces = page_with("dots")
    # The scan as it came in: the upright page turned back by `turn` degrees.
    scan = np.rot90(page, k=turn // 90)
    sh, sw = scan.shape

    def back(p: LinePiece) -> LinePiece:
        q = rotation.from_upright(p.box, turn, sw, sh)
        return LinePiece(p.text, p.score, [Word(p.text, p.score, q)], q, q)

    (joined,) = join_leaders([back(p) for p in pieces], scan, turn)
    assert joined.text.startswith("Entry . . .") and joined.text.endswith(". 12")
    ink = rotation.to_upright(joined.ink, turn, sw, sh)
    assert ink[:, 0].min() == pytest.approx(100) and ink[:, 0].max() == pytest.approx(960)


def skewed_index(rows: int, pitch: float, angle: float, center: tuple[float, float]) -> np.ndarray:
    """A page of ``rows`` index rows ('Entry . . . . 12', one every ``pitch`` pixels from
    y=100) turned by ``angle`` (radians) about ``center``."""
    import cv2

    page = np.full((1400, 1200), 255, np.uint8)
    for r in range(rows):
        y = int(100 + pitch * r)
        page[y + 10 : y + 30, 100:300] = 0
        page[y + 10 : y + 30, 900:960] = 0
        for x in range(320, 880, 24):
            page[y + 24 : y + 28, x : x + 4] = 0
    turn = cv2.getRotationMatrix2D(center, -math.degrees(angle), 1.0)
    return cv2.warpAffine(page, turn, (1200, 1400), borderValue=255)


def test_leaders_are_found_on_a_skewed_page():

    angle = math.radians(3)
    center = (600.0, 700.0)
    # Twelve rows, so the page's skew shows in its lines.
    skewed = skewed_index(12, 100, angle, center)

    def skew(p: LinePiece) -> LinePiece:
        q = rotate_points(p.box, -angle, center)  # as the page was turned
        return LinePiece(p.text, p.score, [Word(p.text, p.score, q)], q, q)

    pieces = []
    for r in range(12):
        y = 100 + 100 * r
        pieces += [skew(piece(f"Entry{r}", 100, y, 300)), skew(piece(f"{r}", 900, y, 960))]
    joined = join_leaders(pieces, skewed, 0)
    assert len(joined) == 12
    assert all(p.text.startswith(f"Entry{r} . .") for r, p in enumerate(joined))


def two_columns(rows: int, gutter: float) -> list[np.ndarray]:
    """Two columns of ``rows`` index lines (H tall, 600 wide), ``gutter`` line heights
    apart."""
    quads = []
    for r in range(rows):
        y = 100 + 1.4 * H * r
        quads.append(box(100, y, 700, y + H))
    for r in range(rows):
        y = 100 + 1.4 * H * r
        x = 700 + gutter * H
        quads.append(box(x, y, x + 600, y + H))
    return quads


def test_a_narrow_gutter_between_tall_columns_is_read_as_one():
    quads = two_columns(12, 0.45)
    texts = ["entry name . . . . . . . . 12, 34"] * len(quads)
    order = layout.page_layout(np.array(quads), texts).order
    assert list(order) == list(range(24))  # the left column, then the right


def test_a_gap_as_narrow_across_two_rows_is_a_word_space():
    quads = two_columns(2, 0.45)
    texts = ["entry name . . . . . . . . 12, 34"] * len(quads)
    order = layout.page_layout(np.array(quads), texts).order
    assert list(order) == [0, 2, 1, 3]  # row by row


def test_leaders_join_on_a_skewed_page_whatever_angle_the_detector_gave_each_line():
    """On a skewed scan the detector's quad of a page number is square to the image, not
    to the text, a longer line's quad is ~1.3 degrees off the text's, and the levelled
    boxes of the rows above and below reach into the row: its two ends are still joined."""

    angle = math.radians(3)
    pitch = 1.15 * H  # tightly set rows, as in an index
    rows = 12
    center = (600.0, 700.0)
    skewed = skewed_index(rows, pitch, angle, center)

    def as_detected(p: LinePiece, off: float | None) -> LinePiece:
        q = rotate_points(p.box, -angle, center)
        if off is None:  # a short line: the quad square to the image around its ink
            q = box(q[:, 0].min(), q[:, 1].min(), q[:, 0].max(), q[:, 1].max())
        else:  # turned by `off` more than the text about its own centre
            c = q.mean(axis=0)
            q = rotate_points(q, -off, (float(c[0]), float(c[1])))
        return LinePiece(p.text, p.score, [Word(p.text, p.score, q)], q, q)

    pieces = []
    for r in range(rows):
        y = int(100 + pitch * r)
        off = math.radians((0.0, 1.3, 0.0, -1.3)[r % 4])  # the text's angle is the median
        pieces += [
            as_detected(piece(f"Entry{r}", 100, y, 300), off),
            as_detected(piece(f"{r}", 900, y, 960), None),
        ]
    joined = join_leaders(pieces, skewed, 0)
    assert [p.text.split()[0] for p in joined] == [f"Entry{r}" for r in range(rows)]
    assert all(p.text.endswith(f". {r}") for r, p in enumerate(joined))
