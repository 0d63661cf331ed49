"""ocrmill as OCRmyPDF's OCR engine (``pip install 'ocrmill[ocrmypdf]'``).

``ocrmypdf --plugin ocrmill.ocrmypdf in.pdf out.pdf`` (or ``ocrmypdf.ocr(...,
plugins=["ocrmill.ocrmypdf"])``) reads every page with ocrmill in place of Tesseract. Once
ocrmill is installed beside OCRmyPDF, ``--ocr-engine ocrmill`` selects it without
``--plugin`` (the ``ocrmypdf`` entry point, :mod:`ocrmill.ocrmypdf.entry`, which OCRmyPDF
always loads and which claims nothing unless asked for by that name).

What OCRmyPDF gets (:mod:`ocrmill.ocrmypdf.engine`): words with their boxes, lines,
paragraphs and areas in ocrmill's reading order (``generate_ocr``; hOCR and a text-only PDF
for the older renderers), the page's orientation (``--rotate-pages``) and skew
(``--deskew``), and a clear error for a language the models cannot read
(:mod:`ocrmill.ocrmypdf.languages`). The models load in the worker, on its first page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ocrmypdf import hookimpl

from ocrmill.ocrmypdf import options as _options

if TYPE_CHECKING:
    from ocrmill.ocrmypdf.engine import OcrmillEngine


@hookimpl
def check_options(options: Any) -> None:
    _options.check_if_selected(options, claim_auto=True)


@hookimpl
def get_ocr_engine(options: Any = None) -> OcrmillEngine | None:
    return _options.engine_if_selected(options, claim_auto=True)
