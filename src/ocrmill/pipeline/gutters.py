"""Column gutters found in the words' white space, and the lines cut at them.

Where two columns are set close (a gutter of about one line height or less, as brochures,
newsletters and old two-column prints have), the detector often finds one line box across
both columns: each row of the left column and the same row of the right become one line,
and no reading order can untangle them. The words of such a line still show the gutter: a
gap in the same place, row after row, with the right column's words starting at one left
edge. This module finds those gutters and says where to cut the lines that cross them.

A gutter is a vertical strip of white space between words:

* it runs down a stack of rows that no word crosses;
* at least ``MIN_ROWS`` of those rows have words on both sides of it (the rest have text
  on one side only: a short last line, a paragraph break in one column);
* it is at least ``MIN_WIDTH`` line heights wide and wider than the row's usual word gaps;
* the words right of it start at one left edge (within ``EDGE_TOLERANCE`` line heights,
  in ``MIN_ROWS`` rows and ``EDGE_SHARE`` of them at least): a column's margin, which
  typographic "rivers" in justified text do not have;
* both sides hold prose (lines at least ``MIN_SIDE`` line heights long; a receipt's
  prices, a form's labels are narrower), or one does and the other's lines keep a rhythm
  of their own, not one on each of its lines (a sidebar, an infobox; see
  :func:`read_apart`).

Everything works on axis-aligned boxes in the de-skewed, upright page frame (see
``layout.py``); nothing here looks at pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# A gutter is at least this many line heights wide.
MIN_WIDTH = 0.35
# ... and at least this many times the median word gap of the rows it runs through.
MIN_GAP_RATIO = 1.15
# A line crossing it whose ends stay this many line heights inside the columns' outer edges
# is set into them (a caption, a pull quote), and the columns go on beside and below it.
INSET_MARGIN = 3.0
# Cutting lines, a gutter needs more evidence than between separate lines: justified text
# with wide spaces has "rivers" of white space down a few rows (its words are exact, so a
# column's left edge is sharp).
WORD_MIN_ROWS = 4
WORD_EDGE_TOLERANCE = 0.15
# A line is cut at a gutter when both pieces start at their column's margin: no more than
# MARGIN_SLACK line heights left of it, no more than MAX_INDENT right of it (an indent).
MARGIN_SLACK = 0.5
MAX_INDENT = 3.0
# A row that leaves less than this share of it free crosses it (a caption's word gap that
# happens to lie in it does not narrow it to that gap).
MIN_KEEP = 0.5
# At least this many rows have words on both sides of it.
MIN_ROWS = 3
# In at least MIN_ROWS and this share of those rows, the first word right of it starts at
# one left edge (within 2 x EDGE_TOLERANCE line heights of one another).
EDGE_SHARE = 0.4
EDGE_TOLERANCE = 0.35
# The text on each side of it is at least this many line heights long (median), or on one
# side, the other's lines keeping their own rhythm (fewer than MAX_PAIRED of them within
# PAIR_TOLERANCE line heights of a prose line's centre): see read_apart.
MIN_SIDE = 6.0
MAX_PAIRED = 0.6
# ... and the prose beside a sidebar is at least this many times min_side long (a page's
# text, not a receipt's longest item names).
SIDEBAR_PROSE = 2.5
PAIR_TOLERANCE = 0.25


@dataclass(frozen=True)
class Gutter:
    """White space from ``left`` to ``right`` (x), from row ``first`` to row ``last``;
    ``rows`` of them (``first_both`` to ``last_both``) have text on both sides, which starts
    at ``left_edge`` (the left column's margin) and ``right_edge`` (the right column's) in
    most of them."""

    left: float
    right: float
    first: int
    last: int
    rows: int = 0
    left_edge: float = 0.0
    right_edge: float = 0.0
    first_both: int = 0  # the first and last rows with text on both sides
    last_both: int = 0


@dataclass(frozen=True)
class Row:
    """The boxes of one row, left to right, the item (line) each belongs to and how much
    text each holds (its width, or its characters where they are known)."""

    boxes: np.ndarray  # Kx4: x0, y0, x1, y1
    lines: np.ndarray  # K item indices
    sizes: np.ndarray  # K


def cut_points(line_words: list[np.ndarray], unit: float | None = None) -> list[list[int]]:
    """For each line (its words' axis-aligned boxes, Kx4 ``x0, y0, x1, y1``, left to
    right), the word indices where it is cut into pieces: ``[3]`` means words 0-2 and 3-.
    ``unit`` is the page's line height (default: the median height of the lines)."""
    cuts: list[list[int]] = [[] for _ in line_words]
    boxes = [np.asarray(w, np.float64).reshape(-1, 4) for w in line_words]
    if sum(len(b) > 1 for b in boxes) < MIN_ROWS:
        return cuts
    if unit is None:
        heights = [float(np.median(b[:, 3] - b[:, 1])) for b in boxes if len(b)]
        unit = float(np.median(heights)) if heights else 1.0
    rows = rows_of(boxes)
    gaps = [right - left for row in rows for left, right in _gaps(row)]
    word_gap = float(np.median(gaps)) if gaps else 0.3 * unit
    min_width = max(MIN_WIDTH * unit, MIN_GAP_RATIO * word_gap)
    found = find_gutters(
        rows,
        unit,
        min_width=min_width,
        min_side=MIN_SIDE * unit,
        min_rows=WORD_MIN_ROWS,
        edge_tolerance=WORD_EDGE_TOLERANCE,
        insets=False,
        seeds_in_lines=True,
    )
    for gutter in found:
        middle = (gutter.left + gutter.right) / 2
        for row in rows[gutter.first : gutter.last + 1]:
            for line in np.unique(row.lines):
                words = boxes[line]
                right = int(np.searchsorted((words[:, 0] + words[:, 2]) / 2, middle))
                if not 0 < right < len(words) or right in cuts[line]:
                    continue
                # Both pieces start at their column's margin (or a paragraph's indent
                # from it): a line that does (a caption across the gutter) is not cut.
                starts = (words[0, 0] - gutter.left_edge, words[right, 0] - gutter.right_edge)
                if all(-MARGIN_SLACK * unit <= d <= MAX_INDENT * unit for d in starts):
                    cuts[line].append(right)
    return [sorted(c) for c in cuts]


