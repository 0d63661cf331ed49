"""Searchable PDFs as they are finished and written (no OCR here: layers are drawn from
the rendered pages' own words): PDF/A-2b and when it is refused, the metadata, turned pages
shown upright (``--rotate-pages``), earlier OCR layers replaced (``--redo-ocr``), and the
lossless size savings.

PDF/A is checked for its structure with pikepdf (:func:`~.pdfa_check.pdfa_problems`)."""

from __future__ import annotations

import logging

import numpy as np
import pikepdf
import pypdfium2 as pdfium
import pytest
from benchmarks.rendered_pages import render_layout, turn

from ocrmill.outputs.pdf import LayeredPdf, image_document
from ocrmill.outputs.pdf_save import DocumentInfo, PdfOptions, finish
from ocrmill.outputs.pdf_strip import remove_text, strip_invisible_text
from ocrmill.outputs.pdfa import pdfa_blockers
from ocrmill.outputs.writer import DocumentWriter

from .extractors import pdfium_pages
from .known_words import known_result
from .pdfa_check import pdfa_problems

SOFTWARE = "ocrmill 1.2.3"


def _scan(tmp_path, pages, name="scan.pdf", **save) -> object:
    """An image-only PDF of rendered pages, saved with ``save``'s settings."""
    pdf = pikepdf.new()
    for i, page in enumerate(pages):
        path = tmp_path / f"{name}.{i}.png"
        page.image.save(path, dpi=(150, 150))
        pdf.pages.extend(image_document(path).pages)
    out = tmp_path / name
    pdf.save(out, **save)
    return out


def _layer(source, out, results, options=None) -> list[str]:
    """``source`` with a layer of ``results`` on its first pages, saved to ``out``."""
    layered = LayeredPdf(pikepdf.open(source), options)
    try:
        for index, result in enumerate(results):
            layered.add_layer(index, result)
        return layered.save(out, SOFTWARE)
    finally:
        layered.close()


@pytest.fixture(scope="module")
def page():
    return render_layout("two_columns", width=700, size=18, seed=3)


@pytest.fixture
def scan(tmp_path, page):
    return _scan(tmp_path, [page])


def test_the_default_output_is_pdfa_2b_and_pages_are_untouched(scan, page, tmp_path):
    out = tmp_path / "out.pdf"
    assert PdfOptions().output_type == "pdfa"
    assert _layer(scan, out, [known_result(page)]) == []
    assert pdfa_problems(out) == []
    with pikepdf.open(scan) as before, pikepdf.open(out) as after:
        old, new = before.pages[0], after.pages[0]
        assert {k: v.read_raw_bytes() for k, v in new.get_images().items()} == {
            k: v.read_raw_bytes() for k, v in old.get_images().items()
        }
        drawn = b"".join(s.read_bytes() for s in new.obj.Contents)
        assert old.obj.Contents.read_bytes() in drawn  # the page's own content, as it was
    assert pdfium_pages(out)[0].split() == page.text.split()


def test_output_type_pdf_makes_a_plain_pdf(scan, page, tmp_path):
    out = tmp_path / "out.pdf"
    assert _layer(scan, out, [known_result(page)], PdfOptions(output_type="pdf")) == []
    problems = pdfa_problems(out)
    assert "not declared PDF/A-2b" in problems and "not one PDF/A output intent" in problems
    with pikepdf.open(out) as pdf:
        assert str(pdf.docinfo.Producer) == SOFTWARE  # metadata all the same


def _born_digital_page(pdf: pikepdf.Pdf) -> None:
    """A page of visible Helvetica text (a font PDF/A wants embedded and that is not)."""
    pdf.add_blank_page(page_size=(300, 200))
    page = pdf.pages[-1]
    font = pikepdf.Dictionary(
        Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1, BaseFont=pikepdf.Name.Helvetica
    )
    page.Resources = pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font))
    page.Contents = pdf.make_stream(b"BT /F1 24 Tf 30 100 Td (Born digital) Tj ET")


