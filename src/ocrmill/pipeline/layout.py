"""Page layout of detected lines: the page's skew, blocks (paragraphs, columns, headings,
footers) and their reading order.

Everything works on line quadrilaterals in the upright page frame (after any page rotation,
see ``rotation.py``); the page pixels are never resampled. Lines are de-skewed by rotating
their coordinates only, then cut into blocks by a recursive XY-cut:

1. a horizontal band of white space wider than ``SECTION_GAP`` line heights across the
   whole set separates sections, read top to bottom;
2. a vertical gutter (white space at least ``MIN_GUTTER`` line heights wide) with prose on
   both sides splits columns, read left to right. Lines that cross the gutter and share no
   rows with other lines (a title, a full-width footer) cut the set into sections above, at
   and below them, and keep their place; a title's kicker (a few lines sitting right on
   it, set off from the text above) goes with it. Lines that cross the gutter beside the
   columns' lines (a caption, a pull quote) are read after the columns; a few rows below
   (above) the columns' common end (start), set off by a block break, are their footer
   (header) and are read after (before) both;
3. what is left is read row by row, as forms and receipts are: a row's lines left to right,
   a new block where the spacing or the line height jumps.

The engine passes line boxes cut to their ink from left to right (``words.line_words``),
so that gutters show between columns whose detected boxes, grown around the glyphs,
touch.

One module (~430 lines) on purpose: the XY-cut's rules share their measures (line heights,
gutters, prose widths) and are only understandable read together.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ocrmill.pipeline import gutters
from ocrmill.pipeline.block_kinds import BlockKind, block_kinds, is_list_start
from ocrmill.pipeline.geometry import rotate_points

# A line whose long side is at least this many times its short side shows its direction.
ELONGATED = 2.0
# White space across the whole set, at least this many line heights tall: a section break,
# unless a column gutter runs on across it and it is at most COLUMN_GAP tall.
SECTION_GAP = 2.0
COLUMN_GAP = 4.0
# A column gutter is at least this many line heights wide; NARROW_GUTTER wide when at
# least NARROW_GUTTER_LINES lines stand on each side of it (a two-column index whose dot
# leaders fill its columns: ~0.45 line heights apart; a word space in one line, with
# superscripts, can be as wide, but not down eight rows).
MIN_GUTTER = 0.5
NARROW_GUTTER = 0.4
NARROW_GUTTER_LINES = 8
# Columns hold prose: their lines hold at least this many characters in lines of at least
# PROSE_WORDS words (gutters.text_length: half of a side's text is in lines this long; a
# receipt's prices or barcodes, a form's labels hold less, so those stay row by row).
# Counted from the lines' texts, so the test does not depend on how tall the detector's
# boxes came out; without texts, estimated from widths at CHAR_WIDTH line heights per
# character.
MIN_PROSE_CHARS = 13
PROSE_WORDS = 3
CHAR_WIDTH = 0.46
# At most this share of a set's lines may cross a gutter (titles, footers, captions).
MAX_SPANNING = 0.25
# Trim each box by this share of its height at the top and bottom before looking for white
# space between rows: detected boxes are grown around the glyphs, and the boxes of
# neighbouring lines touch.
TRIM = 0.15
# A new block starts when the row spacing exceeds this many times the page's line pitch,
# or when the line height changes by more than this factor (a heading).
BLOCK_PITCH = 1.45
BLOCK_HEIGHT = 1.3
# At most this many rows below (or above) balanced columns that end (or start) together,
# set off by a block break, are a footer (header) of the columns, not part of one of them.
MAX_FOOTER_ROWS = 3
# A table a layout model found counts when it holds at least this many lines, and when at
# least this share of them sit beside another of its lines in a row (cells side by side: a
# column of prose the model takes for a table holds one line per row).
MIN_TABLE_LINES = 2
MIN_CELLS_BESIDE = 0.5
# ... and when fewer than this share of its lines run as sentences (SENTENCE_WORDS words of
# letters or more): the tables the model finds on the development half of the real-page
# set (benchmarks/real_pages.json) hold at most 17 % such lines, a table with one column of
# short sentences among three a third; columns of text it took for a table on a page skewed
# by 3 degrees held half.
MAX_SENTENCE_SHARE = 0.4
SENTENCE_WORDS = 5
# A gutter whose crossing lines would cut the set into more sections than this is not the
# set's column gutter (a table's, beside text whose rows its lines share).
MAX_SECTIONS = 7
# At most this many rows sitting on a title (within this many line heights), set off from
# the text above by a section gap, are its kicker and are read with it.
MAX_KICKER_ROWS = 3
KICKER_GAP = 0.5
# The first rows of what follows columns (a list's first item that ends before the
# gutter), aligned with it and set off from the column above by this many line heights,
# are read with it.
LEAD_IN_GAP = 1.0


@dataclass(frozen=True)
class PageLayout:
    """Blocks in reading order, each a list of line indices in reading order; the page's
    skew (radians, positive when lines fall to the right), each block's quad (Bx4x2, in
    the frame of the quads given, clockwise from the top-left) and, when the lines' texts
    were given, each block's kind (``block_kinds.py``; None where it does not show)."""

    blocks: list[list[int]]
    skew: float
    block_quads: np.ndarray
    kinds: list[BlockKind | None] = field(default_factory=list)  # per block; see block_kinds

    @property
    def order(self) -> list[int]:
        return [i for block in self.blocks for i in block]


