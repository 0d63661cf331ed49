"""Page results made from a rendered page's own words (text and glyph boxes, no OCR): what
searchable-PDF tests layer when the layer, not the reading, is under test."""

from __future__ import annotations

from benchmarks.rendered_pages import RenderedPage

from ocrmill.results import PageResult, TextLine, Word, make_quad


def known_result(page: RenderedPage, rotation: int = 0) -> PageResult:
    """A page result whose words are the rendered page's own (``rotation``: how far the
    page is turned counter-clockwise, as the engine would report it)."""
    lines = []
    words = iter(page.words)
    for text in page.lines:
        line_words = [next(words) for _ in text.split()]
        first, last = line_words[0][1], line_words[-1][1]
        box = make_quad([first[0], last[1], last[2], first[3]])
        lines.append(
            TextLine(
                text=text,
                score=1.0,
                box=box,
                words=tuple(Word(t, 1.0, make_quad(b)) for t, b in line_words),
            )
        )
    width, height = page.image.size
    return PageResult(
        input="page.png", width=width, height=height, lines=tuple(lines), rotation=rotation
    )
