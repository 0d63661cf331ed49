"""Column gutters in white space (pipeline/gutters.py) and the reading order they give
(pipeline/layout.py), on boxes laid out by hand: lines 20 px tall, 30 px apart."""

from __future__ import annotations

import numpy as np

from ocrmill.pipeline import gutters, layout

H, PITCH = 20.0, 30.0
CHAR = 9.0  # px per character: 40 characters make a 360 px line


def words_of(x: float, y: float, lengths: list[int], space: float = 8.0) -> list[list[float]]:
    """Word boxes from ``x`` on the row at ``y``: words of the given character counts."""
    out = []
    for n in lengths:
        out.append([x, y, x + n * CHAR, y + H])
        x += n * CHAR + space
    return out


def merged_rows(rows: int, gutter: float = 18.0) -> list[np.ndarray]:
    """Rows the detector joined across a narrow gutter: the left column's words from x=0
    to ~360, the right column's from 360 + gutter, each row one line."""
    lines = []
    for r in range(rows):
        left = words_of(0, r * PITCH, [5, 7, 4, 6, 8, 6][: 5 + r % 2])
        start = left[-1][2] + gutter
        right = words_of(max(start, 380.0), r * PITCH, [6, 4, 7, 5, 6])
        lines.append(np.array(left + right))
    return lines


def test_lines_joined_across_a_gutter_are_cut_there():
    lines = merged_rows(6)
    cuts = gutters.cut_points(lines)
    for words, cut in zip(lines, cuts):
        assert len(cut) == 1
        k = cut[0]
        assert words[k - 1][2] < 380 <= words[k][0]  # between the columns' words


def test_a_river_of_word_spaces_is_not_a_gutter():
    """Justified prose whose spaces happen to line up for three rows is not cut."""
    lines = [np.array(words_of(0, r * PITCH, [5, 7, 4, 6, 8, 6, 5], space=8.0)) for r in range(8)]
    for r in (2, 3, 4):  # a wide space at the same place in three rows only
        shifted = lines[r].copy()
        shifted[3:, [0, 2]] += 20
        lines[r] = shifted
    assert gutters.cut_points(lines) == [[] for _ in lines]


def test_a_caption_across_the_gutter_is_not_cut():
    lines = merged_rows(6)
    caption = np.array(words_of(250, 6 * PITCH, [7, 3]) + words_of(372, 6 * PITCH, [5]))
    cuts = gutters.cut_points([*lines, caption])
    assert all(len(c) == 1 for c in cuts[:-1])
    assert cuts[-1] == []  # it does not start at the left column's margin


def boxes_of(spans: list[tuple[float, float]], y0: float = 0.0) -> np.ndarray:
    return np.array(
        [[x0, y0 + k * PITCH, x1, y0 + k * PITCH + H] for k, (x0, x1) in enumerate(spans)]
    )


def test_prose_on_both_sides_is_read_apart():
    left, right = boxes_of([(0, 360)] * 8), boxes_of([(400, 760)] * 8)
    assert gutters.read_apart(left, right, H, 13, lengths=(40, 40))


def test_a_receipts_prices_stay_on_their_items_rows():
    items, prices = boxes_of([(0, 300)] * 8), boxes_of([(400, 440)] * 8)
    assert not gutters.read_apart(items, prices, H, 13, lengths=(35, 0))


def test_a_sidebar_with_its_own_rhythm_is_read_after_the_text():
    text = boxes_of([(0, 700)] * 12)
    cells = boxes_of([(760, 820)] * 7, y0=15)  # half a pitch off the text's rows
    cells[:, [1, 3]] += np.arange(7)[:, None] * 12  # and a wider pitch
    assert gutters.read_apart(text, cells, H, 13, lengths=(80, 0))


def order_of(boxes: list[list[float]], texts: list[str]) -> list[str]:
    blocks = layout.arrange(np.array(boxes), [layout.prose_chars(t) for t in texts])
    return [texts[i] for block in blocks for i in block]


PROSE = "the river ran past the old mill and on to the sea beyond it"  # 12 words, 48 chars


def test_columns_between_full_width_text_are_read_as_columns():
    """An introduction and a list across the page, two columns close below them with no
    wider space between, a list across the page again: each column whole, in place."""
    boxes, texts = [], []

    def add(x0: float, y: float, x1: float, text: str) -> None:
        boxes.append([x0, y, x1, y + H])
        texts.append(text)

    y = 0.0
    for k in range(3):
        add(0, y, 790, f"intro {k} {PROSE}")
        y += PITCH
    for k in range(3):
        add(0, y, 600 + 50 * k, f"- item {k} {PROSE}")
        y += PITCH
    top = y
    for k in range(8):
        add(0, top + k * PITCH, 380, f"left {k} {PROSE}")
        add(410, top + k * PITCH, 790, f"right {k} {PROSE}")
    y = top + 8 * PITCH
    for k in range(2):
        add(0, y, 700, f"- after {k} {PROSE}")
        y += PITCH
    order = [t.split()[0] + t.split()[1] for t in order_of(boxes, texts)]
    expected = [f"intro{k}" for k in range(3)] + ["-item" for _ in range(3)]
    expected += [f"left{k}" for k in range(8)] + [f"right{k}" for k in range(8)]
    expected += ["-after", "-after"]
    assert order == expected


def test_both_columns_pausing_at_one_height_is_not_a_new_section():
    """A heading's space in one column and footnotes set off in the other leave white
    space across the page at one height: the columns still read whole."""
    boxes, texts = [], []
    for k in range(10):
        y = k * PITCH + (2 * PITCH if k >= 7 else 0)  # both columns pause after row 6
        boxes += [[0, y, 380, y + H], [410, y, 790, y + H]]
        texts += [f"left {k} {PROSE}", f"right {k} {PROSE}"]
    order = [t.split()[0] + t.split()[1] for t in order_of(boxes, texts)]
    assert order == [f"left{k}" for k in range(10)] + [f"right{k}" for k in range(10)]