def test_an_input_that_cannot_be_pdfa_is_written_as_a_plain_pdf_saying_why(
    scan, page, tmp_path, caplog
):
    mixed = tmp_path / "mixed.pdf"
    with pikepdf.open(scan) as pdf:
        _born_digital_page(pdf)
        with pdf.open_metadata() as meta:  # a claim of its own, which would now be false
            meta["pdfaid:part"] = "2"
            meta["pdfaid:conformance"] = "B"
        pdf.save(mixed)
    out = tmp_path / "out.pdf"
    writer = DocumentWriter(
        "pdf",
        "mixed.pdf",
        source=str(mixed),
        is_pdf=True,
        pages=2,
        software=SOFTWARE,
        max_pixels=10**8,
    )
    writer.add(known_result(page), 0)
    with caplog.at_level(logging.WARNING):
        writer.save(out)
    writer.close()
    assert writer.not_pdfa == ["page 2: font Helvetica is not embedded"]
    assert "mixed.pdf: written as a plain PDF, not PDF/A" in caplog.text
    assert "font Helvetica is not embedded" in caplog.text
    with pikepdf.open(out) as pdf:
        meta = pdf.open_metadata()
        assert "pdfaid:part" not in meta and "/OutputIntents" not in pdf.Root
    assert pdfium_pages(out)[1].strip() == "Born digital"


def test_what_pdfa_2b_forbids_is_named(scan):
    """LZW streams and an output intent of another kind (its profile would have to be the
    PDF/A intent's too) stop a document from being PDF/A-2b as it stands."""
    with pikepdf.open(scan) as pdf:
        assert pdfa_blockers(pdf) == []
        lzw = pdf.make_stream(b"\x80\x0b\x60\x50\x22\x0c\x0c\x85\x01")
        lzw[pikepdf.Name.Filter] = pikepdf.Name.LZWDecode
        pdf.pages[0].obj.Resources.XObject.Lzw = lzw
        profile = pdf.make_stream(b"not really a profile")
        pdf.Root.OutputIntents = pikepdf.Array(
            [pikepdf.Dictionary(S=pikepdf.Name.GTS_PDFX, DestOutputProfile=profile)]
        )
        assert pdfa_blockers(pdf) == [
            "it has an output intent of another kind (e.g. PDF/X) with a profile of its own",
            "it uses LZW compression",
        ]


def test_metadata_names_ocrmill_and_keeps_info_and_xmp_in_step(scan, page, tmp_path):
    titled = tmp_path / "titled.pdf"
    with pikepdf.open(scan) as pdf:
        pdf.docinfo["/Title"] = "Kept title"
        pdf.docinfo["/Producer"] = "some scanner"
        pdf.save(titled)
    out = tmp_path / "kept.pdf"
    _layer(titled, out, [known_result(page)])
    with pikepdf.open(out) as pdf:
        meta = pdf.open_metadata()
        assert str(pdf.docinfo.Title) == meta["dc:title"] == "Kept title"
        assert str(pdf.docinfo.Producer) == meta["pdf:Producer"] == SOFTWARE
        assert str(pdf.docinfo.Creator) == meta["xmp:CreatorTool"] == SOFTWARE
    info = DocumentInfo(
        title="Ledger 1911", author="A. Clerk", subject="Accounts", keywords="ledger, 1911"
    )
    out = tmp_path / "given.pdf"
    _layer(titled, out, [known_result(page)], PdfOptions(info=info))
    assert pdfa_problems(out) == []
    with pikepdf.open(out) as pdf:
        meta, docinfo = pdf.open_metadata(), pdf.docinfo
        assert str(docinfo.Title) == meta["dc:title"] == "Ledger 1911"
        assert str(docinfo.Author) == "A. Clerk" and meta["dc:creator"] == ["A. Clerk"]
        assert str(docinfo.Subject) == meta["dc:description"] == "Accounts"
        assert str(docinfo.Keywords) == meta["pdf:Keywords"] == "ledger, 1911"


def _render(path, index: int, dpi: int = 50) -> np.ndarray:
    doc = pdfium.PdfDocument(str(path))
    try:
        return np.asarray(doc[index].render(scale=dpi / 72).to_pil().convert("L"), dtype=float)
    finally:
        doc.close()


