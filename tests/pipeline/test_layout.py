"""Page layout on line boxes: skew, blocks and reading order (pure functions)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ocrmill.pipeline import layout

H = 30  # line height of the synthetic pages (detected boxes, in pixels)
PITCH = 36


def quad(x0: float, y0: float, x1: float, y1: float) -> list[list[float]]:
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def column(x0: float, x1: float, y0: float, lines: int, *, gap_after: int = 0) -> list:
    """Full lines of prose, one every PITCH pixels; a paragraph gap after ``gap_after``."""
    out, y = [], y0
    for k in range(lines):
        out.append(quad(x0, y, x1 - (80 if k == lines - 1 else 0), y + H))
        y += PITCH + (PITCH if gap_after and k + 1 == gap_after else 0)
    return out


def order_of(quads: list) -> list[int]:
    return layout.page_layout(np.array(quads, np.float64)).order


def test_two_columns_read_top_to_bottom_then_left_to_right():
    left = column(50, 550, 100, 12)
    right = column(600, 1100, 100, 12)
    # Interleave as a detector might return them.
    quads = [q for pair in zip(left, right) for q in pair]
    order = order_of(quads)
    assert order == list(range(0, 24, 2)) + list(range(1, 24, 2))


def test_three_columns_with_title_and_footer_spanning_the_page():
    title = [quad(50, 20, 1000, 70)]
    cols = [column(50 + k * 360, 380 + k * 360, 110, 10) for k in range(3)]
    footer = [quad(300, 110 + 10 * PITCH + 20, 800, 110 + 10 * PITCH + 20 + H)]
    quads = title + cols[2] + cols[0] + footer + cols[1]
    order = order_of(quads)
    expected = [0, *range(11, 21), *range(22, 32), *range(1, 11), 21]
    assert order == expected


def test_footer_below_balanced_columns_comes_last_even_when_under_one_column():
    left = column(50, 550, 100, 10)
    right = column(600, 1100, 100, 10)
    footer = [quad(50, 100 + 10 * PITCH + 40, 400, 100 + 10 * PITCH + 40 + H)]
    order = order_of(left + footer + right)
    assert order == list(range(10)) + list(range(11, 21)) + [10]


def test_caption_set_into_the_gutter_is_read_after_the_columns():
    left = column(50, 560, 100, 12)
    right = column(620, 1130, 100, 12)
    # A caption in the gutter region, beside lines of both columns.
    caption = [quad(500, 100 + 4 * PITCH, 680, 100 + 4 * PITCH + H)]
    for k in (3, 4, 5):  # lines beside the caption are shorter
        left[k] = quad(50, left[k][0][1], 480, left[k][2][1])
        right[k] = quad(700, right[k][0][1], 1130, right[k][2][1])
    order = order_of(left + right + caption)
    assert order == [*range(24), 24]


def test_kicker_on_a_title_is_read_with_the_title():
    cols = [column(50 + k * 360, 380 + k * 360, 100, 11) for k in range(3)]
    # The first column ends early; a two-line kicker sits under it, right on the title.
    first = cols[0][:6]
    bottom = 100 + 10 * PITCH + H
    kicker = [quad(60, bottom - H - PITCH, 300, bottom - PITCH), quad(60, bottom - H, 280, bottom)]
    title = [quad(60, bottom + 8, 1000, bottom + 68)]
    quads = first + kicker + cols[1] + cols[2] + title
    order = order_of(quads)
    n1, n2 = len(first), len(first) + 2
    assert order == list(range(n1)) + list(range(n2, n2 + 22)) + [n1, n1 + 1, n2 + 22]


def test_receipt_rows_stay_rows():
    """Item names and prices are side by side: narrow columns are not prose."""
    quads = [quad(40, 20, 400, 50)]  # shop name
    for k in range(10):
        y = 80 + k * PITCH
        quads += [quad(40, y, 260, y + H), quad(330, y, 400, y + H)]
    quads.append(quad(40, 80 + 10 * PITCH + 20, 400, 80 + 10 * PITCH + 50))  # total
    assert order_of(quads) == list(range(len(quads)))


def test_form_labels_and_values_stay_rows():
    quads = []
    for k in range(6):
        y = 50 + k * PITCH
        quads += [quad(40, y, 160, y + H), quad(220, y, 600, y + H)]
    assert order_of(quads) == list(range(len(quads)))


def test_blocks_split_at_paragraph_gaps_and_headings():
    heading = [quad(50, 20, 500, 80)]  # twice the body's height
    body = column(50, 550, 100, 8, gap_after=4)
    blocks = layout.page_layout(np.array(heading + body, np.float64)).blocks
    assert blocks == [[0], [1, 2, 3, 4], [5, 6, 7, 8]]


@pytest.mark.parametrize("degrees", [-3.5, 3.5, 8.0])
def test_skewed_columns_read_like_upright_ones(degrees):
    quads = np.array(column(50, 550, 100, 12) + column(600, 1100, 100, 12), np.float64)
    turned = layout.rotate_points(quads, -math.radians(degrees), (575.0, 300.0))
    result = layout.page_layout(turned)
    assert math.degrees(result.skew) == pytest.approx(degrees, abs=0.1)
    assert result.order == list(range(24))
    # Block boxes come back in the frame of the quads given: they cover their lines.
    for block, box in zip(result.blocks, result.block_quads):
        lines = turned[block].reshape(-1, 2)
        flat = layout.rotate_points(np.vstack([lines, box]), result.skew, (575.0, 300.0))
        inside, outside = flat[: len(lines)], flat[len(lines) :]
        assert inside.min(axis=0) == pytest.approx(outside.min(axis=0), abs=1e-6)
        assert inside.max(axis=0) == pytest.approx(outside.max(axis=0), abs=1e-6)


def test_skew_ignores_short_and_vertical_boxes():
    quads = [*column(50, 550, 100, 5), quad(10, 10, 20, 200), quad(600, 10, 620, 30)]
    assert layout.skew_angle(np.array(quads, np.float64)) == 0.0
    assert layout.skew_angle(np.zeros((0, 4, 2))) == 0.0


def test_empty_and_single_line():
    empty = layout.page_layout(np.zeros((0, 4, 2)))
    assert empty.blocks == [] and empty.order == [] and empty.block_quads.shape == (0, 4, 2)
    one = layout.page_layout(np.array([quad(5, 5, 100, 30)], np.float64))
    assert one.blocks == [[0]]
    np.testing.assert_allclose(one.block_quads[0], quad(5, 5, 100, 30))


def test_line_directions_measure_the_long_side():
    angle, long_side, short_side = layout.line_directions(
        np.array([quad(0, 0, 100, 20), quad(0, 0, 20, 100)], np.float64)
    )
    assert angle.tolist() == pytest.approx([0.0, math.pi / 2])
    assert long_side.tolist() == [100, 100] and short_side.tolist() == [20, 20]


PROSE = "the water board met four times this year and agreed a budget"
CELLS = ("North valley district", "rose by three feet", "fell by two feet in May")


def page_with_table(rows: int = 6) -> tuple[list, list[str], tuple[float, float, float, float]]:
    """A paragraph, a table of three columns whose cells hold a few words each, a
    paragraph; and the table's box."""
    quads, texts = [], []
    for k in range(3):
        quads.append(quad(50, 100 + k * PITCH, 1100, 100 + k * PITCH + H))
        texts.append(PROSE)
    top = 300
    for r in range(rows):
        y = top + r * PITCH
        for x0, x1, text in zip((50, 600, 900), (330, 760, 1080), CELLS):
            quads.append(quad(x0, y, x1, y + H))
            texts.append(f"{text} {r}")
    for k in range(3):
        y = top + rows * PITCH + 60 + k * PITCH
        quads.append(quad(50, y, 1100, y + H))
        texts.append(PROSE)
    return quads, texts, (40.0, top - 10.0, 1090.0, top + rows * PITCH)