def rows_of(boxes: list[np.ndarray], sizes: np.ndarray | None = None) -> list[Row]:
    """Items (a line's words, or one box each) grouped into rows top to bottom: an item
    joins a row when its centre lies within half a line height of the row's; each row's
    boxes left to right. ``sizes``: how much text each item holds (one value per item,
    with one box each; default: the boxes' widths)."""
    order = sorted(
        (i for i in range(len(boxes)) if len(boxes[i])),
        key=lambda i: float(boxes[i][:, 1].min() + boxes[i][:, 3].max()),
    )
    groups: list[list[int]] = []
    centre = height = 0.0
    for i in order:
        b = boxes[i]
        cy, h = float(b[:, 1].min() + b[:, 3].max()) / 2, float(b[:, 3].max() - b[:, 1].min())
        if groups and abs(cy - centre) <= 0.5 * min(h, height):
            groups[-1].append(i)
            n = len(groups[-1])
            centre += (cy - centre) / n
            height += (h - height) / n
        else:
            groups.append([i])
            centre, height = cy, h
    rows = []
    for group in groups:
        stacked = np.concatenate([boxes[i] for i in group])
        owners = np.concatenate([np.full(len(boxes[i]), i) for i in group])
        size = stacked[:, 2] - stacked[:, 0] if sizes is None else np.asarray(sizes)[owners]
        by_x = np.argsort(stacked[:, 0], kind="stable")
        rows.append(Row(stacked[by_x], owners[by_x], size[by_x]))
    return rows


def _gaps(row: Row) -> list[tuple[float, float]]:
    """The white space between consecutive words of a row (words that overlap leave none)."""
    b = row.boxes
    reach = np.maximum.accumulate(b[:, 2])
    return [
        (float(reach[k]), float(b[k + 1, 0])) for k in range(len(b) - 1) if b[k + 1, 0] > reach[k]
    ]


def find_gutters(
    rows: list[Row],
    unit: float,
    *,
    min_width: float,
    min_side: float,
    min_rows: int = MIN_ROWS,
    edge_tolerance: float = EDGE_TOLERANCE,
    insets: bool = True,
    seeds_in_lines: bool = False,
) -> list[Gutter]:
    """The gutters of ``rows`` (see the module docstring) at least ``min_width`` wide with
    at least ``min_side`` of text on each side (pixels), with text on both sides in
    ``min_rows`` rows, the right side starting at one edge within ``edge_tolerance`` line
    heights; each run of rows once. With ``insets``, a row whose boxes cross it with text
    on both sides (a caption set into the gutter between column lines) does not end it;
    cutting lines into words, a full-width line is such a row, so it does.
    ``seeds_in_lines``: look only from white space between two words of one line."""
    found: list[Gutter] = []
    # Narrow gaps first: a gutter's own width, before the wide gaps beside short lines.
    seeds = sorted(
        (
            (right - left, r, left, right)
            for r, row in enumerate(rows)
            for left, right in _gaps(row)
        ),
    )
    if seeds_in_lines:  # only white space inside a line can say where to cut it
        seeds = [seed for seed in seeds if _inside_a_line(rows[seed[1]], seed[2])]
    failed: list[tuple[int, int, float, float]] = []  # rows and white space that were not
    rules = (min_width, min_side, min_rows, edge_tolerance)
    for width, r, left, right in seeds:
        if width < min_width:
            continue
        if any(g.first <= r <= g.last and g.left < right and left < g.right for g in found):
            continue  # a stretch of a gutter already found
        if any(a <= r <= b and lo < right and left < hi for a, b, lo, hi in failed):
            continue  # the same white space as one followed before, and not a gutter
        gutter, span = _follow(rows, r, (left, right), rules, unit, insets)
        if gutter is None:
            failed.append(span)
        else:
            found.append(gutter)
    return found


