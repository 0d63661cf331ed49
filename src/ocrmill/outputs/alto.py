"""ALTO v4: a document's pages as ``Page`` > ``PrintSpace`` > ``TextBlock`` > ``TextLine`` >
``String`` (with ``SP`` between words), positions in pixels, word confidences as ``WC``, the
page rotation as each block's ``ROTATION`` (degrees counter-clockwise), a block's kind as a
``LayoutTag`` (``LABEL``: title, heading, paragraph, list_item, caption, header, footer,
table) it refers to by ``TAGREFS``."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from ocrmill.outputs.documents import PageView, document_view
from ocrmill.outputs.geometry import BBox
from ocrmill.results import Result

ALTO = "http://www.loc.gov/standards/alto/ns-v4#"
SCHEMA = "http://www.loc.gov/standards/alto/ns-v4# http://www.loc.gov/alto/v4/alto-4-2.xsd"
XSI = "http://www.w3.org/2001/XMLSchema-instance"


def _position(box: BBox) -> dict[str, str]:
    x0, y0, x1, y1 = box
    return {"HPOS": str(x0), "VPOS": str(y0), "WIDTH": str(x1 - x0), "HEIGHT": str(y1 - y0)}


def _q(tag: str) -> str:
    return f"{{{ALTO}}}{tag}"


def _tag_id(kind: str) -> str:
    return f"layout_{kind}"


def _tags(root: ET.Element, pages: list[PageView]) -> None:
    """A ``LayoutTag`` per block kind used, which the blocks refer to (``TAGREFS``)."""
    kinds = sorted({block.kind for page in pages for block in page.blocks if block.kind})
    if not kinds:
        return
    tags = ET.SubElement(root, _q("Tags"))
    for kind in kinds:
        ET.SubElement(tags, _q("LayoutTag"), {"ID": _tag_id(kind), "LABEL": kind})


def _page(layout: ET.Element, page: PageView) -> None:
    n = page.number
    attrs = {
        "ID": f"page_{n}",
        "PHYSICAL_IMG_NR": str(n),
        "WIDTH": str(page.width),
        "HEIGHT": str(page.height),
    }
    if page.error is not None:
        attrs["PROCESSING"] = "failed"
    element = ET.SubElement(layout, _q("Page"), attrs)
    space = ET.SubElement(
        element,
        _q("PrintSpace"),
        {"ID": f"space_{n}", **_position((0, 0, page.width, page.height))},
    )
    line_no = word_no = 0
    for b, block in enumerate(page.blocks, start=1):
        block_attrs = {"ID": f"block_{n}_{b}", **_position(block.box)}
        if page.rotation:
            block_attrs["ROTATION"] = str(page.rotation)
        if block.kind is not None:
            block_attrs["TAGREFS"] = _tag_id(block.kind)
        text_block = ET.SubElement(space, _q("TextBlock"), block_attrs)
        for line in block.lines:
            line_no += 1
            text_line = ET.SubElement(
                text_block, _q("TextLine"), {"ID": f"line_{n}_{line_no}", **_position(line.box)}
            )
            for i, word in enumerate(line.words):
                word_no += 1
                ET.SubElement(
                    text_line,
                    _q("String"),
                    {
                        "ID": f"string_{n}_{word_no}",
                        "CONTENT": word.text,
                        **_position(word.box),
                        "WC": f"{word.score:.4f}",
                    },
                )
                if i < len(line.words) - 1:
                    gap_x = word.box[2]
                    nxt = line.words[i + 1].box[0]
                    ET.SubElement(
                        text_line,
                        _q("SP"),
                        {
                            "HPOS": str(gap_x),
                            "VPOS": str(word.box[1]),
                            "WIDTH": str(max(0, nxt - gap_x)),
                        },
                    )


def render_alto(
    results: Sequence[Result], *, file_name: str = "", software: str = "ocrmill", version: str = ""
) -> str:
    """One ALTO v4 document for the pages of one input (in page order)."""
    ET.register_namespace("", ALTO)
    ET.register_namespace("xsi", XSI)
    root = ET.Element(_q("alto"), {f"{{{XSI}}}schemaLocation": SCHEMA})
    description = ET.SubElement(root, _q("Description"))
    ET.SubElement(description, _q("MeasurementUnit")).text = "pixel"
    source = ET.SubElement(description, _q("sourceImageInformation"))
    ET.SubElement(source, _q("fileName")).text = file_name
    processing = ET.SubElement(description, _q("OCRProcessing"), {"ID": "ocr_0"})
    step = ET.SubElement(processing, _q("ocrProcessingStep"))
    software_element = ET.SubElement(step, _q("processingSoftware"))
    ET.SubElement(software_element, _q("softwareName")).text = software
    if version:
        ET.SubElement(software_element, _q("softwareVersion")).text = version
    pages = document_view(results)
    _tags(root, pages)
    layout = ET.SubElement(root, _q("Layout"))
    for page in pages:
        _page(layout, page)
    ET.indent(root, space=" ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
