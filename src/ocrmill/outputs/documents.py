"""The shape the hOCR and ALTO writers walk: a document's pages, each as blocks of lines of
words with whole-pixel boxes, in reading order (a pure view of page results)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ocrmill.outputs.geometry import BBox, bbox, union
from ocrmill.results import PageFailure, PageResult, Result


@dataclass(frozen=True)
class WordView:
    text: str
    score: float
    box: BBox


@dataclass(frozen=True)
class LineView:
    text: str
    score: float
    box: BBox
    words: tuple[WordView, ...]


@dataclass(frozen=True)
class BlockView:
    box: BBox
    lines: tuple[LineView, ...]
    kind: str | None = None  # see ocrmill.pipeline.block_kinds


@dataclass(frozen=True)
class PageView:
    """One page (``number`` counts from 1); a failed page has no blocks and its ``error``."""

    number: int
    name: str
    width: int
    height: int
    rotation: int
    blocks: tuple[BlockView, ...]
    error: str | None = None


def _line(page: PageResult, index: int) -> LineView:
    line = page.lines[index]
    w, h = page.width, page.height
    words = tuple(WordView(x.text, x.score, bbox(x.box, w, h)) for x in line.words)
    if not words and line.text:  # a record from before words existed: the line is one word
        words = (WordView(line.text, line.score, bbox(line.box, w, h)),)
    return LineView(line.text, line.score, bbox(line.box, w, h), words)


def page_view(result: Result, number: int) -> PageView:
    """The view of one record (a failure becomes an empty page saying why)."""
    if isinstance(result, PageFailure):
        return PageView(number, result.input, 0, 0, 0, (), f"{result.code}: {result.message}")
    groups = [(block.lines, block.kind) for block in result.blocks] or [
        (tuple(range(len(result.lines))), None)
    ]
    blocks = []
    for indices, kind in groups:
        lines = tuple(_line(result, i) for i in indices)
        if lines:
            blocks.append(BlockView(union(line.box for line in lines), lines, kind))
    return PageView(
        number, result.input, result.width, result.height, result.rotation, tuple(blocks)
    )


def document_view(results: Sequence[Result]) -> list[PageView]:
    """Pages in order (by ``page``; images count as page 0)."""
    ordered = sorted(results, key=lambda r: r.page or 0)
    return [page_view(result, i + 1) for i, result in enumerate(ordered)]
