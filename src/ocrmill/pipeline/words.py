"""Words of a recognized line and their boxes on the page, from the recognizer's own output.

A CTC recognizer fires each character at one or a few time steps near the glyph's centre
(``Reading.spans``); ``Reading.step_px`` turns steps into crop pixels. A word's extent is
its first and last characters' centres, grown by about half a character pitch, and bounded
by the midpoints to the neighbouring words. The box is then tightened to the crop's own ink
(Otsu threshold of the crop): ink columns within that extent, ink rows within those columns
and within the line's text band, so a box hugs its glyphs instead of the detector's grown
line box. Boxes are mapped back through the crop's transform (flip, quarter turn,
perspective) into page pixels.

Words split on white space and where the script changes between CJK and anything else.
CJK text (Han, kana, CJK punctuation, full-width forms) has no spaces between words and
where its words end takes a dictionary to say, so each CJK character is a word of its own:
its box is exact and a search or selection of any run of characters covers exactly those
glyphs (hOCR and ALTO from Tesseract mark CJK text the same way).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from ocrmill.pipeline.crop import crop_to_page
from ocrmill.pipeline.recognize import Reading

# Unicode blocks written without spaces between words: each character is a word.
_CJK_RANGES = (
    (0x2E80, 0x2FDF),  # CJK radicals, Kangxi radicals
    (0x3000, 0x303F),  # CJK symbols and punctuation
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x3100, 0x312F),  # Bopomofo
    (0x31F0, 0x31FF),  # Katakana phonetic extensions
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF00, 0xFFEF),  # half-width and full-width forms
    (0x20000, 0x3134F),  # CJK extensions B-G
)

_FIRST_CJK = _CJK_RANGES[0][0]
_NON_SPACE = re.compile(r"\S+")

# Ink: a crop whose grey levels span less than this has no text to measure.
MIN_CONTRAST = 24
# Rows of ink separated by at most this share of the crop height belong together (the dot
# of an i, accents); the line's text band is the group of rows with the most ink.
BAND_GAP = 0.08


@dataclass(frozen=True)
class Word:
    """A word's text, confidence and box (4x2, page pixels, clockwise from the word's
    top-left as read)."""

    text: str
    score: float
    box: np.ndarray


def is_cjk(char: str) -> bool:
    """Whether ``char`` belongs to a script written without spaces between words."""
    code = ord(char)
    return any(lo <= code <= hi for lo, hi in _CJK_RANGES)


def split_words(text: str) -> list[tuple[int, int]]:
    """``[start, end)`` character ranges of the words of ``text``: runs without white space,
    cut where the script changes between CJK and anything else; every CJK character is a
    word of its own."""
    if not any(ord(char) >= _FIRST_CJK for char in text):  # most lines: spaces only
        return [m.span() for m in _NON_SPACE.finditer(text)]
    words: list[tuple[int, int]] = []
    start: int | None = None
    for i, char in enumerate(text):
        cjk = is_cjk(char)
        if char.isspace() or cjk:
            if start is not None:
                words.append((start, i))
                start = None
            if cjk:
                words.append((i, i + 1))
        elif start is None:
            start = i
    if start is not None:
        words.append((start, len(text)))
    return words


def ink_mask(crop: np.ndarray) -> np.ndarray | None:
    """Boolean mask of the crop's ink (Otsu threshold; ink is the smaller class), or None
    for a crop without contrast."""
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY) if crop.ndim == 3 else crop
    if int(grey.max()) - int(grey.min()) < MIN_CONTRAST:
        return None
    _, dark = cv2.threshold(grey, 0, 1, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    mask = dark.astype(bool)
    return mask if mask.mean() <= 0.5 else ~mask


def text_band(mask: np.ndarray) -> tuple[int, int]:
    """Rows ``[top, bottom)`` of the line's text: the group of ink rows with the most ink
    (rows of a neighbouring line cut into the crop form groups of their own)."""
    per_row = mask.sum(axis=1)
    rows = np.flatnonzero(per_row)
    if not len(rows):
        return 0, mask.shape[0]
    gap = max(1, round(BAND_GAP * mask.shape[0]))
    breaks = np.flatnonzero(np.diff(rows) > gap + 1)
    starts, ends = rows[np.r_[0, breaks + 1]], rows[np.r_[breaks, len(rows) - 1]]
    mass = [per_row[s : e + 1].sum() for s, e in zip(starts, ends)]
    best = int(np.argmax(mass))
    return int(starts[best]), int(ends[best]) + 1


def _pitch(centres: list[np.ndarray], height: int) -> float:
    """Typical distance between neighbouring characters' centres within words."""
    steps = [np.diff(c) for c in centres if len(c) > 1]
    if steps:
        return float(np.median(np.concatenate(steps)))
    return 0.6 * height


def _ink_extent(
    mask: np.ndarray | None, band: tuple[int, int], lo: float, hi: float
) -> tuple[float, float, float, float] | None:
    """Tight ink box ``(x0, y0, x1, y1)`` within columns ``[lo, hi)`` and the band."""
    if mask is None:
        return None
    c0, c1 = max(0, int(np.floor(lo))), min(mask.shape[1], int(np.ceil(hi)))
    if c1 <= c0:
        return None
    region = mask[band[0] : band[1], c0:c1]
    cols = np.flatnonzero(region.any(axis=0))
    if not len(cols):
        return None
    x0, x1 = c0 + int(cols[0]), c0 + int(cols[-1]) + 1
    rows = np.flatnonzero(mask[band[0] : band[1], x0:x1].any(axis=1))
    return float(x0), float(band[0] + rows[0]), float(x1), float(band[0] + rows[-1] + 1)


