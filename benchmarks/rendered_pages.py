"""Synthetic pages with known layout: prose in two or three columns, with or without a
full-width title and footer, rendered with Pillow's built-in font, then skewed (resampled
by Pillow, as a slightly crooked scan is) or turned by quarter turns (exact).

Every page keeps its ground truth: the lines in reading order (title, each column top to
bottom, left to right, footer) and each word's glyph box (``font.getbbox`` at the position
it was drawn, mapped through the same skew or turn as the pixels). Used by
``benchmarks/layout.py`` and by the layout tests.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageDraw, ImageFont

_WORD_LIST = (
    "the of and to in is was for that with on as by at from his her they this which "
    "river market garden winter station letter morning village harbour council "
    "museum library bridge company number report season window summer evening "
    "teacher doctor painter farmer sailor miller baker writer driver keeper "
    "walked opened carried painted noticed answered finished returned followed "
    "built found kept wrote sold gave brought taught thought heard known shown "
    "quiet early narrow bright heavy simple careful famous modern ancient local "
    "northern public private useful strange gentle yellow silver wooden golden "
    "always never often seldom later again almost rather nearly slowly quickly "
    "across behind beneath between during toward against without through among "
    "travel weather history science picture journey problem success question "
    "seven twelve forty hundred thousand eighteen ninety second third fourth"
)
WORDS = tuple(_WORD_LIST.split())

LAYOUTS = (
    "two_columns",
    "three_columns",
    "title_columns_footer",
    "narrow_gutter",
    "list_beside_column",
    "interrupted_columns",
)


@dataclass(frozen=True)
class RenderedPage:
    """A rendered page and its ground truth.

    ``lines``: text lines in reading order; ``words``: every word's text and its glyph
    box (4x2, clockwise from the word's top-left) in the page's pixels; ``rotation``: how
    far the content is turned counter-clockwise (0, 90, 180, 270).
    """

    name: str
    image: Image.Image
    lines: tuple[str, ...]
    words: tuple[tuple[str, np.ndarray], ...]
    rotation: int = 0

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def prose(rng: random.Random, sentences: int) -> str:
    """Sentences of common words, some with numbers and commas."""
    out = []
    for _ in range(sentences):
        n = rng.randint(6, 14)
        words = [rng.choice(WORDS) for _ in range(n)]
        if rng.random() < 0.3:
            words.insert(rng.randint(1, n - 1), str(rng.randint(2, 1999)))
        if n > 8 and rng.random() < 0.5:
            k = rng.randint(3, n - 3)
            words[k] += ","
        words[0] = words[0].capitalize()
        out.append(" ".join(words) + ".")
    return " ".join(out)


def wrap(text: str, font: ImageFont.FreeTypeFont, width: float) -> list[str]:
    """Greedy line breaking of ``text`` to ``width`` pixels."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        trial = f"{current} {word}" if current else word
        if current and font.getlength(trial) > width:
            lines.append(current)
            current = word
        else:
            current = trial
    if current:
        lines.append(current)
    return lines


class _Canvas:
    """Draws lines and records their words' glyph boxes."""

    def __init__(self, width: int, height: int) -> None:
        self.image = Image.new("RGB", (width, height), (255, 255, 255))
        self.draw = ImageDraw.Draw(self.image)
        self.lines: list[str] = []
        self.words: list[tuple[str, np.ndarray]] = []

    def line(
        self,
        x: float,
        y: float,
        text: str,
        font: ImageFont.FreeTypeFont,
        justify: float | None = None,
    ) -> None:
        """Draw one line at ``(x, y)``; ``justify``: spread its words over that width (as
        typeset prose is, so a narrow gutter is the only white space that lines up)."""
        words = text.split(" ")
        space = font.getlength(" ")
        if justify is not None and len(words) > 1:
            space = (justify - sum(font.getlength(w) for w in words)) / (len(words) - 1)
        self.lines.append(text)
        x0 = x
        for word in words:
            self.draw.text((x0, y), word, font=font, fill=(0, 0, 0))
            left, top, right, bottom = font.getbbox(word)
            box = [
                [x0 + left, y + top],
                [x0 + right, y + top],
                [x0 + right, y + bottom],
                [x0 + left, y + bottom],
            ]
            self.words.append((word, np.array(box, np.float64)))
            x0 += font.getlength(word) + space

    def paragraph(
        self, x: float, y: float, lines: list[str], font: ImageFont.FreeTypeFont, width: float
    ) -> float:
        """Justified lines (the last one ragged) from ``y``; returns the y below them."""
        pitch = font.size * 1.45
        for k, text in enumerate(lines):
            self.line(x, y, text, font, justify=width if k < len(lines) - 1 else None)
            y += pitch
        return y


def render_layout(layout: str, *, width: int = 1500, size: int = 24, seed: int = 0) -> RenderedPage:
    """A page of prose in columns: ``two_columns``, ``three_columns`` or
    ``title_columns_footer`` (a full-width title, two columns, a full-width footer), or one
    of the layouts real pages have (:func:`render_real_layout`): ``narrow_gutter``,
    ``list_beside_column``, ``interrupted_columns``."""
    if layout not in LAYOUTS + TABLE_LAYOUTS:
        known = ", ".join(LAYOUTS + TABLE_LAYOUTS)
        raise ValueError(f"unknown layout {layout!r}; choose one of {known}")
    if layout in REAL_LAYOUTS + TABLE_LAYOUTS:
        return render_real_layout(layout, width=width, size=size, seed=seed)
    rng = random.Random(f"{layout}-{seed}")
    font = ImageFont.load_default(size=size)
    big = ImageFont.load_default(size=size * 2)
    small = ImageFont.load_default(size=max(10, size * 3 // 4))
    margin, gutter = size * 3, size * 2
    columns = 3 if layout == "three_columns" else 2
    col_w = (width - 2 * margin - (columns - 1) * gutter) / columns
    pitch = size * 1.45
    paragraphs = [
        [wrap(prose(rng, rng.randint(3, 5)), font, col_w) for _ in range(3 if columns == 2 else 2)]
        for _ in range(columns)
    ]
    body_h = max(sum(len(p) for p in col) * pitch + len(col) * pitch for col in paragraphs)
    title = footer = ""
    top = margin
    if layout == "title_columns_footer":
        title = " ".join(w.capitalize() for w in rng.sample(WORDS[30:], 5))
        top += size * 4
    height = int(top + body_h + margin + (size * 3 if layout == "title_columns_footer" else 0))
    canvas = _Canvas(width, height)
    if title:
        canvas.line(margin, margin, title, big)
    for c, col in enumerate(paragraphs):
        x = margin + c * (col_w + gutter)
        y = float(top)
        for para in col:
            for text in para:
                canvas.line(x, y, text, font)
                y += pitch
            y += pitch  # a blank line between paragraphs
    if layout == "title_columns_footer":
        footer = (
            f"The Ocrmill Review, page {rng.randint(2, 99)}, printed in {rng.randint(1950, 2024)}"
        )
        canvas.line(margin, height - margin - size, footer, small)
    return RenderedPage(
        name=layout,
        image=canvas.image,
        lines=tuple(canvas.lines),
        words=tuple(canvas.words),
    )


REAL_LAYOUTS = ("narrow_gutter", "list_beside_column", "interrupted_columns")
# Read as the page shows it only with a layout model that finds tables (pipeline/regions.py),
# so kept out of LAYOUTS, which the shipped models alone read in order.
TABLE_LAYOUTS = ("table_in_text",)


def render_real_layout(
    layout: str, *, width: int = 1500, size: int = 24, seed: int = 0
) -> RenderedPage:
    """Layouts of real pages that a wide gutter does not show, justified like typeset prose:

    * ``narrow_gutter``: a brochure: a full-width title, introduction and bullet list, two
      columns whose gutter is 0.8 of the font size (under a line height: the detector joins
      the two columns' rows), then a full-width list;
    * ``list_beside_column``: a prose column beside a bulleted list with hanging indents;
    * ``interrupted_columns``: two columns, a full-width figure (a drawn frame, no text)
      with its caption across them, two columns again;
    * ``table_in_text``: a paragraph, a ruled table of three columns whose cells hold a few
      words each (as much as a column's line of prose), a paragraph.

    Reading order: full-width parts where they stand, each column top to bottom, left to
    right; the columns above a full-width figure before those below it; a table row by row,
    each row's cells left to right.
    """
    rng = random.Random(f"{layout}-{seed}")
    font = ImageFont.load_default(size=size)
    big = ImageFont.load_default(size=size * 2)
    pitch = size * 1.45
    margin = size * 3
    full = width - 2 * margin
    gutter = round(size * 0.8) if layout == "narrow_gutter" else size * 2
    col_w = (full - gutter) / 2
    canvas = _Canvas(width, 10 * width)  # cropped to what is drawn

    def columns(y: float, paragraphs: int) -> float:
        """Two justified columns of ``paragraphs`` each from ``y``; the y below both."""
        bottom = y
        for c in range(2):
            yy = y
            for _ in range(paragraphs):
                lines = wrap(prose(rng, rng.randint(2, 4)), font, col_w)
                yy = canvas.paragraph(margin + c * (col_w + gutter), yy, lines, font, col_w) + pitch
            bottom = max(bottom, yy)
        return bottom

    def bullets(x: float, y: float, items: int, w: float) -> float:
        """A bulleted list with hanging indents from ``y``; the y below it."""
        indent = font.getlength("- ")
        for _ in range(items):
            lines = wrap(prose(rng, 1), font, w - indent)
            canvas.line(x, y, "- " + lines[0], font)
            y += pitch
            for text in lines[1:]:
                canvas.line(x + indent, y, text, font)
                y += pitch
        return y

    def table(y: float, rows: int, columns: int) -> float:
        """A ruled table from ``y``, a few words per cell; the y below it."""
        row_h, pad = pitch * 1.5, size * 0.6
        cell_w = full / columns
        top = y
        for _row in range(rows):
            for c in range(columns):
                text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 4)))
                while font.getlength(text) > cell_w - 2 * pad:
                    text = text.rsplit(" ", 1)[0]
                canvas.line(margin + c * cell_w + pad, y + (row_h - size) / 2, text, font)
            y += row_h
        for r in range(rows + 1):
            canvas.draw.line(
                (margin, top + r * row_h, margin + full, top + r * row_h), (0, 0, 0), 2
            )
        for c in range(columns + 1):
            canvas.draw.line((margin + c * cell_w, top, margin + c * cell_w, y), (0, 0, 0), 2)
        return y + pitch

    y = float(margin)
    if layout == "narrow_gutter":
        title = " ".join(w.capitalize() for w in rng.sample(WORDS[30:], 4))
        canvas.line(margin, y, title, big)
        y += size * 3.5
        y = canvas.paragraph(margin, y, wrap(prose(rng, 3), font, full), font, full) + pitch * 0.5
        y = bullets(margin, y, 3, full) + pitch
        y = columns(y, 2)
        y = bullets(margin, y, 3, full)
    elif layout == "list_beside_column":
        for _ in range(2):
            lines = wrap(prose(rng, rng.randint(3, 5)), font, col_w)
            y = canvas.paragraph(margin, y, lines, font, col_w) + pitch
        bottom = y
        y = float(margin)
        bullets(margin + col_w + gutter, y, 6, col_w)
        y = bottom
    elif layout == "table_in_text":
        y = canvas.paragraph(margin, y, wrap(prose(rng, 3), font, full), font, full) + pitch
        y = table(y, rows=8, columns=3)
        y = canvas.paragraph(margin, y, wrap(prose(rng, 3), font, full), font, full)
    else:  # interrupted_columns
        y = columns(y, 1) + pitch * 0.5
        canvas.draw.rectangle((margin, y, margin + full, y + size * 8), outline=(0, 0, 0), width=3)
        y += size * 8 + pitch * 0.5
        caption = "Figure 1. " + prose(rng, 1)
        canvas.line(margin, y, caption[: int(len(caption) * 0.9)].rstrip(), font)
        y += pitch * 2
        y = columns(y, 1)
    height = int(y + margin)
    image = canvas.image.crop((0, 0, width, height))
    return RenderedPage(
        name=layout, image=image, lines=tuple(canvas.lines), words=tuple(canvas.words)
    )


