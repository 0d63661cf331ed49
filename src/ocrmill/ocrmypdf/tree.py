"""A page result as OCRmyPDF's ``OcrElement`` tree: page > area > paragraph > line > word,
in reading order, boxes in the page image's pixels, word confidences in [0, 1].

Each block is an area holding one paragraph. A running header's, a footer's and a caption's
lines are OCRmyPDF's ``ocr_header``, ``ocr_footer`` and ``ocr_caption`` lines (the line
classes Tesseract's hOCR uses for them); every other line is an ``ocr_line``. A page read
turned (its content turned counter-clockwise by ``rotation``, when OCRmyPDF did not turn it
upright first) gives its lines that ``textangle``, as hOCR does.
"""

from __future__ import annotations

from ocrmypdf.hocrtransform import BoundingBox, OcrClass, OcrElement

from ocrmill.outputs.documents import page_view
from ocrmill.outputs.geometry import BBox
from ocrmill.results import PageResult

LINE_CLASSES = {
    "header": OcrClass.HEADER,
    "footer": OcrClass.FOOTER,
    "caption": OcrClass.CAPTION,
}


def _box(box: BBox) -> BoundingBox:
    x0, y0, x1, y1 = box
    return BoundingBox(left=x0, top=y0, right=max(x0, x1), bottom=max(y0, y1))


def page_tree(result: PageResult, *, dpi: float, page_number: int) -> OcrElement:
    """The ``ocr_page`` element of ``result`` (an image ``dpi`` dots per inch)."""
    view = page_view(result, page_number + 1)
    angle = float(result.rotation) if result.rotation else None
    areas = []
    for block in view.blocks:
        lines = [
            OcrElement(
                ocr_class=LINE_CLASSES.get(block.kind or "", OcrClass.LINE),
                bbox=_box(line.box),
                textangle=angle,
                children=[
                    OcrElement(
                        ocr_class=OcrClass.WORD,
                        bbox=_box(word.box),
                        text=word.text,
                        confidence=float(word.score),
                    )
                    for word in line.words
                ],
            )
            for line in block.lines
        ]
        paragraph = OcrElement(ocr_class=OcrClass.PARAGRAPH, bbox=_box(block.box), children=lines)
        areas.append(
            OcrElement(ocr_class=OcrClass.CAREA, bbox=_box(block.box), children=[paragraph])
        )
    return OcrElement(
        ocr_class=OcrClass.PAGE,
        bbox=BoundingBox(left=0, top=0, right=result.width, bottom=result.height),
        dpi=dpi,
        page_number=page_number,
        children=areas,
    )
