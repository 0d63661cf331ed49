"""What a block of the page is, where its text and place say so reliably: a title, a
heading, a paragraph, a list item, a caption, a running header or footer. A block that
shows none of these plainly gets no kind (``None``): a kind is omitted rather than guessed.

Works on the de-skewed, upright boxes of ``layout.py`` (axis-aligned, ``x0, y0, x1, y1``)
and the lines' texts; nothing here looks at pixels, so bold type, which only pixels show,
makes no heading: a heading is taller than the text, numbered, or in capitals.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

import numpy as np

BlockKind = Literal[
    "title", "heading", "paragraph", "list_item", "caption", "header", "footer", "table"
]
BLOCK_KINDS: tuple[BlockKind, ...] = (
    "title",
    "heading",
    "paragraph",
    "list_item",
    "caption",
    "header",
    "footer",
    "table",  # from a layout model's table region (layout.page_layout), never from text
)

# "Figure 3:", "Fig. 2.", "Table IV", "Abbildung 1", "Tableau 2", ... at the start of a block.
CAPTION = re.compile(
    r"^(fig(ure)?|table|tab|abb(ildung)?|tabelle|tableau|tabla|figura|tabella|tabel|"
    r"exhibit|chart|plate|graph|map|scheme|diagram)\.?\s*([0-9]+|[ivxlc]+)[a-z]?\b",
    re.IGNORECASE,
)
# A list item's first line: a bullet or a dash, or an enumerator ("1.", "(a)", "iv)") when
# the blocks beside it start with one too (alone, "1. Results" is a numbered heading). An
# asterisk is left out: in print it marks footnotes.
BULLET = re.compile(r"^[•·▪◦●○■□►▸‣⁃–—-]\s+\S")
ENUMERATOR = re.compile(r"^\(?(\d{1,2}|[a-z]|[ivx]{1,4})[.)]\s+\S")
# A numbered heading: "2", "3.1", "IV.", "A." before a few words.
NUMBERED = re.compile(r"^(\d+(\.\d+)*\.?|[IVX]+\.|[A-Z]\.)\s+\S")
# Headers and footers sit within this share of the text's height from its top or bottom,
# hold at most two lines, and are set off from the rest by a line height of space.
EDGE_SHARE = 0.06
# A title's lines are at least this many times the page's line height, a heading's this.
TITLE_HEIGHT = 1.4
HEADING_HEIGHT = 1.15
# Headings are short: at most this many words on at most two lines.
HEADING_WORDS = 12
# A paragraph's lines hold prose (at least this many words each, median) and most of them
# after the first (70 %) start at one left edge (within half a line height; the first may
# be indented): centred lines (a title block, an author list) are not a paragraph.
PARAGRAPH_WORDS = 5


def is_list_start(text: str) -> bool:
    """Does this line start a list item (a bullet, a dash, an enumerator)?"""
    line = text.strip()
    return bool(BULLET.match(line) or ENUMERATOR.match(line))


def block_kinds(
    blocks: Sequence[Sequence[int]], boxes: np.ndarray, texts: Sequence[str], unit: float
) -> list[BlockKind | None]:
    """The kind of each block (its lines' indices into ``boxes`` and ``texts``), or None."""
    if not blocks:
        return []
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    top, bottom = float(b[:, 1].min()), float(b[:, 3].max())
    height = max(bottom - top, 1.0)
    kinds: list[BlockKind | None] = [None] * len(blocks)
    heights = [float(np.median(b[list(block), 3] - b[list(block), 1])) for block in blocks]
    firsts = [texts[block[0]].strip() for block in blocks]
    enumerated = [bool(ENUMERATOR.match(first)) for first in firsts]
    for k, block in enumerate(blocks):
        rows = list(block)
        first = firsts[k]
        words = sum(len(texts[i].split()) for i in rows)
        edge = _at_edge(b, rows, top, bottom, height, unit)
        in_list = enumerated[k] and (
            (k > 0 and enumerated[k - 1]) or (k + 1 < len(blocks) and enumerated[k + 1])
        )
        heading = _is_heading(first, rows, words, heights[k], unit, texts)
        if CAPTION.match(first):
            kinds[k] = "caption"
        elif edge is not None and len(rows) <= 2 and heights[k] <= HEADING_HEIGHT * unit:
            kinds[k] = edge
        elif heading and len(rows) == 1 and heights[k] >= HEADING_HEIGHT * unit:
            kinds[k] = "heading"  # "3. Results" set large above a numbered list
        elif (BULLET.match(first) or in_list) and len(rows) <= 8:
            kinds[k] = "list_item"
        elif heading:
            kinds[k] = "heading"
        elif _is_paragraph(rows, texts, b, unit):
            kinds[k] = "paragraph"
    title = _title(blocks, b, heights, unit, top, height, kinds)
    if title is not None:
        kinds[title] = "title"
    return kinds


def _at_edge(
    b: np.ndarray, rows: list[int], top: float, bottom: float, height: float, unit: float
) -> Literal["header", "footer"] | None:
    """``header`` or ``footer`` when the block sits at the text's top or bottom edge, set
    off from every other line by a line height."""
    y0, y1 = float(b[rows, 1].min()), float(b[rows, 3].max())
    below, above = b[:, 1] >= y1, b[:, 3] <= y0  # lines beside it (a header's other half) aside
    if y1 <= top + EDGE_SHARE * height and below.any() and float(b[below, 1].min()) - y1 >= unit:
        return "header"
    if y0 >= bottom - EDGE_SHARE * height and above.any() and y0 - float(b[above, 3].max()) >= unit:
        return "footer"
    return None


def _is_heading(
    first: str, rows: list[int], words: int, height: float, unit: float, texts: Sequence[str]
) -> bool:
    if len(rows) > 2 or words > HEADING_WORDS or first[-1:] in ".,;:":
        return False
    letters = [c for i in rows for c in texts[i] if c.isalpha()]
    capitals = len(letters) >= 4 and all(c.isupper() for c in letters)
    return height >= HEADING_HEIGHT * unit or bool(NUMBERED.match(first)) or capitals


def _is_paragraph(rows: list[int], texts: Sequence[str], b: np.ndarray, unit: float) -> bool:
    counts = [len(texts[i].split()) for i in rows]
    if len(rows) == 1:
        return counts[0] >= 2 * PARAGRAPH_WORDS and texts[rows[0]].rstrip()[-1:] in ".!?:"
    lefts = b[rows[1:], 0]  # most lines start at one edge; the first may be indented
    edge = float(np.median(lefts))
    aligned = float(np.mean(np.abs(lefts - edge) <= 0.5 * unit)) >= 0.7
    return (
        aligned
        and b[rows[0], 0] >= edge - 0.5 * unit
        and float(np.median(counts)) >= PARAGRAPH_WORDS
    )


def _title(
    blocks: Sequence[Sequence[int]],
    b: np.ndarray,
    heights: list[float],
    unit: float,
    top: float,
    height: float,
    kinds: list[BlockKind | None],
) -> int | None:
    """The page's title: the block of the tallest lines in the upper part of the text, at
    least ``TITLE_HEIGHT`` line heights, at most three lines, with no other block there
    nearly as tall."""
    upper = [
        j for j, block in enumerate(blocks) if float(b[list(block), 1].min()) <= top + 0.4 * height
    ]
    if not upper:
        return None
    k = max(upper, key=lambda j: heights[j])
    rivals = [j for j in upper if j != k and heights[j] >= 0.9 * heights[k]]
    if heights[k] < TITLE_HEIGHT * unit or rivals or len(blocks[k]) > 3 or kinds[k] == "caption":
        return None
    return k
