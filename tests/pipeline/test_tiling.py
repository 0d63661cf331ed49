"""Tiled detection: tile planning, box merging, and a huge synthetic page read end to end."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont
from rapidfuzz.distance import Levenshtein

from ocrmill.config import ReadOptions, TileOptions
from ocrmill.pipeline.tiling import merge_tile_boxes, overlap_bands, plan_tiles, tile_is_blank


def test_tiles_cover_the_page_with_the_overlap():
    tiles = plan_tiles(9000, 12000, 1280, 256)
    covered = np.zeros((9000 // 10, 12000 // 10), bool)
    for x0, y0, x1, y1 in tiles:
        assert x1 - x0 == 1280 and y1 - y0 == 1280
        covered[y0 // 10 : y1 // 10, x0 // 10 : x1 // 10] = True
    assert covered.all()
    bx, by = overlap_bands(tiles)
    assert all(b1 - b0 >= 256 for b0, b1 in bx + by)
    assert plan_tiles(500, 700, 1280, 256) == [(0, 0, 700, 500)]
    with pytest.raises(ValueError):
        plan_tiles(5000, 5000, 256, 256)


def test_blank_tile_detection():
    assert tile_is_blank(np.full((64, 64, 3), 250, np.uint8), 12)
    tile = np.full((64, 64, 3), 250, np.uint8)
    tile[30:34, 10:50] = 20
    assert not tile_is_blank(tile, 12)


def quad(x0, y0, x1, y1):
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def test_merge_joins_a_line_cut_by_a_vertical_seam_and_drops_duplicates():
    tiles = [(0, 0, 1280, 1280), (1024, 0, 2304, 1280)]
    quads = np.array(
        [
            quad(800, 100, 1280, 120),  # left piece of a long line (tile 0)
            quad(1024, 101, 1500, 121),  # right piece of the same line (tile 1)
            quad(1100, 300, 1200, 320),  # a word seen whole by both tiles ...
            quad(1101, 299, 1201, 321),  # ... twice
            quad(1100, 340, 1200, 360),  # the next line: must stay separate
            quad(100, 500, 300, 520),  # far from any seam: untouched
        ],
        np.float32,
    )
    scores = np.array([0.9, 0.8, 0.7, 0.95, 0.9, 0.9], np.float32)
    ids = np.array([0, 1, 0, 1, 1, 0])
    merged, merged_scores = merge_tile_boxes(quads, scores, ids, tiles)
    assert len(merged) == 4
    spans = sorted(
        (float(q[:, 0].min()), float(q[:, 0].max()), float(q[:, 1].min())) for q in merged
    )
    assert any(x0 <= 801 and x1 >= 1499 for x0, x1, _ in spans)  # the joined line
    word_rows = [y for x0, x1, y in spans if 1090 < x0 < 1110]
    assert len(word_rows) == 2  # duplicate gone, next line kept
    assert float(merged_scores.max()) == pytest.approx(0.95)


def test_lines_of_a_skewed_page_stay_apart_where_tiles_overlap():
    """On a page skewed by 3 degrees, a 1,200-px line's upright bounds are 60 px taller than
    the line and overlap the lines above and below; compared in the frame that levels the
    lines, only the two pieces of each line cut by the seam are joined."""
    tiles = [(0, 0, 1280, 1280), (1024, 0, 2304, 1280)]
    a = np.radians(3.0)
    along, down = np.array([np.cos(a), np.sin(a)]), np.array([-np.sin(a), np.cos(a)])

    def tilted(x, y, length, height=24.0):
        start = np.array([x, y], float)
        return [
            start,
            start + length * along,
            start + length * along + height * down,
            start + height * down,
        ]

    quads, ids = [], []
    for row in range(12):  # every line cut by the seam at x 1024..1280: a piece per tile
        y = 100 + 40 * row
        quads += [tilted(400, y, 870), tilted(400 + 650 * along[0], y + 650 * along[1], 700)]
        ids += [0, 1]
    quads = np.array(quads, np.float32)
    merged, _ = merge_tile_boxes(quads, np.ones(len(quads), np.float32), np.array(ids), tiles)
    assert len(merged) == 12
    for q in merged:
        edges = np.linalg.norm(q - np.roll(q, -1, axis=0), axis=1)
        assert min(edges) < 30 and max(edges) > 1300  # one line each, both pieces


def test_boxes_from_the_same_tile_are_never_merged():
    tiles = [(0, 0, 1280, 1280), (1024, 0, 2304, 1280)]
    quads = np.array([quad(1100, 100, 1150, 120), quad(1155, 100, 1200, 120)], np.float32)
    merged, _ = merge_tile_boxes(quads, np.ones(2, np.float32), np.array([1, 1]), tiles)
    assert len(merged) == 2


def huge_page(width: int, height: int, placements: list[tuple[int, int, str]]) -> np.ndarray:
    img = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=20)
    for x, y, text in placements:
        draw.text((x, y), text, font=font, fill=0)
    return np.asarray(img.convert("RGB"))


@pytest.mark.slow
def test_huge_page_small_text_is_read_once_per_line(engine):
    words = [
        "alpha",
        "bravo",
        "delta",
        "sierra",
        "tango",
        "victor",
        "kilo",
        "oscar",
        "hotel",
        "juliet",
        "lima",
        "mike",
        "papa",
        "quebec",
        "romeo",
        "zulu",
    ]
    placements = []
    k = 0
    # Seams of 1280-px tiles with 256 px overlap lie at 1024..1280, 2048..2304, ...
    for y in (1010, 1270, 1500, 2290, 2700):  # some lines straddle horizontal seams
        for x in (
            700,
            1950,
            3300,
        ):  # ... and most cross vertical seams, some longer than the overlap
            text = f"Line {k:02d} {words[k]} {4000 + 371 * k} seam check"
            placements.append((x, y, text))
            k += 1
    placements.append((11500, 8900, f"Corner {k} end"))  # the edge-aligned last tile
    page = huge_page(12000, 9000, placements)
    result = engine.read(page)
    texts = [line.text for line in result.lines]

    truths = [gt for _, _, gt in placements]
    matches: dict[str, list[str]] = {gt: [] for gt in truths}
    for t in texts:  # each read line counts for the placed line it is closest to
        best = min(truths, key=lambda gt: Levenshtein.normalized_distance(t, gt))
        if Levenshtein.normalized_distance(t, best) < 0.15:
            matches[best].append(t)
    recall = sum(bool(m) for m in matches.values()) / len(placements)
    assert recall >= 0.9, (recall, texts)
    assert all(len(m) <= 1 for m in matches.values()), matches  # no line duplicated at seams
    assert len(texts) <= len(placements) + 2

    downscaled = dataclasses.replace(ReadOptions(), tile=TileOptions(huge="downscale"))
    small = engine.read(page, options=downscaled)
    small_recall = sum(
        any(Levenshtein.normalized_distance(line.text, gt) < 0.15 for line in small.lines)
        for _, _, gt in placements
    ) / len(placements)
    assert small_recall < 0.3, small_recall  # tiling is what makes small text readable
