"""hOCR 1.2: a document's pages as XHTML (``ocr_page`` > ``ocr_carea`` > ``ocr_par`` >
``ocr_line`` > ``ocrx_word``), boxes in input pixels, word confidences as ``x_wconf``.
Running headers and footers are ``ocr_header`` / ``ocr_footer`` areas, a title an
``ocr_title`` and a caption an ``ocr_caption`` in place of the paragraph; a table is an
``ocr_table`` area, its lines row by row.

The recognizer does not tell which language a page is in, so the document states none
unless the caller knows it (``lang``)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from ocrmill.errors import ConfigError
from ocrmill.outputs.documents import PageView, document_view
from ocrmill.outputs.geometry import BBox
from ocrmill.results import Result

XHTML = "http://www.w3.org/1999/xhtml"
CAPABILITIES = (
    "ocr_page ocr_carea ocr_header ocr_footer ocr_table ocr_title ocr_caption ocr_par ocr_line "
    "ocrx_word ocrp_wconf"
)
# A block's kind as hOCR classes: (the area's class, the paragraph's element and class).
# Kinds hOCR has no class of its own for (heading, list item) stay paragraphs.
BLOCK_CLASSES: dict[str | None, tuple[str, str, str]] = {
    None: ("ocr_carea", "p", "ocr_par"),
    "paragraph": ("ocr_carea", "p", "ocr_par"),
    "heading": ("ocr_carea", "p", "ocr_par"),
    "list_item": ("ocr_carea", "p", "ocr_par"),
    "title": ("ocr_carea", "h1", "ocr_title"),
    "caption": ("ocr_carea", "p", "ocr_caption"),
    "header": ("ocr_header", "p", "ocr_par"),
    "footer": ("ocr_footer", "p", "ocr_par"),
    "table": ("ocr_table", "p", "ocr_par"),
}
LANG_CAPABILITY = "ocrp_lang"  # only when the document states its language
_LANGUAGE_TAG = re.compile(r"[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*")  # BCP 47's shape


def _bbox(box: BBox) -> str:
    return "bbox {} {} {} {}".format(*box)


def _page(body: ET.Element, page: PageView) -> None:
    n = page.number
    title = (
        f'image "{_quoted(page.name)}"; {_bbox((0, 0, page.width, page.height))}; ppageno {n - 1}'
    )
    div = ET.SubElement(body, "div", {"class": "ocr_page", "id": f"page_{n}", "title": title})
    if page.error is not None:
        div.set("data-error", page.error)
    line_no = word_no = 0
    for b, block in enumerate(page.blocks, start=1):
        area_class, par_tag, par_class = BLOCK_CLASSES.get(block.kind, BLOCK_CLASSES[None])
        area = ET.SubElement(
            div, "div", {"class": area_class, "id": f"block_{n}_{b}", "title": _bbox(block.box)}
        )
        par = ET.SubElement(
            area, par_tag, {"class": par_class, "id": f"par_{n}_{b}", "title": _bbox(block.box)}
        )
        for line in block.lines:
            line_no += 1
            props = _bbox(line.box)
            if page.rotation:
                props += f"; textangle {page.rotation}"
            span = ET.SubElement(
                par, "span", {"class": "ocr_line", "id": f"line_{n}_{line_no}", "title": props}
            )
            for i, word in enumerate(line.words):
                word_no += 1
                attrs = {
                    "class": "ocrx_word",
                    "id": f"word_{n}_{word_no}",
                    "title": f"{_bbox(word.box)}; x_wconf {round(word.score * 100)}",
                }
                element = ET.SubElement(span, "span", attrs)
                element.text = word.text
                element.tail = " " if i < len(line.words) - 1 else None


def _quoted(name: str) -> str:
    return name.replace("\\", "\\\\").replace('"', '\\"')


def render_hocr(
    results: Sequence[Result],
    *,
    title: str = "",
    software: str = "ocrmill",
    lang: str | None = None,
) -> str:
    """One hOCR document for the pages of one input (in page order).

    ``lang``: the pages' language as a BCP 47 tag (``"de"``, ``"pt-BR"``), when the caller
    knows it; the document then says so (``xml:lang`` and ``lang``). By default it states no
    language."""
    if lang is not None and not _LANGUAGE_TAG.fullmatch(lang):
        raise ConfigError(f"hOCR language {lang!r} is not a language tag such as 'en' or 'pt-BR'")
    ET.register_namespace("", XHTML)
    attributes = {"xmlns": XHTML}
    capabilities = CAPABILITIES
    if lang is not None:
        attributes.update({"xml:lang": lang, "lang": lang})
        capabilities += f" {LANG_CAPABILITY}"
    html = ET.Element("html", attributes)
    head = ET.SubElement(html, "head")
    ET.SubElement(head, "title").text = title
    ET.SubElement(
        head, "meta", {"http-equiv": "Content-Type", "content": "text/html;charset=utf-8"}
    )
    ET.SubElement(head, "meta", {"name": "ocr-system", "content": software})
    ET.SubElement(head, "meta", {"name": "ocr-capabilities", "content": capabilities})
    body = ET.SubElement(html, "body")
    for page in document_view(results):
        _page(body, page)
    ET.indent(html, space=" ")
    doctype = (
        '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"\n'
        '    "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n'
    )
    body_text = ET.tostring(html, encoding="unicode", short_empty_elements=False)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + doctype + body_text + "\n"
