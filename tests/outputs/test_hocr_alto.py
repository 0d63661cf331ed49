"""hOCR and ALTO: they parse, their word boxes sit on the rendered page's words, and what
they say round-trips to the record's words, blocks and lines."""

from __future__ import annotations

import numpy as np
import pytest
from benchmarks.layout import word_accuracy
from benchmarks.rendered_pages import render_layout, turn
from lxml import etree, html

from ocrmill.errors import ConfigError
from ocrmill.outputs.alto import ALTO, render_alto
from ocrmill.outputs.geometry import bbox
from ocrmill.outputs.hocr import render_hocr
from ocrmill.results import PageFailure

A = f"{{{ALTO}}}"


def quad(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


def title_props(title: str) -> dict[str, str]:
    props = {}
    for part in title.split(";"):
        key, _, value = part.strip().partition(" ")
        props[key] = value
    return props


def hocr_words(text: str) -> list[tuple[str, np.ndarray, int]]:
    tree = html.fromstring(text.encode("utf-8"))
    out = []
    for span in tree.xpath('//span[@class="ocrx_word"]'):
        props = title_props(span.get("title"))
        box = quad(*(float(v) for v in props["bbox"].split()))
        out.append((span.text, box, int(props["x_wconf"])))
    return out


def alto_words(text: str) -> list[tuple[str, np.ndarray, float]]:
    root = etree.fromstring(text.encode("utf-8"))
    out = []
    for string in root.iter(f"{A}String"):
        x, y = float(string.get("HPOS")), float(string.get("VPOS"))
        w, h = float(string.get("WIDTH")), float(string.get("HEIGHT"))
        out.append((string.get("CONTENT"), quad(x, y, x + w, y + h), float(string.get("WC"))))
    return out


@pytest.fixture(scope="module")
def page(engine):
    rendered = render_layout("title_columns_footer", width=1200, size=22, seed=3)
    return rendered, engine.read(np.asarray(rendered.image), name="columns.png")


@pytest.fixture(scope="module")
def turned(engine):
    rendered = turn(render_layout("two_columns", width=1000, size=22, seed=5), 90)
    return rendered, engine.read(np.asarray(rendered.image), name="turned.png")


def record_words(result) -> list[tuple[str, tuple[int, int, int, int]]]:
    return [
        (w.text, bbox(w.box, result.width, result.height))
        for line in result.lines
        for w in line.words
    ]


@pytest.mark.parametrize("kind", ["upright", "turned"])
def test_hocr_parses_and_its_words_sit_on_the_glyphs(page, turned, kind):
    rendered, result = page if kind == "upright" else turned
    document = render_hocr([result], title="columns.png")
    assert document.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    tree = html.fromstring(document.encode("utf-8"))
    (ocr_page,) = tree.xpath('//div[@class="ocr_page"]')
    assert title_props(ocr_page.get("title"))["bbox"] == f"0 0 {result.width} {result.height}"
    areas = tree.xpath('//div[@class="ocr_carea" or @class="ocr_header" or @class="ocr_footer"]')
    assert len(areas) == len(result.blocks)
    assert len(tree.xpath('//span[@class="ocr_line"]')) == len(result.lines)
    found = hocr_words(document)
    assert word_accuracy([(t, b) for t, b, _ in found], rendered) >= 0.95
    # Round trip: the document says exactly what the record says, in reading order.
    assert [(t, tuple(int(v) for v in b[[0, 0, 2, 2], [0, 1, 0, 1]])) for t, b, _ in found] == [
        (t, b) for t, b in record_words(result)
    ]
    if kind == "turned":
        assert all(
            "textangle 90" in s.get("title") for s in tree.xpath('//span[@class="ocr_line"]')
        )


@pytest.mark.parametrize("kind", ["upright", "turned"])
def test_alto_parses_and_its_words_sit_on_the_glyphs(page, turned, kind):
    rendered, result = page if kind == "upright" else turned
    document = render_alto([result], file_name="columns.png", software="ocrmill", version="x")
    root = etree.fromstring(document.encode("utf-8"))
    assert root.tag == f"{A}alto"
    (alto_page,) = root.iter(f"{A}Page")
    assert (alto_page.get("WIDTH"), alto_page.get("HEIGHT")) == (
        str(result.width),
        str(result.height),
    )
    blocks = list(root.iter(f"{A}TextBlock"))
    assert len(blocks) == len(result.blocks)
    assert len(list(root.iter(f"{A}TextLine"))) == len(result.lines)
    found = alto_words(document)
    assert word_accuracy([(t, b) for t, b, _ in found], rendered) >= 0.95
    assert [t for t, _, _ in found] == [t for t, _ in record_words(result)]
    spaces = len(list(root.iter(f"{A}SP")))
    assert spaces == sum(max(0, len(line.words) - 1) for line in result.lines)
    if kind == "turned":
        assert {b.get("ROTATION") for b in blocks} == {"90"}


def test_a_document_of_several_pages_keeps_their_order_and_marks_a_failed_one(page):
    _, result = page
    from dataclasses import replace

    second = replace(result, page=1)
    failed = PageFailure("doc.pdf", "corrupt_image", "doc.pdf (page 3): cannot render", page=2)
    hocr = html.fromstring(render_hocr([failed, second, replace(result, page=0)]).encode())
    pages = hocr.xpath('//div[@class="ocr_page"]')
    assert [title_props(p.get("title"))["ppageno"] for p in pages] == ["0", "1", "2"]
    assert pages[2].get("data-error").startswith("corrupt_image")
    alto = etree.fromstring(render_alto([second, failed, replace(result, page=0)]).encode())
    alto_pages = list(alto.iter(f"{A}Page"))
    assert [p.get("PHYSICAL_IMG_NR") for p in alto_pages] == ["1", "2", "3"]
    assert alto_pages[2].get("PROCESSING") == "failed"


def test_hocr_states_a_language_only_when_told_one(page):
    _, result = page
    unknown = etree.fromstring(render_hocr([result]).encode("utf-8"))
    lang_attrs = {"lang", "{http://www.w3.org/XML/1998/namespace}lang"}
    assert not lang_attrs & set(unknown.attrib)  # the page's language is unknown: no claim
    capabilities = unknown.find(".//{*}meta[@name='ocr-capabilities']").get("content").split()
    assert "ocrp_lang" not in capabilities and "ocrx_word" in capabilities
    german = etree.fromstring(render_hocr([result], lang="de").encode("utf-8"))
    assert {a: german.get(a) for a in lang_attrs} == dict.fromkeys(lang_attrs, "de")
    capabilities = german.find(".//{*}meta[@name='ocr-capabilities']").get("content").split()
    assert "ocrp_lang" in capabilities
    # Both parse as XHTML, with the same pages.
    for document in (unknown, german):
        assert document.tag == "{http://www.w3.org/1999/xhtml}html"
        assert len(document.findall(".//{*}span[@class='ocrx_word']")) == sum(
            len(line.words) for line in result.lines
        )
    with pytest.raises(ConfigError):
        render_hocr([result], lang='en" onload="x')


def test_block_kinds_are_hocr_classes_and_alto_layout_tags(page):
    """The title is an ocr_title, the footer an ocr_footer area; in ALTO each block refers
    to a LayoutTag labelled with its kind."""
    _, result = page
    kinds = [block.kind for block in result.blocks]
    assert kinds[0] == "title" and kinds[-1] == "footer" and "paragraph" in kinds
    tree = html.fromstring(render_hocr([result]).encode("utf-8"))
    (title,) = tree.xpath('//h1[@class="ocr_title"]')
    assert title.xpath("string()").split() == result.lines[result.blocks[0].lines[0]].text.split()
    (footer,) = tree.xpath('//div[@class="ocr_footer"]//span[@class="ocr_line"]')
    assert footer.xpath("string()").split()[:3] == ["The", "Ocrmill", "Review,"]
    root = etree.fromstring(render_alto([result]).encode("utf-8"))
    labels = {tag.get("ID"): tag.get("LABEL") for tag in root.iter(f"{A}LayoutTag")}
    blocks = list(root.iter(f"{A}TextBlock"))
    assert [labels.get(b.get("TAGREFS")) for b in blocks] == kinds
    # Tags come before the layout, as ALTO's schema orders them.
    assert [child.tag for child in root] == [f"{A}Description", f"{A}Tags", f"{A}Layout"]