def _crop_boxes(
    reading: Reading, view: np.ndarray
) -> tuple[list[tuple[int, int]], list[tuple[float, float, float, float]]]:
    """The words' character ranges in ``reading.text`` and their ink boxes ``(x0, y0, x1,
    y1)`` in the crop as read (``view``: turned when the line was read flipped)."""
    h, w = view.shape[:2]
    mask = ink_mask(view)
    band = text_band(mask) if mask is not None else (0, h)
    spans = split_words(reading.text)
    if len(reading.spans) != len(reading.text) or reading.step_px <= 0:
        spans = []
    steps = np.asarray(reading.spans, dtype=np.float64).reshape(-1, 2)
    centres = (steps[:, 0] + steps[:, 1] + 1) / 2 * reading.step_px
    per_word = [centres[s:e] for s, e in spans]
    pitch = _pitch(per_word, band[1] - band[0])
    boxes: list[tuple[float, float, float, float]] = []
    for k, c in enumerate(per_word):
        first, last = float(c[0]), float(c[-1])
        lo = first - pitch
        hi = last + pitch
        if k > 0:
            lo = max(lo, (float(per_word[k - 1][-1]) + first) / 2)
        if k + 1 < len(per_word):
            hi = min(hi, (last + float(per_word[k + 1][0])) / 2)
        tight = _ink_extent(mask, band, lo, hi)
        if tight is None:
            x0, x1 = max(0.0, first - pitch / 2), min(float(w), last + pitch / 2)
            tight = (x0, float(band[0]), max(x1, x0 + 1), float(band[1]))
        boxes.append(tight)
    return spans, boxes


def line_words(
    reading: Reading, crop: np.ndarray, quad: np.ndarray
) -> tuple[list[Word], np.ndarray]:
    """The words of one read line with their page boxes, and the line's box cut to its ink
    from left to right (the crop's full height: lines of one size keep one height whether
    or not their letters descend); 4x2 page pixels, clockwise from its top-left as read.

    ``crop`` is the crop as cut from the page by ``quad`` (``Reading.flipped`` says whether
    it was read turned by 180 degrees)."""
    (piece,) = line_pieces(reading, crop, quad, ())
    return piece.words, piece.ink


@dataclass(frozen=True)
class LinePiece:
    """A read line, or one piece of a line cut at a column gutter: its text and confidence
    (the mean of its characters'), words, the detected box's share of it (``box``, as read)
    and its box cut to its ink (``ink``); boxes 4x2 page pixels, clockwise from the top-left
    as read."""

    text: str
    score: float
    words: list[Word]
    box: np.ndarray
    ink: np.ndarray


def line_pieces(
    reading: Reading, crop: np.ndarray, quad: np.ndarray, cuts: Sequence[int]
) -> list[LinePiece]:
    """The line cut before each word index in ``cuts`` (none: the line whole). A piece's
    detected box reaches from the middle of the gap before it to the middle of the gap
    after it (the line's ends for the first and last)."""
    view = crop[::-1, ::-1] if reading.flipped else crop
    h, w = view.shape[:2]
    spans, boxes = _crop_boxes(reading, view)
    bounds = [0, *(k for k in sorted(set(cuts)) if 0 < k < len(spans)), len(spans)]
    rects: list[tuple[float, float, float, float]] = [*boxes]
    pieces: list[tuple[int, int, float, float]] = []  # words a..b, detected x range
    for i, (a, b) in enumerate(itertools.pairwise(bounds)):
        lo = 0.0 if i == 0 else (boxes[a - 1][2] + boxes[a][0]) / 2
        hi = float(w) if b == len(spans) else (boxes[b - 1][2] + boxes[b][0]) / 2
        if b > a:
            ink_lo = min(x0 for x0, _, _, _ in boxes[a:b])
            ink_hi = max(x1 for _, _, x1, _ in boxes[a:b])
        else:  # no words: the ink box is the crop
            ink_lo, ink_hi = 0.0, float(w)
        rects += [(lo, 0.0, hi, float(h)), (ink_lo, 0.0, ink_hi, float(h))]
        pieces.append((a, b, lo, hi))
    corners = np.array([[[x0, y0], [x1, y0], [x1, y1], [x0, y1]] for x0, y0, x1, y1 in rects])
    on_page = crop_to_page(quad, corners.reshape(-1, 2), flipped=reading.flipped).reshape(-1, 4, 2)
    words = [
        Word(
            text=reading.text[s:e],
            score=float(np.mean(reading.char_scores[s:e])),
            box=on_page[k],
        )
        for k, (s, e) in enumerate(spans)
    ]
    out: list[LinePiece] = []
    for j, (a, b, _, _) in enumerate(pieces):
        box, ink = on_page[len(spans) + 2 * j], on_page[len(spans) + 2 * j + 1]
        if len(pieces) == 1:  # the whole line: its text, score and box as read
            text, score = reading.text.strip(), float(reading.score)
            box = np.roll(quad, 2, axis=0) if reading.flipped else np.asarray(quad, np.float64)
        else:
            start, end = spans[a][0], spans[b - 1][1]
            text = reading.text[start:end].strip()
            score = float(np.mean(reading.char_scores[start:end]))
        out.append(LinePiece(text, score, words[a:b], box, ink))
    return out
