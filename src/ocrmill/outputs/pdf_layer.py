"""The invisible text layer of a searchable PDF page, as a pure rendering of a page result.

The layer is drawn in the glyphless font (:mod:`ocrmill.outputs.glyphless`) in text render
mode 3 (invisible), laid out so that the common text extractors -- pdfium (Chrome), poppler
(pdftotext, evince), pdfminer.six and pdf.js (Firefox) -- all give the page's text as
`ocrmill read` does (in reading order, one space between words) on upright, turned and
skewed pages, while search and selection highlight each word where its pixels are. Each
rule below answers one extractor's way of reading (measured by
``benchmarks/pdf_extractors.py``):

* **Per line, one font size and one baseline.** The size is the height the line's words span
  (a character's box, descent to ascent, covers it). poppler ends a word where the size
  changes; pdf.js starts a new line where the baseline jumps by the font size.
* **At least** :data:`MIN_WORD_GAP` **font sizes between words**, each followed by a space
  glyph (a line's last word too). poppler writes a space between two words only where their
  glyph boxes are over 0.15 (poppler 22) or 0.2 (later) font sizes apart -- it takes a space
  glyph only as the end of a word -- and pdf.js drops a space glyph when the next glyph
  starts less than 0.03 font sizes after the last. Recognized word boxes are often closer,
  even overlapping: the two words' glyph runs give up the difference.
* **Left to right, a line near a page axis is drawn along it**, one Tj per word stretched to
  its box by horizontal scaling, each on the line's baseline where the word's middle is.
  For text not aligned with the axes, pdf.js measures across the line in a frame divided by
  the horizontal scaling: differently stretched words read as separate lines, and a line
  break can read as none (two words joined).
* **Left to right, lines are drawn at their own angle, one TJ each, where they are steeper
  than** :data:`SNAP_DEGREES`, **and all of them on a page where drawn along the axis a
  line would end less than** :data:`LINE_BREAK_GAP` **font sizes across from where the next
  starts** (skewed clockwise by a degree or two, a line comes down to the next one's
  height). pdf.js takes the jump back to a new line as a line break only when it also moves
  that far across -- measured in the new glyph's frame, rotated only when it is tilted --
  and pdfium sorts the text objects it finds on one line on screen by their starts, left to
  right: one object per word would put the next line's first word among the last words. In
  a TJ all words share one horizontal scaling, the same for the whole page (pdf.js divides
  by it); each word is fitted to its box by kerning that only overlaps its glyphs, by at
  most :data:`MAX_GLYPH_OVERLAP` font sizes (poppler starts a new word beyond 0.2, pdf.js
  and pdfium take a gap inside a word as a space).
* **A line that runs right to left on screen** (an upside-down page) **is drawn along the
  page axis, one TJ per stretch**: pdfium would sort one object per word last word first,
  and poppler splits a word whose glyphs do not share one baseline into characters. A tilted
  line steps across in stretches :data:`SEGMENT_STEP` font sizes apart (pdfium takes
  objects that far apart as separate lines and keeps them in content order).
* **Up or down the screen** (pages turned 90 or 270 degrees), one Tj per word along the
  axis, as left to right: pdfium keeps objects at different heights in content order (it
  would sort whole vertical lines side by side), and poppler needs each word on one baseline.
  What is left: on such a page (and an upside-down one) skewed so that a line ends at the
  next one's height, pdf.js can join the two lines' words -- it compares glyphs along the
  page's axes there, and poppler needs the words along them.

pdfminer.six orders text by its own layout analysis -- horizontal lines only, boxes ordered
by position: turned pages and ragged paragraphs come out scrambled -- except inside a Form
XObject, whose characters it writes in content order: :mod:`ocrmill.outputs.pdf` draws the
layer as one, as OCRmyPDF does. A space glyph ends every line so that it does not run into
the next.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from itertools import pairwise
from typing import Protocol

from ocrmill.outputs.glyphless import DESCENT, GLYPH_WIDTH, UNITS_PER_EM, encode_text

Point = tuple[float, float]

MIN_WORD_GAP = 0.25  # font sizes between words that a space separates
MAX_GLYPH_OVERLAP = 0.18  # font sizes two glyphs of a word may overlap in a TJ
SEGMENT_STEP = 0.4  # font sizes between the stretches of a tilted right-to-left line
MIN_RUN_SHARE = 0.5  # a word's glyph run keeps at least this share of its box's width
SNAP_DEGREES = 10.0  # left-to-right lines steeper than this are drawn at their own angle
LINE_BREAK_GAP = 0.75  # font sizes across between a line's end and the next line's start
MIN_ADVANCE = 0.15  # font sizes between glyphs at least: closer ones read as duplicates
SPACE = encode_text(" ").hex().upper()


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


def _dot(p: Point, q: Point) -> float:
    return p[0] * q[0] + p[1] * q[1]


def _glyphs(text: str) -> int:
    """How many glyphs ``text`` draws: one per UTF-16 code unit (its character codes)."""
    return len(encode_text(text)) // 2


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


@dataclass
class _Run:
    """What one glyph run draws: a word, or words the line's text joins (CJK characters),
    and ``quad`` in user space (tl, tr, br, bl as read); a space follows every run. After
    :func:`_line_ops` places it: ``start`` and ``end`` along the line, and where it starts in
    the drawing frame (``at``: along, across)."""

    text: str
    quad: list[Point]
    start: float = 0.0
    end: float = 0.0
    at: Point = (0.0, 0.0)


def _runs(line: _Line, to_page: PixelMap) -> list[_Run]:
    """The line's glyph runs in reading order. Words the line's text joins without a space
    (CJK characters) are one run over their joint box: a gap between them would read as a
    space."""
    words = list(line.words) or [line]
    spaced = _spaced(line.text, [w.text for w in words])
    runs: list[_Run] = []
    after_space = True
    for word, space in zip(words, spaced):
        quad = [to_page(float(x), float(y)) for x, y in word.box]
        if runs and not after_space:
            last = runs[-1]
            last.text += word.text
            last.quad = [last.quad[0], quad[1], quad[2], last.quad[3]]
        else:
            runs.append(_Run(word.text, quad))
        after_space = space
    return [r for r in runs if r.text.strip()]


def _keep_gaps(runs: list[_Run], gap: float) -> None:
    """Shrink neighbouring glyph runs until ``gap`` lies between them, each giving up to
    :data:`MIN_RUN_SHARE` of its width, in proportion to their widths."""
    for a, b in pairwise(runs):
        missing = gap - (b.start - a.end)
        if missing <= 0:
            continue
        wa, wb = a.end - a.start, b.end - b.start
        take_a = min(missing * wa / (wa + wb), wa * (1 - MIN_RUN_SHARE))
        take_b = min(missing - take_a, wb * (1 - MIN_RUN_SHARE))
        a.end -= take_a
        b.start += take_b


_AXES: dict[int, Point] = {0: (1.0, 0.0), 90: (0.0, 1.0), 180: (-1.0, 0.0), 270: (0.0, -1.0)}
_GLYPH_EM = GLYPH_WIDTH / UNITS_PER_EM  # a glyph's advance at font size 1


class _Heading(Enum):
    """Which way a line runs on screen (the page image's pixels are the page as shown)."""

    RIGHT = "right"
    LEFT = "left"
    VERTICAL = "vertical"


@dataclass
class _Placed:
    """A line ready to draw: its runs (``start``/``end`` set), the direction it is read in
    user space (``u``) and across it (``up``), how far across its words reach, and its
    heading on screen."""

    runs: list[_Run]
    u: Point
    up: Point
    bottom: float
    top: float
    heading: _Heading

    @property
    def size(self) -> float:
        """The font size: a character's box (descent to ascent) spans the words' height."""
        return self.top - self.bottom

    @property
    def baseline(self) -> float:
        """Across the line, the baseline: above the words' bottom by the descent."""
        return self.bottom - DESCENT / UNITS_PER_EM * self.size

    @property
    def steep(self) -> bool:
        """Is the line more than :data:`SNAP_DEGREES` off the nearest page axis?"""
        along = _axis(self.u)
        return abs(_dot(self.u, (-along[1], along[0]))) > math.sin(math.radians(SNAP_DEGREES))


def _place(line: _Line, to_page: PixelMap) -> _Placed | None:
    """The line's runs along it and its extent across, or None for a degenerate line."""
    runs = _runs(line, to_page)
    if not runs:
        return None
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = (to_page(float(x), float(y)) for x, y in line.box)
    ux, uy = ((x1 - x0) + (x2 - x3)) / 2, ((y1 - y0) + (y2 - y3)) / 2
    length = math.hypot(ux, uy)
    if length < 0.5:
        return None
    u = (ux / length, uy / length)  # along the line, as read
    up = (-u[1], u[0])  # across it, from the baseline up
    across = [_dot(p, up) for run in runs for p in run.quad]
    if max(across) - min(across) < 0.5:
        return None
    for run in runs:
        q = run.quad
        run.start = (_dot(q[0], u) + _dot(q[3], u)) / 2
        run.end = max((_dot(q[1], u) + _dot(q[2], u)) / 2, run.start + 0.01)
    px = [(float(x), float(y)) for x, y in line.box]
    dx = (px[1][0] - px[0][0]) + (px[2][0] - px[3][0])
    dy = (px[1][1] - px[0][1]) + (px[2][1] - px[3][1])
    heading = (
        _Heading.RIGHT if dx > abs(dy) else _Heading.LEFT if dx < -abs(dy) else _Heading.VERTICAL
    )
    return _Placed(runs, u, up, min(across), max(across), heading)


def _axis(u: Point) -> Point:
    """The page axis nearest the direction ``u``."""
    angle = math.degrees(math.atan2(u[1], u[0])) % 360
    return _AXES[round(angle / 90) % 4 * 90]


def _right_ops(line: _Placed, scale: float) -> list[str]:
    """A left-to-right line: one TJ on its own baseline and angle, at the page's horizontal
    scaling ``scale`` (see :func:`_page_scale`)."""
    _keep_gaps(line.runs, MIN_WORD_GAP * line.size)
    for run in line.runs:
        run.at = (run.start, line.baseline)
    scaling, tj = _one_tj_ops(line.runs, line.size, _GLYPH_EM * line.size * scale)
    return [scaling, _matrix(line.u, line.up, line.runs[0].at), tj]


def _left_ops(line: _Placed) -> list[str]:
    """A right-to-left line: along the page axis, one TJ per stretch of the line, each on
    the (tilted) baseline where the stretch's middle is, stepping across by
    :data:`SEGMENT_STEP` font sizes."""
    size, u, up = line.size, line.u, line.up
    _keep_gaps(line.runs, MIN_WORD_GAP * size)
    along = _axis(u)
    normal = (-along[1], along[0])

    def level(t: float) -> float:
        """How far across the axis the baseline is at ``t`` along the line."""
        base = line.baseline
        return _dot((u[0] * t + up[0] * base, u[1] * t + up[1] * base), normal)

    rate = abs(_dot(u, normal))
    stretch = SEGMENT_STEP * size / rate if rate > 1e-9 else math.inf
    first = line.runs[0].start
    segments: dict[int, list[_Run]] = {}
    for run in line.runs:
        middle = (run.start + run.end) / 2
        run.at = (_along(line, run, along), 0.0)
        segments.setdefault(math.floor((middle - first) / stretch), []).append(run)
    ops: list[str] = []
    for index, segment in segments.items():
        if len(segments) == 1:
            t = sum((r.start + r.end) / 2 for r in segment) / len(segment)
        else:
            t = first + (index + 0.5) * stretch
        scaling, tj = _one_tj_ops(segment, size, None)
        ops += [scaling, _matrix(along, normal, (segment[0].at[0], level(t))), tj]
    return ops


def _along(line: _Placed, run: _Run, along: Point) -> float:
    """Where ``run`` starts along the axis ``along``: centred where its middle is."""
    u, up, base = line.u, line.up, line.baseline
    middle = (run.start + run.end) / 2
    point = (u[0] * middle + up[0] * base, u[1] * middle + up[1] * base)
    return _dot(point, along) - (run.end - run.start) / 2


def _along_axis(line: _Placed) -> tuple[Point, Point]:
    """Place ``line``'s runs along its nearest page axis (``run.at``: where each starts,
    on the line's baseline where its middle is); returns the axis and its normal."""
    _keep_gaps(line.runs, MIN_WORD_GAP * line.size)
    along = _axis(line.u)
    normal = (-along[1], along[0])
    u, up, base = line.u, line.up, line.baseline
    for run in line.runs:
        middle = (run.start + run.end) / 2
        point = (u[0] * middle + up[0] * base, u[1] * middle + up[1] * base)
        run.at = (_along(line, run, along), _dot(point, normal))
    return along, normal


def _axis_ops(line: _Placed, last_scale: float | None = None) -> list[str]:
    """A line along a page axis: a Tj per run, stretched to the run by horizontal scaling,
    each on the (tilted) baseline where the run's middle is, with a space glyph after it;
    ``Td`` from run to run. With ``last_scale``, the last run is drawn at that horizontal
    scaling (fitted by kerning, see :func:`_one_tj_ops`): pdf.js compares the next line's
    first glyph with it in a frame divided by the scaling."""
    along, normal = _along_axis(line)
    ops = [_matrix(along, normal, line.runs[0].at)]
    last = line.runs[0].at
    for k, run in enumerate(line.runs):
        if k:
            ops.append(f"{_fmt(run.at[0] - last[0])} {_fmt(run.at[1] - last[1])} Td")
            last = run.at
        if k == len(line.runs) - 1 and last_scale is not None:
            scaling, tj = _one_tj_ops([run], line.size, _GLYPH_EM * line.size * last_scale)
            ops += [scaling, tj]
            continue
        scale = 100.0 * (run.end - run.start) / (_glyphs(run.text) * _GLYPH_EM * line.size)
        ops.append(f"{_fmt(scale)} Tz <{encode_text(run.text).hex().upper()}{SPACE}> Tj")
    return ops


def _breaks_stay_apart(lines: Sequence[_Placed]) -> bool:
    """Drawn along the axis, does every left-to-right line end at least
    :data:`LINE_BREAK_GAP` font sizes across from where the next one starts? pdf.js takes a
    jump back to a new line as a line break (a space) only when it moves that far across,
    and pdfium sorts the next line's first word in among the last words otherwise. A page
    skewed clockwise brings each line's end down toward the next line's start."""
    for line, after in pairwise(lines):
        if line.heading is not _Heading.RIGHT or after.heading is not _Heading.RIGHT:
            continue
        along, _ = _along_axis(line)
        if _axis(after.u) != along:
            continue
        _along_axis(after)
        if abs(after.runs[0].at[1] - line.runs[-1].at[1]) < LINE_BREAK_GAP * line.size:
            return False
    return True


def _matrix(along: Point, normal: Point, at: Point) -> str:
    """``Tm`` putting the text origin at ``at`` (along, across) of the frame."""
    x = along[0] * at[0] + normal[0] * at[1]
    y = along[1] * at[0] + normal[1] * at[1]
    values = (along[0], along[1], normal[0], normal[1], x, y)
    return " ".join(_fmt(v) for v in values) + " Tm"


def _fit_range(width: float, glyphs: int, overlap: float) -> tuple[float, float]:
    """The glyph advances ``g`` at which a run ``width`` long of ``glyphs`` glyphs fits,
    its glyphs overlapping by at most ``overlap``: ``a (glyphs - 1) + g = width`` with
    ``a`` in [g - overlap, g] (the last glyph's box is a whole advance)."""
    if glyphs == 1:
        return width - overlap, width + overlap
    return width / glyphs, (width + (glyphs - 1) * overlap) / glyphs


def _most_covered(ranges: Sequence[tuple[float, float, int]]) -> float:
    """The value inside the most weight of ``ranges`` (low, high, weight); the lowest such."""
    events = sorted([(lo, 0, n) for lo, _, n in ranges] + [(hi, 1, -n) for _, hi, n in ranges])
    best, at, held = -1, ranges[0][0], 0
    for value, _, change in events:  # at a value, ranges that open come before those that close
        held += change
        if held > best:
            best, at = held, value
    return at


def _page_scale(lines: Sequence[_Placed]) -> float:
    """One horizontal scaling for the page's tilted left-to-right lines: the one at which
    the most glyphs fit their runs (see :func:`_one_tj_ops`). pdf.js compares positions on
    tilted lines in a frame divided by the scaling: it must be the same from line to line."""
    ranges: list[tuple[float, float, int]] = []
    for line in lines:
        unit = _GLYPH_EM * line.size  # a glyph's advance at 100 %
        for run in line.runs:
            n = _glyphs(run.text)
            lo, hi = _fit_range(run.end - run.start, n, MAX_GLYPH_OVERLAP * line.size)
            ranges.append((lo / unit, hi / unit, n))
    return max(0.05, _most_covered(ranges)) if ranges else 1.0


def _one_tj_ops(runs: list[_Run], size: float, g: float | None) -> tuple[str, str]:
    """``Tz`` and a ``TJ`` drawing ``runs`` on one baseline from where the first starts
    (``run.at``, along): one glyph advance ``g`` (the horizontal scaling makes it), or, with
    ``None``, the advance at which the most glyphs fit. Each run's glyphs advance by ``a`` in
    [g - overlap, g] by kerning, the overlap at most :data:`MAX_GLYPH_OVERLAP` font sizes (a
    run that cannot fit is centred on its box); a space glyph follows each run, and kerning
    moves to the next run's start."""
    counts = [_glyphs(run.text) for run in runs]
    widths = [run.end - run.start for run in runs]
    overlap = MAX_GLYPH_OVERLAP * size
    if g is None:
        fits = [(*_fit_range(w, n, overlap), n) for w, n in zip(widths, counts)]
        g = _most_covered(fits)
    g = max(g, MIN_ADVANCE * size)
    low = max(g - overlap, MIN_ADVANCE * size)
    starts: list[float] = []
    advances: list[float] = []
    for k, run in enumerate(runs):
        a = g if counts[k] == 1 else min(max((widths[k] - g) / (counts[k] - 1), low), g)
        start = run.at[0] + (widths[k] - (a * (counts[k] - 1) + g)) / 2
        if starts:  # a run grown past its box must not close the gap before it
            end = starts[-1] + advances[-1] * (counts[k - 1] - 1) + g
            start = max(start, end + MIN_WORD_GAP * size)
        starts.append(start)
        advances.append(a)
    scale = g / (_GLYPH_EM * size)
    unit = size * scale / 1000  # a TJ number n moves the text by -n * unit
    parts: list[str] = []
    x = runs[0].at[0]
    for k, run in enumerate(runs):
        if abs(starts[k] - x) > 1e-4:
            parts.append(_fmt((x - starts[k]) / unit))
        x = starts[k]
        codes = encode_text(run.text).hex().upper()
        glyphs = [f"<{codes[i : i + 4]}>" for i in range(0, len(codes), 4)]
        kern = _fmt((g - advances[k]) / unit) if advances[k] < g else ""
        parts.append(f" {kern} ".join(glyphs) if kern else "".join(glyphs))
        parts.append(f"<{SPACE}>")
        x += advances[k] * (counts[k] - 1) + 2 * g
    return f"{_fmt(scale * 100)} Tz", f"[{' '.join(parts)}] TJ"


def text_layer(lines: Iterable[_Line], to_page: PixelMap, font: str = "OcrmillText") -> bytes:
    """A content stream drawing ``lines`` (in reading order; each with ``words``, or its own
    text and box when it has none) invisibly, mapped from image pixels by ``to_page``."""
    placed = [p for p in (_place(line, to_page) for line in lines) if p is not None]
    # Left-to-right lines are drawn at their own angle (one TJ each, at one horizontal
    # scaling) where they are steep, and all of them where drawing them along the axis
    # would bring a line's end too close to the next line's start: pdf.js compares a
    # glyph with the one before it in the new glyph's frame, rotated only when it is tilted.
    breaks_apart = _breaks_stay_apart(placed)

    def at_angle(line: _Placed) -> bool:
        return line.heading is _Heading.RIGHT and (line.steep or not breaks_apart)

    scale = _page_scale([p for p in placed if at_angle(p)])
    ops = ["q"]
    for k, line in enumerate(placed):
        if line.heading is _Heading.LEFT:
            body = _left_ops(line)
        elif at_angle(line):
            body = _right_ops(line, scale)
        else:  # pdf.js compares the next line's first glyph with the last in its frame
            after = placed[k + 1] if k + 1 < len(placed) else None
            body = _axis_ops(line, scale if after is not None and at_angle(after) else None)
        ops += ["BT", "3 Tr", f"/{font} {_fmt(line.size)} Tf", *body, "ET"]
    ops.append("Q")
    return ("\n".join(ops) + "\n").encode("ascii")
