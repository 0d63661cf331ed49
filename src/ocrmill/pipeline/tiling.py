"""Tiled detection for huge pages: plan overlapping tiles, skip blank ones, and merge the
boxes found in several tiles (duplicates dropped, pieces of a line cut by a seam joined).

Detection then runs at the page's own resolution, so small text on a 16K page is found,
while memory is bounded by the tile size and the tile batch, not by the page.
"""

from __future__ import annotations

import dataclasses
import itertools

import cv2
import numpy as np

from ocrmill.config import DetOptions, TileOptions
from ocrmill.pipeline import detect
from ocrmill.pipeline.geometry import order_quad, rotate_points
from ocrmill.pipeline.layout import skew_angle

Tile = tuple[int, int, int, int]  # x0, y0, x1, y1 (x1, y1 exclusive)


def _starts(length: int, size: int, overlap: int) -> list[int]:
    if length <= size:
        return [0]
    stride = max(1, size - overlap)
    starts = list(range(0, length - size, stride))
    starts.append(length - size)  # the last tile ends exactly at the edge
    return starts


def plan_tiles(height: int, width: int, size: int, overlap: int) -> list[Tile]:
    """Tiles of ``size`` x ``size`` (smaller only where the page is) overlapping by at least
    ``overlap`` pixels, covering the page, row by row."""
    if overlap >= size:
        raise ValueError(f"tile overlap ({overlap}) must be smaller than the tile size ({size})")
    return [
        (x, y, min(x + size, width), min(y + size, height))
        for y in _starts(height, size, overlap)
        for x in _starts(width, size, overlap)
    ]


def tile_is_blank(tile: np.ndarray, min_range: int) -> bool:
    """True when the tile's darkest and brightest pixel differ by less than ``min_range``
    levels: nothing there can be text. Checked on a subsample, cheaply."""
    sample = tile[::4, ::4]
    return int(sample.max()) - int(sample.min()) < min_range