def test_rotate_pages_shows_turned_pages_upright_and_keeps_their_content(page, tmp_path):
    turned = [turn(page, r) for r in (0, 90, 180, 270)]
    scan = _scan(tmp_path, turned)
    results = [known_result(t, rotation=t.rotation) for t in turned]
    as_read, upright = tmp_path / "as_read.pdf", tmp_path / "upright.pdf"
    _layer(scan, as_read, results)
    _layer(scan, upright, results, PdfOptions(rotate_pages=True))
    want = _render(upright, 0)
    with pikepdf.open(as_read) as kept, pikepdf.open(upright) as shown:
        for index, rotation in enumerate((0, 90, 180, 270)):
            assert int(kept.pages[index].obj.get("/Rotate", 0)) == 0
            assert int(shown.pages[index].obj.get("/Rotate", 0)) == rotation
            old, new = kept.pages[index].obj.Contents, shown.pages[index].obj.Contents
            assert [s.read_bytes() for s in old] == [s.read_bytes() for s in new]
            shown_as = _render(upright, index)
            assert shown_as.shape == want.shape, index
            assert np.abs(shown_as - want).mean() < 2.0, index  # upright, as page 1 is
    for text in pdfium_pages(upright):  # the layer turned with its page
        assert text.split() == page.text.split()


def _tesseract_like_layer(pdf: pikepdf.Pdf, index: int, words: bytes) -> None:
    """Invisible text in the page's own content (render mode 3), as other tools draw it."""
    page = pdf.pages[index]
    font = pikepdf.Dictionary(
        Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1, BaseFont=pikepdf.Name.Helvetica
    )
    page.obj.Resources.Font = pikepdf.Dictionary(F9=font)
    page.contents_add(pdf.make_stream(b"BT 3 Tr /F9 12 Tf 20 20 Td (" + words + b") Tj ET"))


def test_redo_ocr_replaces_earlier_layers_and_keeps_visible_text(scan, page, tmp_path):
    ours = tmp_path / "ours.pdf"
    _layer(scan, ours, [known_result(page)])
    again = tmp_path / "again.pdf"
    _layer(ours, again, [known_result(page)], PdfOptions(redo_ocr=True))
    assert pdfium_pages(again)[0].split() == page.text.split()  # one layer, not two
    with pikepdf.open(again) as pdf:
        layers = [n for n in pdf.pages[0].obj.Resources.XObject if "Ocrmill" in str(n)]
        assert len(layers) == 1

    theirs = tmp_path / "theirs.pdf"
    with pikepdf.open(scan) as pdf:
        _tesseract_like_layer(pdf, 0, b"0ld misread w0rds")
        _born_digital_page(pdf)
        pdf.save(theirs)
    redone = tmp_path / "redone.pdf"
    _layer(theirs, redone, [known_result(page)], PdfOptions(redo_ocr=True))
    texts = pdfium_pages(redone)
    assert "misread" not in texts[0] and texts[0].split() == page.text.split()
    assert texts[1].strip() == "Born digital"  # visible text is never stripped


def test_strip_and_remove_text_touch_only_the_text_they_name(scan, tmp_path):
    with pikepdf.open(scan) as pdf:
        _tesseract_like_layer(pdf, 0, b"hidden words")
        _born_digital_page(pdf)
        assert strip_invisible_text(pdf, 0) and not strip_invisible_text(pdf, 1)
        assert remove_text(pdf, 1) and not remove_text(pdf, 0)
        pdf.save(tmp_path / "stripped.pdf")
    assert [t.strip() for t in pdfium_pages(tmp_path / "stripped.pdf")] == ["", ""]
    assert np.array_equal(_render(tmp_path / "stripped.pdf", 0), _render(scan, 0))


def test_saving_takes_the_lossless_savings(page, tmp_path):
    """Objects go into object streams and uncompressed streams are compressed: an input
    written without either comes out smaller when nothing is added (so the output is at
    most the input and the layer), and a layered one smaller than a plain save of it."""
    loose = tmp_path / "loose.pdf"
    with pikepdf.open(_scan(tmp_path, [page])) as pdf:
        pdf.add_blank_page(page_size=(300, 200))
        pdf.pages[-1].Contents = pdf.make_stream(b"0 0 m 300 200 l S\n" * 400)  # vector art
        pdf.save(loose, compress_streams=False, object_stream_mode=pikepdf.ObjectStreamMode.disable)
    same = tmp_path / "same.pdf"
    _layer(loose, same, [], PdfOptions(output_type="pdf"))
    assert same.stat().st_size < loose.stat().st_size
    layered = LayeredPdf(pikepdf.open(loose), PdfOptions(output_type="pdf"))
    layered.add_layer(0, known_result(page))
    plain, out = tmp_path / "plain.pdf", tmp_path / "out.pdf"
    finish(layered.pdf, layered.options, SOFTWARE)
    layered.pdf.save(plain)  # the same document, saved as pikepdf does by default
    layered.save(out, SOFTWARE)
    layered.close()
    assert out.stat().st_size < plain.stat().st_size
