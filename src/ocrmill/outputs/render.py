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
    fmt: TextFormat | str, results: Sequence[Result], *, name: str, software: str = "ocrmill"
) -> str:
    """The document of ``results`` (one input's pages, any order) named ``name``."""
    if fmt == "hocr":
        return render_hocr(results, title=name, software=software)
    if fmt == "alto":
        return render_alto(results, file_name=name, software=software)
    if fmt == "text":
        ordered = sorted(results, key=lambda r: r.page or 0)
        return "\f".join(r.text + "\n" if isinstance(r, PageResult) else "\n" for r in ordered)
    raise ValueError(f"not a text document format: {fmt!r}")
