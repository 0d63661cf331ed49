"""Dot leaders: the rows of dots that join an entry to its page number (indexes, tables of
contents, price lists, tables with dotted fills).

The detector rarely finds a leader (a row of dots is hardly text) and so splits the row into
two lines with a wide white gap between them, wider than a narrow column gutter: the layout
then takes the gap for a gutter and reads names and numbers as columns of their own. Here
two pieces of one row are joined when the gap between them holds a leader, read from the
pixels: at least three small blobs of ink on one baseline, evenly spaced, filling the gap,
and nothing else in it. The joined line reads ``entry . . . . 12``, one ``.`` per dot, as the
page prints it.

Works in the upright frame (the page turned by its rotation), levelled when the page is
skewed (turned by its text angle, :func:`ocrmill.pipeline.layout.skew_angle`); lines tilted
by more than :data:`MAX_TILT` from the page's text are left as they are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ocrmill.pipeline import rotation
from ocrmill.pipeline.geometry import rotate_points
from ocrmill.pipeline.layout import skew_angle
from ocrmill.pipeline.regions import straightened
from ocrmill.pipeline.words import LinePiece, Word

MIN_GAP = 0.6  # a gap narrower than this share of the line height is a word space
MAX_GAP = 40.0  # line heights: a wider gap is not one leader
MIN_DOTS = 3
MAX_DOT = 0.3  # a dot is at most this share of the line height, either way
MIN_DOT = 0.04  # and at least this (its area this squared): smaller is a speck
MAX_FLAT = 2.0  # a blob wider than this many times its height is a dash (a dashed rule)
MAX_PITCH = 1.5  # line heights between dots
MAX_BASELINE_SPREAD = 0.12  # line heights: the dots' centres on one line
MAX_TILT = 0.035  # rise over run of a line's top edge (the detector's angle of a line of
# a few words on a skewed page is up to ~1.3 degrees off the text's)
MAX_RISE = 0.1  # line heights: a short line's rise (its quad's angle is noise) may be this
SAME_ROW = 0.6  # vertical overlap over the smaller height
IN_ROW = 0.5  # a line in the gap overlaps the row by this share of its height (the rows
# above and below overlap it by a third on a skewed page)
DOT_TEXT = "."
LEVEL_ABOVE = math.radians(0.3)  # a page skewed by more is levelled first


@dataclass(frozen=True)
class _Frame:
    """The page's pixels and points turned upright (by ``turn``) and levelled (by
    ``angle`` about ``center``), and back."""

    turn: int
    width: int
    height: int
    angle: float
    center: tuple[float, float]

    def to(self, points: np.ndarray) -> np.ndarray:
        upright = rotation.to_upright(points, self.turn, self.width, self.height)
        return rotate_points(upright, self.angle, self.center) if self.angle else upright

    def back(self, points: np.ndarray) -> np.ndarray:
        if self.angle:
            points = rotate_points(points, -self.angle, self.center)
        return rotation.from_upright(points, self.turn, self.width, self.height)

    def gray(self, pixels: np.ndarray) -> np.ndarray:
        import cv2

        gray = pixels if pixels.ndim == 2 else cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)
        if self.turn:
            gray = np.rot90(gray, k=-(self.turn // 90))
        if self.angle:
            gray = straightened(np.ascontiguousarray(gray), self.angle, self.center)
        return gray


def _frame(pieces: list[LinePiece], width: int, height: int, turn: int) -> _Frame:
    upright = rotation.to_upright(np.array([p.ink for p in pieces]), turn, width, height)
    uw, uh = (height, width) if turn in (90, 270) else (width, height)
    angle = skew_angle(upright)
    return _Frame(turn, width, height, angle if abs(angle) > LEVEL_ABOVE else 0.0, (uw / 2, uh / 2))


def _flat(quad: np.ndarray) -> bool:
    """Does the line run level? The detector's quad of a short line (a page number) is
    often square to the image, not to the skewed text: its angle is noise, and a rise of a
    tenth of its height counts as level."""
    dx = float(quad[1, 0] - quad[0, 0])
    rise = abs(float(quad[1, 1] - quad[0, 1]))
    height = float(np.linalg.norm(quad[3] - quad[0]))
    return dx > 0 and rise <= max(MAX_TILT * dx, MAX_RISE * height)


def _dot_words(piece: LinePiece, *, leading: bool) -> int:
    """How many of the piece's words at its start (``leading``) or end are only dots (the
    part of a leader the detector gave to the line)."""
    count = 0
    order = piece.words if leading else piece.words[::-1]
    for word in order:
        if word.text.strip(". ·…") or not word.text.strip():
            break
        count += 1
    return count if count < len(piece.words) else 0


def find_dots(
    gray: np.ndarray, x0: float, x1: float, top: float, bottom: float
) -> list[tuple[float, float, float, float]] | None:
    """The dots of a leader between ``x0`` and ``x1`` in the row ``top``..``bottom`` of an
    upright grey page, as boxes; None when the gap holds anything else, or no leader."""
    import cv2

    height = bottom - top
    rx0, rx1 = int(np.ceil(x0)) + 1, int(np.floor(x1)) - 1
    ry0, ry1 = max(0, int(top)), min(gray.shape[0], int(np.ceil(bottom)))
    if rx1 - rx0 < 3 or ry1 - ry0 < 4:
        return None
    region = gray[ry0:ry1, rx0:rx1]
    background = float(np.percentile(region, 90))
    ink = (region < background - 60).astype(np.uint8)
    count, _, stats, centroids = cv2.connectedComponentsWithStats(ink, connectivity=8)
    dots = []
    for k in range(1, count):
        x, y, w, h, area = stats[k]
        if (
            area < max(2.0, (MIN_DOT * height) ** 2)
            or y == 0
            or not 0.4 * (ry1 - ry0) < y + h < ry1 - ry0
        ):
            continue  # a speck, or a neighbouring line's descender or ascender
        if w > MAX_DOT * height or h > MAX_DOT * height or (w >= 3 and w > MAX_FLAT * h):
            return None  # something that is not a dot: a word, a rule or its dash, a figure
        dots.append((float(centroids[k][0]), float(centroids[k][1]), x, y, w, h))
    if len(dots) < MIN_DOTS:
        return None
    dots.sort()
    xs = np.array([d[0] for d in dots])
    ys = np.array([d[1] for d in dots])
    if float(ys.max() - ys.min()) > MAX_BASELINE_SPREAD * height:
        return None
    if float(np.mean(ys)) < 0.45 * (ry1 - ry0):
        return None  # dots on a baseline sit low in the row
    pitches = np.diff(xs)
    pitch = float(np.median(pitches))
    if pitch > MAX_PITCH * height or float(pitches.max()) > 2.5 * pitch + 2:
        return None
    margin = 2.5 * pitch + 0.5 * height  # the leader fills the gap up to its ends
    if xs[0] > margin or (rx1 - rx0) - xs[-1] > margin:
        return None
    return [(rx0 + x, ry0 + y, rx0 + x + w, ry0 + y + h) for _, _, x, y, w, h in dots]


def join_leaders(pieces: list[LinePiece], pixels: np.ndarray, turn: int) -> list[LinePiece]:
    """``pieces`` (page pixels, the page turned by ``turn`` degrees) with every two pieces
    of one row whose gap holds a dot leader joined into one (see the module docstring)."""
    if len(pieces) < 2:
        return pieces
    h, w = pixels.shape[:2]
    frame = _frame(pieces, w, h, turn)
    inks = frame.to(np.array([p.ink for p in pieces]))
    x0, y0 = inks.min(axis=1).T
    x1, y1 = inks.max(axis=1).T
    level = np.array([_flat(q) for q in inks])
    gray: np.ndarray | None = None
    right_of: dict[int, tuple[int, list[tuple[float, float, float, float]]]] = {}
    claimed: set[int] = set()
    for a in (int(k) for k in np.flatnonzero(level)):
        ax1, ay0, ay1 = x1[a], y0[a], y1[a]
        overlap = np.minimum(ay1, y1) - np.maximum(ay0, y0)
        beside = level & (x0 > ax1) & (overlap >= SAME_ROW * np.minimum(ay1 - ay0, y1 - y0))
        if not beside.any():
            continue
        candidates = np.flatnonzero(beside)
        best = int(candidates[np.argmin(x0[candidates])])  # the nearest to the right
        if best in claimed:
            continue
        bx0, by0, by1 = x0[best], y0[best], y1[best]
        height = max(ay1 - ay0, by1 - by0)
        # Dots the recogniser read at the end of ``a`` or the start of ``b`` are part of it.
        a_dots = _dot_words(pieces[a], leading=False)
        b_dots = _dot_words(pieces[best], leading=True)
        start = float(ax1)
        if a_dots:
            start = _word_edge(pieces[a].words[-a_dots], frame, left=True)
        end = float(bx0)
        if b_dots:
            end = _word_edge(pieces[best].words[b_dots - 1], frame, left=False)
        gap = end - start
        if gap < MIN_GAP * height or gap > MAX_GAP * height:
            continue
        row_top, row_bottom = float(min(ay0, by0)), float(max(ay1, by1))
        inside = (np.minimum(x1, end) - np.maximum(x0, start) > 0.25 * height) & (
            np.minimum(y1, row_bottom) - np.maximum(y0, row_top) > IN_ROW * (y1 - y0)
        )
        inside[[a, best]] = False
        if inside.any():  # another line in the gap: not one row's two ends
            continue
        if gray is None:
            gray = frame.gray(pixels)
        dots = find_dots(gray, start, end, row_top, row_bottom)
        if dots is not None:
            right_of[a] = (best, dots)
            claimed.add(best)
    if not right_of:
        return pieces
    joined_into = {b for b, _ in right_of.values()}
    out: list[LinePiece] = []
    for a in range(len(pieces)):
        if a in joined_into:
            continue
        piece = pieces[a]
        chain = [a]
        dots_between: list[list[tuple[float, float, float, float]]] = []
        while chain[-1] in right_of and right_of[chain[-1]][0] not in chain:
            nxt, dots = right_of[chain[-1]]
            dots_between.append(dots)
            chain.append(nxt)
        if len(chain) > 1:
            piece = _joined([pieces[k] for k in chain], dots_between, frame)
        out.append(piece)
    return out


def _word_edge(word: Word, frame: _Frame, *, left: bool) -> float:
    box = frame.to(word.box)
    return float(box[:, 0].min() if left else box[:, 0].max())


def _joined(
    parts: list[LinePiece],
    dots_between: list[list[tuple[float, float, float, float]]],
    frame: _Frame,
) -> LinePiece:
    """One line of ``parts`` (left to right) and the leaders' dots between them."""

    def quad(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
        upright = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)
        return frame.back(upright)

    words: list[Word] = []
    texts: list[str] = []
    scores: list[float] = []
    for i, part in enumerate(parts):
        lead = _dot_words(part, leading=True) if i > 0 else 0
        trail = _dot_words(part, leading=False) if i < len(parts) - 1 else 0
        keep = part.words[lead : len(part.words) - trail]
        words += keep
        # Dots the recogniser read are counted among the leader's instead.
        texts.append(part.text if not lead and not trail else " ".join(wd.text for wd in keep))
        scores.append(part.score)
        if i < len(parts) - 1:
            dots = dots_between[i]
            words += [Word(DOT_TEXT, 1.0, quad(*box)) for box in dots]
            texts.append(" ".join(DOT_TEXT for _ in dots))
    boxes = np.concatenate([frame.to(np.array([p.box, p.ink])) for p in parts]).reshape(-1, 2)
    inks = np.concatenate([frame.to(p.ink) for p in parts]).reshape(-1, 2)
    x0, y0 = boxes.min(axis=0)
    x1, y1 = boxes.max(axis=0)
    ix0, iy0 = inks.min(axis=0)
    ix1, iy1 = inks.max(axis=0)
    return LinePiece(
        text=" ".join(t for t in texts if t),
        score=float(np.mean(scores)),
        words=words,
        box=quad(x0, y0, x1, y1),
        ink=quad(ix0, iy0, ix1, iy1),
    )