def test_a_table_the_model_finds_is_read_row_by_row_as_one_block():
    quads, texts, table = page_with_table()
    q = np.array(quads, np.float64)
    # From the lines alone, the cells' columns are columns of text.
    alone = layout.page_layout(q, texts)
    assert [3, 6, 9, 12, 15, 18] in alone.blocks
    found = layout.page_layout(q, texts, lambda angle, center: [table])
    assert found.blocks == [[0, 1, 2], list(range(3, 21)), [21, 22, 23]]
    assert found.kinds == ["paragraph", "table", "paragraph"]
    x0, y0 = found.block_quads[1].min(axis=0)
    x1, y1 = found.block_quads[1].max(axis=0)
    assert (x0, y0, x1, y1) == (50, 300, 1080, 300 + 5 * PITCH + H)  # its lines' union


def test_tables_are_only_looked_for_where_columns_are_read_side_by_side():
    asked = []

    def find_tables(angle, center):
        asked.append(1)
        return []

    rows = [quad(50, 100 + k * PITCH, 1100, 100 + k * PITCH + H) for k in range(8)]
    layout.page_layout(np.array(rows, np.float64), [PROSE] * 8, find_tables)
    assert asked == []
    quads, texts, _ = page_with_table()
    layout.page_layout(np.array(quads, np.float64), texts, find_tables)
    assert asked == [1]