def read_apart(
    left: np.ndarray,
    right: np.ndarray,
    unit: float,
    min_side: float,
    *,
    lengths: tuple[float, float] | None = None,
) -> bool:
    """Are the boxes left and right of a gutter read one side after the other? When both
    sides hold prose (:func:`text_length` at least ``min_side``), and when one holds long
    prose (``SIDEBAR_PROSE`` times that) and the other's lines keep a rhythm of their own (a sidebar, an infobox beside the text: fewer
    than ``MAX_PAIRED`` of them on a line of the prose side's). Lines paired row by row
    with a prose side's (a receipt's prices beside its items, a form's values) are read
    row by row. ``lengths``: the two sides' text lengths (default: their boxes' median
    widths; a row's words on one side make one length)."""
    if not len(left) or not len(right):
        return False
    if lengths is None:
        lengths = (text_length(left[:, 2] - left[:, 0]), text_length(right[:, 2] - right[:, 0]))
    if min(lengths) >= min_side:
        return True
    if max(lengths) < SIDEBAR_PROSE * min_side:
        return False
    narrow, wide = (left, right) if lengths[0] < lengths[1] else (right, left)
    return paired_share(narrow, wide, unit) < MAX_PAIRED


def text_length(lengths: np.ndarray | list[float]) -> float:
    """The length of line where half of the text is: the median of ``lengths`` weighted by
    themselves (a column's prose, not the many short labels of a figure set in it)."""
    values = np.sort(np.asarray(lengths, np.float64))
    if not len(values) or values.sum() <= 0:
        return 0.0
    cum = np.cumsum(values)
    return float(values[np.searchsorted(cum, cum[-1] / 2)])


def paired_share(boxes: np.ndarray, others: np.ndarray, unit: float) -> float:
    """The share of ``boxes`` whose vertical centre lies within ``PAIR_TOLERANCE`` line
    heights of one of ``others``' (on the same text line)."""
    if not len(boxes) or not len(others):
        return 0.0
    centres = (boxes[:, 1] + boxes[:, 3]) / 2
    other = np.sort((others[:, 1] + others[:, 3]) / 2)
    at = np.clip(np.searchsorted(other, centres), 1, len(other)) - 1
    nearest = np.minimum(
        np.abs(other[at] - centres), np.abs(other[np.minimum(at + 1, len(other) - 1)] - centres)
    )
    return float(np.mean(nearest <= PAIR_TOLERANCE * unit))


def _aligned(starts: np.ndarray, tolerance: float) -> tuple[int, float]:
    """The most of ``starts`` within ``2 x tolerance`` of one another, and where they are
    (their lowest): the rows that start at a column's left edge (a table's cells or a
    figure's labels beside it start elsewhere)."""
    if not len(starts):
        return 0, 0.0
    ordered = np.sort(starts)
    counts = np.searchsorted(ordered, ordered + 2 * tolerance, side="right") - np.arange(
        len(ordered)
    )
    best = int(np.argmax(counts))
    return int(counts[best]), float(ordered[best])


def _inset(boxes: np.ndarray, lo: float, hi: float, outer: list[float], unit: float) -> bool:
    """Is what crosses ``lo``-``hi`` in this row set into the columns (a caption, a pull
    quote) rather than across them: text on both sides of it in the row, or well inside
    the columns' outer edges (a full-width line reaches them)?"""
    crossing = boxes[(boxes[:, 0] < hi) & (boxes[:, 2] > lo)]
    if (boxes[:, 2] <= lo).any() and (boxes[:, 0] >= hi).any():
        return True
    margin = INSET_MARGIN * unit
    return bool(
        crossing[:, 0].min() > outer[0] + margin and crossing[:, 2].max() < outer[1] - margin
    )


