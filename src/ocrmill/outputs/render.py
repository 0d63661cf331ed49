"""One input's pages as one text document: hOCR, ALTO or plain text (pages separated by form
feeds). The one place a document format is chosen, for files, the server and ``read``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from ocrmill.outputs.alto import render_alto
from ocrmill.outputs.hocr import render_hocr
from ocrmill.results import PageResult, Result

TextFormat = Literal["hocr", "alto", "text"]


def render_document(
    fmt: TextFormat | str,
    results: Sequence[Result],
    *,
    name: str,
    software: str = "ocrmill",
    pages: int | None = None,
) -> str:
    """The document of ``results`` (one input's pages, any order) named ``name``. Plain
    text has one page per record, or, given the document's ``pages``, one per page (a page
    without a record is empty: not read, as ``ocrmill pdf --pages`` leaves some)."""
    if fmt == "hocr":
        return render_hocr(results, title=name, software=software)
    if fmt == "alto":
        return render_alto(results, file_name=name, software=software)
    if fmt == "text":
        return "\f".join(_page_text(r) for r in _pages_in_order(results, pages))
    raise ValueError(f"not a text document format: {fmt!r}")


def _page_text(result: Result | None) -> str:
    return result.text + "\n" if isinstance(result, PageResult) else "\n"


def _pages_in_order(results: Sequence[Result], pages: int | None) -> list[Result | None]:
    ordered = sorted(results, key=lambda r: r.page or 0)
    if pages is None:
        return list(ordered)
    by_page = {r.page or 0: r for r in ordered}
    return [by_page.get(index) for index in range(max(pages, max(by_page, default=-1) + 1))]