def overlap_bands(tiles: list[Tile]) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """The x and y intervals where neighbouring tiles overlap."""
    xs = sorted({(t[0], t[2]) for t in tiles})
    ys = sorted({(t[1], t[3]) for t in tiles})

    def bands(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
        return [(b[0], a[1]) for a, b in itertools.pairwise(spans) if b[0] < a[1]]

    return bands(xs), bands(ys)


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def merge_tile_boxes(
    quads: np.ndarray,
    scores: np.ndarray,
    tile_ids: np.ndarray,
    tiles: list[Tile],
    *,
    contain: float = 0.6,
    same_line: float = 0.6,
    max_height_ratio: float = 1.6,
) -> tuple[np.ndarray, np.ndarray]:
    """Merge page-coordinate boxes detected in overlapping tiles.

    Only boxes that reach into an overlap band can have been seen twice, so only those are
    compared (pairwise, from different tiles). Two boxes are merged when one mostly lies
    inside the other (``contain`` of the smaller one's area: a duplicate, or a piece of a
    line cut at the tile edge), or when they sit on the same text line (vertical overlap at
    least ``same_line`` of the lower box, heights within ``max_height_ratio``) and touch
    or overlap horizontally (a line cut by a vertical seam), all in the frame that levels
    the page's lines. A merged group becomes the minimum-area rectangle around all its
    points, with the best score.
    """
    n = len(quads)
    if n < 2:
        return quads, scores
    x0, y0 = quads[:, :, 0].min(axis=1), quads[:, :, 1].min(axis=1)
    x1, y1 = quads[:, :, 0].max(axis=1), quads[:, :, 1].max(axis=1)
    bands_x, bands_y = overlap_bands(tiles)
    near = np.zeros(n, dtype=bool)
    for b0, b1 in bands_x:
        near |= (x1 >= b0) & (x0 <= b1)
    for b0, b1 in bands_y:
        near |= (y1 >= b0) & (y0 <= b1)
    cand = np.flatnonzero(near)
    # Compared in the frame that levels the page's lines: on a skewed page a line's upright
    # bounds are taller than the line and overlap its neighbours' (lines merged into blocks).
    angle = skew_angle(quads)
    if angle:
        flat = rotate_points(quads, angle, (0.0, 0.0))
        x0, y0 = flat[:, :, 0].min(axis=1), flat[:, :, 1].min(axis=1)
        x1, y1 = flat[:, :, 0].max(axis=1), flat[:, :, 1].max(axis=1)
    uf = _UnionFind(n)
    heights = np.maximum(y1 - y0, 1.0)
    areas = np.maximum((x1 - x0) * (y1 - y0), 1.0)
    for start in range(0, len(cand), 512):
        rows = cand[start : start + 512]
        ix = np.minimum(x1[rows, None], x1[None, cand]) - np.maximum(x0[rows, None], x0[None, cand])
        iy = np.minimum(y1[rows, None], y1[None, cand]) - np.maximum(y0[rows, None], y0[None, cand])
        h_small = np.minimum(heights[rows, None], heights[None, cand])
        h_big = np.maximum(heights[rows, None], heights[None, cand])
        inter = np.clip(ix, 0, None) * np.clip(iy, 0, None)
        smaller = np.minimum(areas[rows, None], areas[None, cand])
        duplicate = inter >= contain * smaller
        line_piece = (
            (iy >= same_line * h_small)
            & (h_big <= max_height_ratio * h_small)
            & (ix >= -0.25 * h_small)  # overlapping or touching along the line
        )
        other_tile = tile_ids[rows, None] != tile_ids[None, cand]
        hits = np.argwhere((duplicate | line_piece) & other_tile)
        for r, c in hits:
            uf.union(int(rows[r]), int(cand[c]))
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(uf.find(i), []).append(i)
    out_quads = []
    out_scores = []
    for members in groups.values():
        if len(members) == 1:
            out_quads.append(quads[members[0]])
            out_scores.append(scores[members[0]])
            continue
        points = quads[members].reshape(-1, 2).astype(np.float32)
        rect = cv2.minAreaRect(points)
        out_quads.append(order_quad(cv2.boxPoints(rect)))
        out_scores.append(float(scores[members].max()))
    return np.stack(out_quads).astype(np.float32), np.asarray(out_scores, dtype=np.float32)


def needs_tiles(pixels: np.ndarray, opts: TileOptions) -> bool:
    """Is this page detected on tiles (``huge="tile"`` and its long side over the limit)?"""
    return opts.huge == "tile" and max(pixels.shape[:2]) > opts.tile_above


def detect_tiled(
    pixels: np.ndarray, det: DetOptions, opts: TileOptions, run: detect.RunBatch
) -> detect.Boxes:
    """Text boxes of a huge page: detected on overlapping full-resolution tiles (blank ones
    skipped, tiles of one shape batched ``opts.batch`` at a time), then merged."""
    h, w = pixels.shape[:2]
    tiles = plan_tiles(h, w, opts.tile_size, opts.overlap)
    # Tiles are at most tile_size: the detector sees them at full resolution.
    det = dataclasses.replace(det, limit_side_len=opts.tile_size, limit_type="max")
    by_shape: dict[tuple[int, int], list[int]] = {}
    for i, (x0, y0, x1, y1) in enumerate(tiles):
        if not tile_is_blank(pixels[y0:y1, x0:x1], opts.blank_range):
            by_shape.setdefault((y1 - y0, x1 - x0), []).append(i)
    all_quads: list[np.ndarray] = []
    all_scores: list[np.ndarray] = []
    all_ids: list[np.ndarray] = []
    step = max(1, opts.batch)
    for indices in by_shape.values():
        for start in range(0, len(indices), step):
            chunk = indices[start : start + step]
            prepared = [
                detect.prepare_det_input(pixels[y0:y1, x0:x1], det)
                for x0, y0, x1, y1 in (tiles[i] for i in chunk)
            ]
            probs = run(np.concatenate([p[0] for p in prepared]))
            for k, i in enumerate(chunk):
                quads, scores = detect.db_boxes(probs[k, 0], det)
                quads = detect.boxes_to_page(quads, prepared[k][1])
                quads[..., 0] += tiles[i][0]
                quads[..., 1] += tiles[i][1]
                all_quads.append(quads)
                all_scores.append(scores)
                all_ids.append(np.full(len(quads), i))
    if not all_quads:
        return np.zeros((0, 4, 2), np.float32), np.zeros((0,), np.float32)
    quads, scores = merge_tile_boxes(
        np.concatenate(all_quads), np.concatenate(all_scores), np.concatenate(all_ids), tiles
    )
    quads[..., 0] = np.clip(quads[..., 0], 0, w - 1)
    quads[..., 1] = np.clip(quads[..., 1], 0, h - 1)
    return detect.drop_degenerate(quads, scores)