def _inside_a_line(row: Row, left: float) -> bool:
    """Is the gap of ``row`` that starts at ``left`` between two words of one line?"""
    k = int(np.searchsorted(np.maximum.accumulate(row.boxes[:, 2]), left))
    return k + 1 < len(row.lines) and row.lines[k] == row.lines[k + 1]


def _free(boxes: np.ndarray, lo: float, hi: float) -> tuple[float, float]:
    """The widest stretch of ``lo``-``hi`` that no box covers."""
    inside = boxes[(boxes[:, 0] < hi) & (boxes[:, 2] > lo)]
    best, start = (lo, lo), lo
    for x0, x1 in sorted(zip(inside[:, 0].tolist(), inside[:, 2].tolist())):
        if x0 - start > best[1] - best[0]:
            best = (start, x0)
        start = max(start, x1)
    if hi - start > best[1] - best[0]:
        best = (start, hi)
    return best


def _follow(
    rows: list[Row],
    seed: int,
    gap: tuple[float, float],
    rules: tuple[float, float, int, float],
    unit: float,
    insets: bool,
) -> tuple[Gutter | None, tuple[int, int, float, float]]:
    """Grow the white space ``left``-``right`` of row ``seed`` up and down through the rows
    no word crosses, narrowing it to the gaps that continue it: the gutter if it passes
    the tests of the module docstring (``rules``: min width, min side, min rows, edge
    tolerance, as :func:`find_gutters` takes them; ``insets``: a row with text on both sides
    of what crosses it does not end it), and the rows and white space it followed."""
    left, right = gap
    min_width, min_side, min_rows, edge_tolerance = rules
    both: dict[int, tuple[float, float]] = {seed: (left, right)}
    b = rows[seed].boxes
    outer = [float(b[:, 0].min()), float(b[:, 2].max())]  # the columns' outer edges so far
    first = last = seed
    for step in (-1, 1):
        lo, hi = left, right
        r = seed + step
        while 0 <= r < len(rows):
            b = rows[r].boxes
            free = _free(b, lo, hi)
            width = free[1] - free[0]
            if width < min_width or width < MIN_KEEP * (hi - lo):
                if insets and _inset(b, lo, hi, outer, unit):
                    r += step  # part of the run only if the columns go on beyond it
                    continue
                break  # a word crosses it: a title, a caption, a full-width line
            lo, hi = free  # words reaching into it (a ragged edge) narrow it
            if (b[:, 2] <= lo + 1e-6).any() and (b[:, 0] >= hi - 1e-6).any():
                both[r] = (lo, hi)
                outer = [min(outer[0], float(b[:, 0].min())), max(outer[1], float(b[:, 2].max()))]
            first, last = min(first, r), max(last, r)
            r += step
    lo = max(g[0] for g in both.values())
    hi = min(g[1] for g in both.values())
    span = (first, last, lo, hi)
    if len(both) < min_rows or hi - lo < min_width:
        return None, span
    starts, lefts = [], []
    for r in both:
        b = rows[r].boxes
        after, before = b[b[:, 0] >= hi - 1e-6], b[b[:, 2] <= lo + 1e-6]
        if not len(after) or not len(before):
            return None, span
        starts.append(float(after[:, 0].min()))
        lefts.append(float(before[:, 0].min()))
    count, right_edge = _aligned(np.array(starts), edge_tolerance * unit)
    if count < max(min_rows, EDGE_SHARE * len(both)):
        return None, span
    left_edge = _aligned(np.array(lefts), edge_tolerance * unit)[1]
    run = np.concatenate([rows[r].boxes for r in range(first, last + 1)])
    left_boxes, right_boxes = run[run[:, 2] <= lo + 1e-6], run[run[:, 0] >= hi - 1e-6]
    # Each row's longest line on each side (a line's words count together, cutting lines;
    # a form's label and value beside it are two short lines, not one long one).
    extents: tuple[list[float], list[float]] = ([], [])
    for r in range(first, last + 1):
        b, size, items = rows[r].boxes, rows[r].sizes, rows[r].lines
        for extent, side in zip(extents, (b[:, 2] <= lo + 1e-6, b[:, 0] >= hi - 1e-6)):
            if side.any():
                owner = items[side]
                extent.append(float(np.bincount(owner - owner.min(), weights=size[side]).max()))
    if not all(extents):
        return None, span
    lengths = (text_length(extents[0]), text_length(extents[1]))
    if not read_apart(left_boxes, right_boxes, unit, min_side, lengths=lengths):
        return None, span
    gutter = Gutter(lo, hi, first, last, len(both), left_edge, right_edge, min(both), max(both))
    return gutter, span