def test_a_table_holding_under_two_lines_or_none_changes_nothing():
    quads, texts, _ = page_with_table()
    q = np.array(quads, np.float64)
    alone = layout.page_layout(q, texts)
    for tables in ([], [(2000.0, 2000.0, 2100.0, 2100.0)], [(40.0, 290.0, 340.0, 332.0)]):
        found = layout.page_layout(q, texts, lambda angle, center, tables=tables: tables)
        assert found.blocks == alone.blocks and "table" not in found.kinds


@pytest.mark.parametrize("degrees", [-3.0, 3.0])
def test_a_table_on_a_skewed_page_is_asked_for_in_the_levelled_frame(degrees):
    quads, texts, table = page_with_table()
    page_center = (575.0, 400.0)
    turned = layout.rotate_points(np.array(quads, np.float64), -math.radians(degrees), page_center)
    x0, y0, x1, y1 = table
    corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64)
    asked = []

    def find_tables(angle, center):
        """The model on the page straightened by ``angle`` about ``center`` finds the
        table where it stands there."""
        asked.append(angle)
        straight = layout.rotate_points(
            layout.rotate_points(corners, -math.radians(degrees), page_center), angle, center
        )
        (a, b), (c, d) = straight.min(axis=0), straight.max(axis=0)
        return [(a, b, c, d)]

    found = layout.page_layout(turned, texts, find_tables)
    assert asked == [pytest.approx(math.radians(degrees), abs=1e-6)]
    assert found.kinds == ["paragraph", "table", "paragraph"]
    assert found.blocks[1] == list(range(3, 21))


def test_columns_of_sentences_taken_for_a_table_stay_columns():
    """Rows side by side, but every line runs as a sentence: text, not cells."""
    quads = column(50, 560, 100, 12) + column(620, 1130, 100, 12)
    texts = [PROSE] * len(quads)
    q = np.array(quads, np.float64)
    alone = layout.page_layout(q, texts)
    assert alone.order == list(range(24))  # the left column, then the right
    found = layout.page_layout(q, texts, lambda angle, center: [(40.0, 90.0, 1140.0, 700.0)])
    assert found.blocks == alone.blocks and "table" not in found.kinds


def test_a_column_of_prose_taken_for_a_table_stays_a_column():
    """One line per row: no cells side by side, so the model's table is not read as one."""
    quads = column(50, 400, 100, 10) + column(450, 800, 100, 10) + column(850, 1200, 100, 10)
    texts = [PROSE] * len(quads)
    q = np.array(quads, np.float64)
    alone = layout.page_layout(q, texts)
    found = layout.page_layout(q, texts, lambda angle, center: [(440.0, 90.0, 810.0, 500.0)])
    assert found.blocks == alone.blocks and found.order == list(range(30))
    assert "table" not in found.kinds


def test_a_line_across_the_text_is_read_after_the_columns_and_hides_no_gutter():
    """A stack of short lines the detector took for one vertical line, set over a gutter
    narrower than a line height and half covering it, neither joins the columns nor splits them; it is read
    last, a block of its own."""
    gutter = 0.6 * H
    left = column(50, 550, 100, 14)
    right = column(550 + gutter, 1050 + gutter, 100, 14)
    texts = ["words of a sentence in a column of prose"] * 28
    stack = quad(520, 200, 560, 200 + 4 * PITCH)  # 4 rows tall, half over the gutter
    quads = left + right + [stack]
    layout_ = layout.page_layout(np.array(quads, np.float64), [*texts, "瓦瓦瓦丽"])
    assert layout_.order == list(range(29))
    assert layout_.blocks[-1] == [28] and layout_.kinds[-1] is None  # no kind guessed


def test_a_narrow_tall_glyph_stays_in_its_line_of_text():
    """A lone ``l`` or ``1`` is taller than wide, yet no line across the text."""
    quads = column(50, 550, 100, 3)
    quads.insert(2, quad(560, 100 + PITCH, 560 + 0.4 * H, 100 + PITCH + H))  # beside row 1
    order = order_of(quads)
    assert order.index(2) == order.index(1) + 1