def line_directions(quads: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each quad: the angle of its long side in (-pi/2, pi/2], the long side's length
    and the short side's length."""
    q = np.asarray(quads, dtype=np.float64).reshape(-1, 4, 2)
    along = (q[:, 1] - q[:, 0]) + (q[:, 2] - q[:, 3])
    across = (q[:, 3] - q[:, 0]) + (q[:, 2] - q[:, 1])
    len_along = np.linalg.norm(along, axis=1) / 2
    len_across = np.linalg.norm(across, axis=1) / 2
    tall = len_across > len_along
    vec = np.where(tall[:, None], across, along)
    angle = np.arctan2(vec[:, 1], vec[:, 0])
    angle = np.where(angle > math.pi / 2, angle - math.pi, angle)
    angle = np.where(angle <= -math.pi / 2, angle + math.pi, angle)
    return angle, np.maximum(len_along, len_across), np.minimum(len_along, len_across)


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values)
    cum = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cum, cum[-1] / 2)])


def voting_lines(quads: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each upright line quad (Nx4x2): its direction, its length, and whether it votes
    on the page's skew: elongated (``ELONGATED``) and within 30 degrees of horizontal
    (vertical text and noise do not vote)."""
    direction, long_side, short_side = line_directions(quads)
    votes = (long_side >= ELONGATED * np.maximum(short_side, 1e-6)) & (
        np.abs(direction) < math.radians(30)
    )
    return direction, long_side, votes


def skew_angle(quads: np.ndarray) -> float:
    """The page's dominant text angle (radians) from its upright line quads: the median of
    the voting lines' directions (``voting_lines``), weighted by length; 0 without such
    lines."""
    if len(quads) == 0:
        return 0.0
    direction, length, votes = voting_lines(quads)
    if not votes.any():
        return 0.0
    return _weighted_median(direction[votes], length[votes])


def cross_grain(quads: np.ndarray, angle: float) -> np.ndarray:
    """Which of the upright line quads (Nx4x2) run across the page's text direction
    (``angle``, radians): elongated (``ELONGATED``), longer than ``ELONGATED`` line heights
    (the median short side: a narrow glyph alone, an ``l`` or a ``1``, is tall too) and
    within 30 degrees of its perpendicular."""
    direction, long_side, short_side = line_directions(quads)
    if not len(long_side):
        return np.zeros(0, bool)
    unit = float(np.median(short_side))
    off = np.abs(np.abs(direction - angle) - math.pi / 2)
    return (
        (long_side >= ELONGATED * np.maximum(short_side, 1e-6))
        & (long_side >= ELONGATED * unit)
        & (off < math.radians(30))
    )


def page_cuts(word_quads: list[np.ndarray], line_quads: np.ndarray) -> list[list[int]]:
    """Where to cut each line of an upright page at a column gutter its words show (see
    ``gutters.py``): ``word_quads`` holds each line's word quads (Kx4x2, in reading order),
    ``line_quads`` the lines' quads (Nx4x2, cut to their ink). The page is de-skewed by its
    lines' direction first (coordinates only). A line whose words do not run left to right
    (one read upside down) is never cut."""
    lines = np.asarray(line_quads, np.float64).reshape(-1, 4, 2)
    if len(lines) < gutters.MIN_ROWS:
        return [[] for _ in word_quads]
    angle = skew_angle(lines)
    mean = lines.reshape(-1, 2).mean(axis=0)
    centre = (float(mean[0]), float(mean[1]))
    boxes: list[np.ndarray] = []
    for quads in word_quads:
        q = np.asarray(quads, np.float64).reshape(-1, 4, 2)
        if not len(q):
            boxes.append(np.zeros((0, 4)))
            continue
        flat = rotate_points(q, angle, centre)
        b = np.concatenate([flat.min(axis=1), flat.max(axis=1)], axis=1)
        ascending = np.all(np.diff((b[:, 0] + b[:, 2]) / 2) > 0)
        boxes.append(b if ascending else np.zeros((0, 4)))
    return gutters.cut_points(boxes)


def page_layout(
    quads: np.ndarray,
    texts: Sequence[str] | None = None,
    find_tables: Callable[[float, tuple[float, float]], Sequence[Sequence[float]]] | None = None,
) -> PageLayout:
    """Skew, blocks and reading order of a page's upright line quads (Nx4x2) and, given
    their texts, the blocks' kinds (how much text a line holds says whether lines beside a
    gutter are prose; a line starting with a bullet starts a block). ``find_tables``: asked
    only when columns are read side by side (a table's columns of cells could be taken
    for columns of text), with the page's skew angle and the centre the lines are turned
    about to level them, for the boxes (``x0, y0, x1, y1``) of the page's tables in that
    levelled frame; the lines in each are then read row by row as one block (``table``),
    placed as the table stands."""
    q = np.asarray(quads, dtype=np.float64).reshape(-1, 4, 2)
    if len(q) == 0:
        return PageLayout([], 0.0, np.zeros((0, 4, 2)))
    angle = skew_angle(q)
    mean = q.reshape(-1, 2).mean(axis=0)
    center = (float(mean[0]), float(mean[1]))
    flat = rotate_points(q, angle, center)
    boxes = np.concatenate([flat.min(axis=1), flat.max(axis=1)], axis=1)  # x0, y0, x1, y1
    # Lines across the page's text (a margin stamp, a figure's axis label, a stack of short
    # lines the detector took for one vertical line) are no part of its columns: they are
    # read after them, each a block of its own, left to right.
    across = cross_grain(q, angle)
    main = np.flatnonzero(~across) if across.any() and not across.all() else np.arange(len(q))
    chars = None if texts is None else [prose_chars(texts[int(i)]) for i in main]
    starts = None if texts is None else [is_list_start(texts[int(i)]) for i in main]
    columns: list[bool] = []
    blocks = arrange(boxes[main], chars, starts, columns=columns)
    is_table = [False] * len(blocks)
    if find_tables is not None and columns[0]:
        sentences = None if texts is None else [is_sentence(texts[int(i)]) for i in main]
        members = _table_members(boxes[main], find_tables(angle, center), sentences)
        if members:
            blocks, is_table = _arrange_with_tables(boxes[main], chars, starts, members)
    kinds: list[BlockKind | None] = []
    if texts is not None:
        flow = boxes[main]
        unit = float(np.median(np.maximum(flow[:, 3] - flow[:, 1], 1.0)))
        kinds = block_kinds(blocks, flow, [texts[int(i)] for i in main], unit)
        kinds = ["table" if table else kind for kind, table in zip(kinds, is_table)]
    blocks = [[int(main[i]) for i in block] for block in blocks]
    if len(main) < len(q):
        aside = np.flatnonzero(across)
        aside = aside[np.lexsort((boxes[aside, 1], boxes[aside, 0]))]
        blocks += [[int(i)] for i in aside]
        kinds += [None] * (len(aside) if texts is not None else 0)
    corners = []
    for block in blocks:
        x0, y0 = boxes[block, :2].min(axis=0)
        x1, y1 = boxes[block, 2:].max(axis=0)
        corners.append([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    block_quads = rotate_points(np.array(corners), -angle, center)
    return PageLayout(blocks, angle, block_quads.reshape(-1, 4, 2), kinds)


def _table_members(
    boxes: np.ndarray,
    tables: Sequence[Sequence[float]],
    sentences: Sequence[bool] | None = None,
) -> list[np.ndarray]:
    """The lines of each table (a box in the levelled frame of ``boxes``): those whose
    centre lies in the table's box; tables holding fewer than ``MIN_TABLE_LINES`` lines,
    too few lines side by side (``MIN_CELLS_BESIDE``) or too many that run as sentences
    (``MAX_SENTENCE_SHARE``, where ``sentences`` says which lines do) are left out, as are
    lines another table took."""
    taken = np.zeros(len(boxes), bool)
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    found = []
    for a, b, c, d in tables:
        inside = ~taken & (cx >= a) & (cx <= c) & (cy >= b) & (cy <= d)
        lines = np.flatnonzero(inside)
        if len(lines) < MIN_TABLE_LINES:
            continue
        beside = sum(len(row) for row in _rows(boxes[lines]) if len(row) > 1)
        if beside < MIN_CELLS_BESIDE * len(lines):
            continue
        if sentences is None or sum(sentences[int(i)] for i in lines) < MAX_SENTENCE_SHARE * len(
            lines
        ):
            taken |= inside
            found.append(lines)
    return found


def _arrange_with_tables(
    boxes: np.ndarray,
    chars: Sequence[int] | None,
    starts: Sequence[bool] | None,
    tables: list[np.ndarray],
) -> tuple[list[list[int]], list[bool]]:
    """Blocks as :func:`arrange` makes them, each table standing in the cut as one box (its
    lines' union: no prose, so no column is seen in it) and read as one block, its lines
    row by row; and which blocks are tables."""
    in_table = np.full(len(boxes), -1)
    for t, lines in enumerate(tables):
        in_table[lines] = t
    loose = np.flatnonzero(in_table < 0)
    unit_boxes = [boxes[i] for i in loose]
    unit_boxes += [
        np.concatenate([boxes[lines, :2].min(axis=0), boxes[lines, 2:].max(axis=0)])
        for lines in tables
    ]
    n_loose = len(loose)
    no_text = [0] * len(tables)  # a table is no prose and no list item
    counts = None if chars is None else [chars[int(i)] for i in loose] + no_text
    flags = None if starts is None else [starts[int(i)] for i in loose] + [False] * len(tables)
    heights = np.maximum(boxes[loose, 3] - boxes[loose, 1], 1.0) if n_loose else np.ones(1)
    blocks: list[list[int]] = []
    is_table: list[bool] = []
    for unit_block in arrange(np.array(unit_boxes), counts, flags, unit=float(np.median(heights))):
        run: list[int] = []
        for u in unit_block:
            if u < n_loose:
                run.append(int(loose[u]))
                continue
            if run:
                blocks.append(run)
                is_table.append(False)
                run = []
            lines = tables[u - n_loose]
            blocks.append([int(lines[i]) for row in _rows(boxes[lines]) for i in row])
            is_table.append(True)
        if run:
            blocks.append(run)
            is_table.append(False)
    return blocks, is_table


def is_sentence(text: str) -> bool:
    """Does the line run as a sentence: ``SENTENCE_WORDS`` words or more that are mostly
    letters (a table's cells hold labels, numbers and a few words)?"""
    words = [w for w in text.split() if sum(c.isalpha() for c in w) >= max(2, 0.6 * len(w))]
    return len(words) >= SENTENCE_WORDS


def prose_chars(text: str) -> int:
    """How much prose a line holds: its characters (spaces aside) when it has at least
    ``PROSE_WORDS`` words (each CJK character a word), else 0: a barcode, a price, a label
    or a name is not prose however long."""
    from ocrmill.pipeline.words import split_words

    return len("".join(text.split())) if len(split_words(text)) >= PROSE_WORDS else 0


# -- the recursive cut ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Lines:
    """Axis-aligned line boxes (de-skewed) and what the cut needs to know about them."""

    boxes: np.ndarray  # Nx4: x0, y0, x1, y1
    trimmed: np.ndarray  # the same, trimmed by TRIM of the height at the top and bottom
    unit: float  # the median line height
    pitch: float  # the usual distance between consecutive lines of a paragraph
    chars: np.ndarray  # N: characters of each line (estimated from its width if not read)
    list_starts: np.ndarray  # N: the line starts a list item (a bullet, an enumerator)
    # Set once the cut reads columns side by side somewhere (a column or band split).
    columns: list[bool] = field(default_factory=list, compare=False)
    # The gutters found among a set of lines, by the set (a set is looked at more than once).
    found: dict[bytes, tuple[list[gutters.Row], list[gutters.Gutter]]] = field(
        default_factory=dict, compare=False
    )


def arrange(
    boxes: np.ndarray,
    chars: Sequence[int] | None = None,
    list_starts: Sequence[bool] | None = None,
    *,
    unit: float | None = None,
    columns: list[bool] | None = None,
) -> list[list[int]]:
    """Blocks in reading order of axis-aligned line boxes (Nx4: x0, y0, x1, y1), each a
    list of indices in reading order. ``chars``: how many characters each line holds
    (default: estimated from its width, ``CHAR_WIDTH`` line heights per character);
    ``list_starts``: which lines start a list item (each item is a block of its own);
    ``unit``: the line height (default: the boxes' median height). ``columns``, when given,
    gets whether columns were read side by side anywhere."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if len(b) == 0:
        return []
    heights = np.maximum(b[:, 3] - b[:, 1], 1.0)
    pad = TRIM * np.minimum(heights, 3 * (unit or float(np.median(heights))))
    trimmed = b + np.stack([0 * pad, pad, 0 * pad, -pad], axis=1)
    unit = unit or float(np.median(heights))
    if chars is None:
        counts = (b[:, 2] - b[:, 0]) / (CHAR_WIDTH * unit)
    else:
        counts = np.asarray(chars, np.float64).reshape(-1)
    starts = np.zeros(len(b), bool) if list_starts is None else np.asarray(list_starts, bool)
    lines = _Lines(b, trimmed, unit, _line_pitch(b, unit), counts, starts)
    blocks = _arrange(np.arange(len(b)), lines)
    if columns is not None:
        columns.append(bool(lines.columns))
    return blocks


def _line_pitch(boxes: np.ndarray, unit: float) -> float:
    """Median distance from a line's centre to the centre of the next line below it that
    overlaps it horizontally (at most 3 line heights away); 1.5 line heights without."""
    cy = (boxes[:, 1] + boxes[:, 3]) / 2
    overlap = (boxes[:, None, 0] < boxes[None, :, 2]) & (boxes[None, :, 0] < boxes[:, None, 2])
    below = cy[None, :] - cy[:, None]
    below = np.where(overlap & (below > 0.5 * unit) & (below < 3 * unit), below, np.inf)
    nearest = below.min(axis=1)
    nearest = nearest[np.isfinite(nearest)]
    return float(np.median(nearest)) if len(nearest) else 1.5 * unit


def _arrange(idx: np.ndarray, lines: _Lines) -> list[list[int]]:
    if len(idx) <= 1:
        return [idx.tolist()]
    for split in (_section_split, _column_split, _band_split):
        parts = split(idx, lines)
        if len(parts) > 1:
            if split is not _section_split:
                lines.columns.append(True)
            return [block for part in parts for block in _arrange(part, lines)]
    return _row_blocks(idx, lines)


def _y_groups(idx: np.ndarray, lines: _Lines, min_gap: float) -> list[np.ndarray]:
    """``idx`` cut at every horizontal band of white space at least ``min_gap`` tall."""
    t = lines.trimmed[idx]
    order = np.argsort(t[:, 1], kind="stable")
    reach = np.maximum.accumulate(t[order, 3])
    cuts = np.flatnonzero(t[order[1:], 1] - reach[:-1] >= min_gap) + 1
    return [idx[part] for part in np.split(order, cuts)]


def _section_split(idx: np.ndarray, lines: _Lines) -> list[np.ndarray]:
    """``idx`` cut at horizontal bands of white space ``SECTION_GAP`` line heights tall,
    except where a column gutter runs on across one no taller than ``COLUMN_GAP``: both
    columns pausing at the same height (a heading's space in one, footnotes set off in the
    other) does not end them."""
    groups = _y_groups(idx, lines, SECTION_GAP * lines.unit)
    if len(groups) < 2:
        return groups
    runs = _column_runs(idx, lines)
    merged = [groups[0]]
    for group in groups[1:]:
        above, below = lines.boxes[merged[-1]], lines.boxes[group]
        gap = float(below[:, 1].min() - above[:, 3].max())
        top, bottom = float(above[:, 3].max()), float(below[:, 1].min())
        spanned = any(y0 < top and bottom < y1 for y0, y1 in runs)
        if spanned and gap <= COLUMN_GAP * lines.unit:
            merged[-1] = np.concatenate([merged[-1], group])
        else:
            merged.append(group)
    return merged


def _found_gutters(
    idx: np.ndarray, lines: _Lines
) -> tuple[list[gutters.Row], list[gutters.Gutter]]:
    """The rows of ``idx``'s lines and the column gutters among them (``gutters.py``)."""
    key = np.sort(idx).tobytes()
    if key in lines.found:
        return lines.found[key]
    b = lines.boxes[idx]
    rows = gutters.rows_of([b[k : k + 1] for k in range(len(b))], lines.chars[idx])
    found = gutters.find_gutters(
        rows, lines.unit, min_width=MIN_GUTTER * lines.unit, min_side=MIN_PROSE_CHARS
    )
    lines.found[key] = (rows, found)
    return rows, found


def _column_runs(idx: np.ndarray, lines: _Lines) -> list[tuple[float, float]]:
    """The vertical extents (top, bottom) of the column gutters found among ``idx``, from
    their first to their last row with text on both sides."""
    rows, found = _found_gutters(idx, lines)
    return [
        (float(rows[g.first_both].boxes[:, 1].min()), float(rows[g.last_both].boxes[:, 3].max()))
        for g in found
    ]


def _band_split(idx: np.ndarray, lines: _Lines) -> list[np.ndarray]:
    """The set cut above and below the rows its longest column gutter runs through (white
    space down a stack of rows, prose on both sides: ``gutters.py``), when no gutter runs
    through all of its rows: columns set between full-width text (an introduction and a
    list above, a table below) with no wider white space around them are then read as
    columns."""
    rows, found = _found_gutters(idx, lines)
    if not found:
        return []
    best = max(found, key=lambda g: (g.last - g.first, g.rows))
    if best.first == 0 and best.last == len(rows) - 1:
        return []  # a gutter through every row: the columns are this set's (_column_split)
    bands = (rows[: best.first], rows[best.first : best.last + 1], rows[best.last + 1 :])
    parts = [
        idx[np.concatenate([row.lines for row in band])] if band else idx[:0] for band in bands
    ]
    if len(parts[1]) and len(parts[2]):  # a list's short first item below the columns
        lead = _kicker(parts[1], parts[2], lines, lead_in=True)
        if lead is not None:
            parts[1], parts[2] = parts[1][~lead], np.concatenate([parts[1][lead], parts[2]])
    return [part for part in parts if len(part)]


def _gutters(idx: np.ndarray, lines: _Lines) -> list[tuple[int, float, float]]:
    """Candidate gutters inside the set's extent: (lines crossing, left, right) of each
    maximal x interval crossed by at most a few lines, at least MIN_GUTTER wide (or
    NARROW_GUTTER between tall enough columns); fewest crossings first, then widest."""
    t = lines.trimmed[idx]
    x0, x1 = t[:, 0], t[:, 2]
    edges = np.unique(np.concatenate([x0, x1]))
    if len(edges) < 3:
        return []
    mids = (edges[:-1] + edges[1:]) / 2
    cover = ((x0[None, :] < mids[:, None]) & (x1[None, :] > mids[:, None])).sum(axis=1)
    max_cross = int(MAX_SPANNING * len(idx))
    min_width = MIN_GUTTER * lines.unit
    narrow_width = NARROW_GUTTER * lines.unit

    def wide_enough(left: float, right: float) -> bool:
        if right - left >= min_width:
            return True
        if right - left < narrow_width:
            return False
        mid = (left + right) / 2
        beside = min(int((x1 <= mid).sum()), int((x0 >= mid).sum()))
        return beside >= NARROW_GUTTER_LINES

    found: list[tuple[int, float, float]] = []
    for level in range(max_cross + 1):
        low = cover <= level
        start = None
        for k in range(len(mids) + 1):
            if k < len(mids) and low[k]:
                start = k if start is None else start
                continue
            if start is not None:
                left, right = float(edges[start]), float(edges[k])
                if wide_enough(left, right) and (level == 0 or cover[start:k].min() == level):
                    found.append((level, left, right))
                start = None
    found.sort(key=lambda g: (g[0], g[1] - g[2]))
    return found


def _column_split(idx: np.ndarray, lines: _Lines) -> list[np.ndarray]:
    """Columns left and right of the first gutter with prose on both sides (or beside a
    sidebar, see ``gutters.read_apart``). Lines crossing it that share no rows with other
    lines (titles, footers) or that are not between the columns' lines (a band across
    their top) first cut the set into sections above, at and below them; lines crossing it
    between the columns' lines (captions, pull quotes set into the gutter) are read after
    the columns."""
    t = lines.trimmed[idx]
    for _, left, right in _gutters(idx, lines):
        mid = (left + right) / 2
        is_left, is_right = t[:, 2] <= mid, t[:, 0] >= mid
        crossing = ~(is_left | is_right)
        if is_left.sum() + is_right.sum() < 3 or not (is_left.any() and is_right.any()):
            continue
        left_boxes, right_boxes = lines.boxes[idx[is_left]], lines.boxes[idx[is_right]]
        chars = (
            gutters.text_length(lines.chars[idx[is_left]]),
            gutters.text_length(lines.chars[idx[is_right]]),
        )
        if not gutters.read_apart(
            left_boxes, right_boxes, lines.unit, MIN_PROSE_CHARS, lengths=chars
        ):
            continue
        # Crossing lines that share no rows with others (titles, footers), or that are not
        # between column lines on both sides (an abstract across the top of the columns,
        # beside a narrow column of keywords), cut the set into sections.
        apart = crossing & ~(_shares_rows(t, crossing) & _set_in(t, crossing, is_left, is_right))
        if apart.any():
            sections = _sections_around(idx, apart, lines)
            if 1 < len(sections) <= MAX_SECTIONS:
                return sections
            continue  # no cut into a few sections: columns elsewhere (_band_split)
        head, columns, foot = _peel_ends(idx[is_left], idx[is_right], lines)
        parts = [*head, *columns, idx[crossing], *foot]
        return [part for part in parts if len(part)]
    return []


def _peel_ends(
    left: np.ndarray, right: np.ndarray, lines: _Lines
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Headers, the two columns, footers: rows of one column above the start or below the
    end of balanced columns, set off by a block break, are the columns' header or footer
    and are read before or after both columns (and what is set into their gutter)."""
    head: list[np.ndarray] = []
    foot: list[np.ndarray] = []
    cols = [left, right]
    for side in (0, 1):
        for bottom in (True, False):
            mask = _beyond_balanced_end(cols[side], cols[1 - side], lines, bottom=bottom)
            if mask is not None:
                (foot if bottom else head).append(cols[side][mask])
                cols[side] = cols[side][~mask]
    return head, cols, foot


def _beyond_balanced_end(
    this: np.ndarray, other: np.ndarray, lines: _Lines, *, bottom: bool
) -> np.ndarray | None:
    """Mask of the rows of ``this`` below the end (``bottom``) or above the start of
    ``other``, when ``this`` otherwise ends (starts) with ``other`` and a block break sets
    them off; None if there are none or more than ``MAX_FOOTER_ROWS``."""
    if not len(this) or not len(other):
        return None
    t, o = lines.trimmed[this], lines.trimmed[other]
    # Looking at the top, mirror the page vertically: the start becomes an end.
    top, low = (t[:, 1], t[:, 3]) if bottom else (-t[:, 3], -t[:, 1])
    end = float(o[:, 3].max()) if bottom else -float(o[:, 1].min())
    beyond = top >= end
    if not beyond.any() or beyond.all():
        return None
    if len(_rows(lines.boxes[this[beyond]])) > MAX_FOOTER_ROWS:
        return None
    if abs(float(low[~beyond].max()) - end) > 0.5 * lines.pitch:
        return None
    cy = (top + low) / 2
    if float(cy[beyond].min() - cy[~beyond].max()) <= BLOCK_PITCH * lines.pitch:
        return None
    return beyond


def _set_in(
    t: np.ndarray, crossing: np.ndarray, is_left: np.ndarray, is_right: np.ndarray
) -> np.ndarray:
    """For each box: whether both columns have lines above and below it (a caption or pull
    quote set into the gutter between them, not a band across their top or bottom)."""
    top, bottom = t[:, 1], t[:, 3]
    inside = np.ones(len(t), bool)
    for side in (is_left, is_right):
        if not side.any():
            return np.zeros(len(t), bool)
        inside &= (top > bottom[side].min()) & (bottom < top[side].max())
    return inside & crossing


def _shares_rows(t: np.ndarray, subset: np.ndarray) -> np.ndarray:
    """For each box: whether it shares rows (overlaps vertically) with a box outside
    ``subset``."""
    other = t[~subset]
    if not len(other):
        return np.zeros(len(t), bool)
    return ((t[:, None, 1] < other[None, :, 3]) & (other[None, :, 1] < t[:, None, 3])).any(axis=1)


def _sections_around(idx: np.ndarray, cutting: np.ndarray, lines: _Lines) -> list[np.ndarray]:
    """The set cut above and below each run of ``cutting`` lines (which share no rows with
    the other lines), top to bottom; a title's kicker goes with the title."""
    t = lines.trimmed[idx]
    parts: list[list[int]] = []
    kinds: list[bool] = []
    for k in np.argsort((t[:, 1] + t[:, 3]) / 2, kind="stable").tolist():
        if not kinds or kinds[-1] != bool(cutting[k]):
            parts.append([])
            kinds.append(bool(cutting[k]))
        parts[-1].append(int(idx[k]))
    sections = [np.array(p) for p in parts]
    for k in range(1, len(sections)):
        if kinds[k] and not kinds[k - 1]:
            kicker = _kicker(sections[k - 1], sections[k], lines)
            if kicker is None:  # the first lines of a list or paragraph below the columns
                kicker = _kicker(sections[k - 1], sections[k], lines, lead_in=True)
            if kicker is not None:
                sections[k] = np.concatenate([sections[k - 1][kicker], sections[k]])
                sections[k - 1] = sections[k - 1][~kicker]
    return [s for s in sections if len(s)]


def _kicker(
    above: np.ndarray, title: np.ndarray, lines: _Lines, *, lead_in: bool = False
) -> np.ndarray | None:
    """Mask of the lines of ``above`` that are the title's kicker: at most
    ``MAX_KICKER_ROWS`` rows sitting on the title (each within ``KICKER_GAP`` line heights
    of the next, overlapping it horizontally), with a section gap or nothing above them.
    ``lead_in``: instead the first lines of what follows (a list's first item short enough
    to end before the gutter), starting where it starts (within a line height) and set off
    from the text above them by ``LEAD_IN_GAP`` line heights."""
    a, tt = lines.boxes[above], lines.boxes[title]
    min_gap = (LEAD_IN_GAP if lead_in else SECTION_GAP) * lines.unit
    gap = KICKER_GAP * lines.unit
    for start in np.flatnonzero(
        (tt[:, 1].min() - a[:, 3] <= gap)
        & (a[:, 3] <= tt[:, 1].min() + gap)
        & (a[:, 0] < tt[:, 2].max())
        & (tt[:, 0].min() < a[:, 2])
    ):
        chain = np.zeros(len(above), bool)
        chain[start] = True
        top = int(start)
        for _ in range(MAX_KICKER_ROWS):
            up = (
                ~chain
                & (a[top, 1] - a[:, 3] <= gap)
                & (a[:, 3] <= a[top, 1] + gap)
                & (a[:, 0] < a[top, 2])
                & (a[top, 0] < a[:, 2])
            )
            if not up.any():
                break
            top = int(np.flatnonzero(up)[np.argmin(a[up, 1])])
            chain |= up
        x0, x1 = a[chain, 0].min(), a[chain, 2].max()
        higher = ~chain & (a[:, 3] <= a[chain, 1].min() + gap) & (a[:, 0] < x1) & (x0 < a[:, 2])
        if len(_rows(lines.boxes[above[chain]])) > MAX_KICKER_ROWS:
            continue
        if lead_in and abs(x0 - tt[:, 0].min()) > lines.unit:
            continue
        if not higher.any() or a[chain, 1].min() - a[higher, 3].max() >= min_gap:
            return chain
    return None


def _row_blocks(idx: np.ndarray, lines: _Lines) -> list[list[int]]:
    """Rows top to bottom (a row's lines left to right), cut into blocks where the spacing
    or the line height jumps, or a list item starts (a row of one line opening with a
    bullet or an enumerator)."""
    b = lines.boxes[idx]
    rows = _rows(b)
    blocks: list[list[int]] = []
    prev: tuple[float, float] | None = None
    for row in rows:
        cy = float(np.mean((b[row, 1] + b[row, 3]) / 2))
        h = float(np.median(b[row, 3] - b[row, 1]))
        item = len(row) == 1 and bool(lines.list_starts[idx[row[0]]])
        if prev is None or item or _new_block(prev, (cy, h), lines.pitch):
            blocks.append([])
        blocks[-1].extend(int(idx[i]) for i in row)
        prev = (cy, h)
    return blocks


def _new_block(prev: tuple[float, float], row: tuple[float, float], pitch: float) -> bool:
    (cy0, h0), (cy1, h1) = prev, row
    if max(h0, h1) > BLOCK_HEIGHT * min(h0, h1):
        return True
    return cy1 - cy0 > BLOCK_PITCH * max(pitch, 0.5 * (h0 + h1))


def _rows(boxes: np.ndarray) -> list[list[int]]:
    """Boxes grouped into rows, top to bottom, each row left to right: a box joins the
    current row when its centre lies within half a line height of the row's centre."""
    cy = (boxes[:, 1] + boxes[:, 3]) / 2
    heights = np.maximum(boxes[:, 3] - boxes[:, 1], 1.0)
    rows: list[list[int]] = []
    row_cy = row_h = 0.0
    for i in np.argsort(cy, kind="stable").tolist():
        if rows and abs(cy[i] - row_cy) <= 0.5 * min(row_h, float(heights[i])):
            rows[-1].append(i)
            k = len(rows[-1])
            row_cy += (cy[i] - row_cy) / k
            row_h += (float(heights[i]) - row_h) / k
        else:
            rows.append([i])
            row_cy, row_h = float(cy[i]), float(heights[i])
    return [sorted(row, key=lambda j: float(boxes[j, 0])) for row in rows]


def reading_order(quads: np.ndarray) -> list[int]:
    """Indices of ``quads`` (Nx4x2) in plain row order, without blocks or skew (the
    ``lines`` layout mode): top to bottom by vertical centre, a box joining the current row
    when its centre lies within half a line height of the row's centre; rows left to right.
    """
    q = np.asarray(quads, dtype=np.float32).reshape(-1, 4, 2)
    if len(q) == 0:
        return []
    boxes = np.concatenate([q.min(axis=1), q.max(axis=1)], axis=1).astype(np.float64)
    return [i for row in _rows(boxes) for i in row]
