"""The invisible text layer of a searchable PDF page, as a pure rendering of a page result.

Each word is drawn in the glyphless font (:mod:`ocrmill.outputs.glyphless`) in text render
mode 3 (invisible) on its own box: the text matrix puts the baseline on the box's bottom
edge (a character's box then spans the word box's height), turned to the box's angle, and
horizontal scaling stretches the word to its box's width. Words are drawn in reading order
with a space after each but a line's last, so search finds them, selection highlights them
where their pixels are, and copy-paste and text extraction give the page text in order.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from ocrmill.outputs.glyphless import DESCENT, GLYPH_WIDTH, UNITS_PER_EM, encode_text

Point = tuple[float, float]


class _Box(Protocol):
    @property
    def text(self) -> str: ...

    @property
    def box(self) -> Sequence[Sequence[float]]: ...


class _Line(_Box, Protocol):
    @property
    def words(self) -> Sequence[_Box]: ...


@dataclass(frozen=True)
class PixelMap:
    """An affine map from image pixels (x right, y down) to PDF user space (points, y up):
    ``X = a x + c y + e``, ``Y = b x + d y + f``."""

    a: float
    b: float
    c: float
    d: float
    e: float
    f: float

    def __call__(self, x: float, y: float) -> Point:
        return (self.a * x + self.c * y + self.e, self.b * x + self.d * y + self.f)

    @classmethod
    def for_page(
        cls,
        box: tuple[float, float, float, float],
        rotate: int,
        width_px: int,
        height_px: int,
    ) -> PixelMap:
        """The map for an image of the page's visible area ``box`` (x0, y0, x1, y1 of its
        crop box, in points) as a viewer shows it: turned clockwise by ``rotate`` degrees
        (the page's ``/Rotate``), ``width_px`` x ``height_px`` pixels."""
        x0, y0, x1, y1 = box
        w, h = x1 - x0, y1 - y0
        rotate %= 360
        if rotate in (90, 270):
            sx, sy = h / width_px, w / height_px
        else:
            sx, sy = w / width_px, h / height_px
        if rotate == 0:  # pixel (0, 0) is the top-left corner (x0, y1)
            return cls(sx, 0.0, 0.0, -sy, x0, y1)
        if rotate == 90:  # shown turned clockwise: pixel (0, 0) is (x0, y0)
            return cls(0.0, sx, sy, 0.0, x0, y0)
        if rotate == 180:
            return cls(-sx, 0.0, 0.0, sy, x1, y0)
        if rotate == 270:
            return cls(0.0, -sx, -sy, 0.0, x1, y1)
        raise ValueError(f"a page's /Rotate must be a multiple of 90, got {rotate}")


def _fmt(value: float) -> str:
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return text if text not in ("-0", "") else "0"


def _word_operators(text: str, quad: Sequence[Point], font: str) -> str | None:
    """Operators drawing ``text`` on ``quad`` (tl, tr, br, bl as read, in user space)."""
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = quad
    ux, uy = ((x1 - x0) + (x2 - x3)) / 2, ((y1 - y0) + (y2 - y3)) / 2  # along the text
    vx, vy = ((x3 - x0) + (x2 - x1)) / 2, ((y3 - y0) + (y2 - y1)) / 2  # top to bottom
    width, height = math.hypot(ux, uy), math.hypot(vx, vy)
    glyphs = len(text.rstrip(" "))
    if width < 0.5 or height < 0.5 or glyphs == 0:
        return None
    ux, uy = ux / width, uy / width
    upx, upy = -vx / height, -vy / height
    # Baseline above the bottom edge by the descent, so a character's box (descent to
    # ascent) spans the word box.
    lift = -DESCENT / UNITS_PER_EM * height
    ox, oy = x3 + upx * lift, y3 + upy * lift
    natural = glyphs * GLYPH_WIDTH / UNITS_PER_EM * height
    scale = 100.0 * width / natural
    return (
        f"/{font} {_fmt(height)} Tf {_fmt(scale)} Tz "
        f"{_fmt(ux)} {_fmt(uy)} {_fmt(upx)} {_fmt(upy)} {_fmt(ox)} {_fmt(oy)} Tm "
        f"<{encode_text(text).hex().upper()}> Tj"
    )


def _spaced(line: str, words: Sequence[str]) -> list[bool]:
    """For each word of ``line``: does a space follow it in the line's text? (Words split at
    spaces are followed by one; CJK characters, words of their own, are not.)"""
    out: list[bool] = []
    at = 0
    for word in words:
        found = line.find(word, at)
        if found < 0:  # the words do not spell the line: separate them all
            return [True] * (len(words) - 1) + [False]
        at = found + len(word)
        out.append(at < len(line) and line[at].isspace())
    if out:
        out[-1] = False
    return out


def text_layer(lines: Iterable[_Line], to_page: PixelMap, font: str = "OcrmillText") -> bytes:
    """A content stream drawing ``lines`` (in reading order; each with ``words``, or its own
    text and box when it has none) invisibly, mapped from image pixels by ``to_page``."""
    ops = ["q", "BT", "3 Tr"]
    for line in lines:
        words = list(line.words) or [line]
        spaced = _spaced(line.text, [w.text for w in words])
        # Words the line's text joins without a space (CJK characters) are drawn as one run
        # over their joint box: a gap between their glyphs would read as a space.
        runs: list[tuple[str, list[Point]]] = []
        after_space = True
        for word, space in zip(words, spaced):
            box: list[Point] = [(float(x), float(y)) for x, y in word.box]
            if runs and not after_space:
                text, quad = runs[-1]
                runs[-1] = (text + word.text, [quad[0], box[1], box[2], quad[3]])
            else:
                runs.append((word.text, box))
            after_space = space
            if space:
                runs[-1] = (runs[-1][0] + " ", runs[-1][1])
        for text, run_box in runs:
            quad = [to_page(x, y) for x, y in run_box]
            drawn = _word_operators(text, quad, font)
            if drawn is not None:
                ops.append(drawn)
    ops += ["ET", "Q"]
    return ("\n".join(ops) + "\n").encode("ascii")