def skew(page: RenderedPage, degrees: float) -> RenderedPage:
    """The page turned counter-clockwise by ``degrees`` (Pillow, bicubic, canvas grown,
    white fill); word boxes follow."""
    img = page.image
    out = img.rotate(degrees, resample=Image.BICUBIC, expand=True, fillcolor=(255, 255, 255))
    a = math.radians(degrees)
    cx, cy = img.width / 2, img.height / 2
    ox, oy = out.width / 2, out.height / 2
    rot = np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])

    def move(box: np.ndarray) -> np.ndarray:
        return (box - [cx, cy]) @ rot.T + [ox, oy]

    words = tuple((t, move(b)) for t, b in page.words)
    return replace(page, name=f"{page.name}@{degrees:+g}deg", image=out, words=words)


_TRANSPOSE = {
    90: Image.Transpose.ROTATE_90,
    180: Image.Transpose.ROTATE_180,
    270: Image.Transpose.ROTATE_270,
}


def turn(page: RenderedPage, rotation: int) -> RenderedPage:
    """The page turned counter-clockwise by a quarter-turn multiple (exact pixels)."""
    if rotation == 0:
        return page
    w, h = page.image.size

    def move(box: np.ndarray) -> np.ndarray:
        x, y = box[:, 0], box[:, 1]
        if rotation == 90:
            return np.stack([y, w - x], axis=1)
        if rotation == 180:
            return np.stack([w - x, h - y], axis=1)
        return np.stack([h - y, x], axis=1)

    return replace(
        page,
        name=f"{page.name}@rot{rotation}",
        image=page.image.transpose(_TRANSPOSE[rotation]),
        words=tuple((t, move(b)) for t, b in page.words),
        rotation=(page.rotation + rotation) % 360,
    )


def polygon_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two convex quadrilaterals."""
    import cv2

    pa = cv2.convexHull(np.asarray(a, np.float32).reshape(-1, 1, 2))
    pb = cv2.convexHull(np.asarray(b, np.float32).reshape(-1, 1, 2))
    inter, _ = cv2.intersectConvexConvex(pa, pb)
    union = cv2.contourArea(pa) + cv2.contourArea(pb) - inter
    return float(inter / union) if union > 0 else 0.0
