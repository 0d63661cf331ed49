"""Searchable PDFs: `ocrmill pdf` on images and scanned PDFs, the invisible layer, and the
documents left exactly as they were where no layer goes."""

from __future__ import annotations

import io

import numpy as np
import pikepdf
import pypdfium2 as pdfium
import pytest
from PIL import Image

from ocrmill.cli import main
from ocrmill.errors import ExitCode
from ocrmill.outputs.glyphless import font_program
from ocrmill.outputs.pdf import image_document
from ocrmill.outputs.pdf_layer import PixelMap

from ..conftest import render_page

LINES = ["Searchable text layers", "sit on their words", "Invoice 2024-117 total 88.20"]


def page_text(path, index: int = 0) -> str:
    doc = pdfium.PdfDocument(str(path))
    try:
        return doc[index].get_textpage().get_text_range()
    finally:
        doc.close()


def words(text: str) -> list[str]:
    return text.replace("\r", " ").replace("\n", " ").split()


def render(path, index: int = 0, dpi: int = 72) -> np.ndarray:
    doc = pdfium.PdfDocument(str(path))
    try:
        return np.asarray(doc[index].render(scale=dpi / 72).to_pil().convert("L"))
    finally:
        doc.close()


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    """A 3-page scanned PDF (images only) and the text of each page."""
    root = tmp_path_factory.mktemp("scanned")
    texts = [LINES, ["Second page words", "read from pixels"], ["Third page", "last line here"]]
    pages = []
    for i, lines in enumerate(texts):
        path = root / f"p{i}.png"
        render_page(lines, size=30, width=800).save(path, dpi=(150, 150))
        pages.append(path)
    pdf = pikepdf.new()
    for path in pages:
        pdf.pages.extend(image_document(path).pages)
    out = root / "scan.pdf"
    pdf.save(out)
    return out, texts


def test_the_glyphless_font_is_a_truetype_font_of_ours():
    from fontTools.ttLib import TTFont

    font = TTFont(io.BytesIO(font_program()))
    assert font.getGlyphOrder() == [".notdef", "box"]
    assert font["name"].getDebugName(1) == "OcrmillGlyphless"


@pytest.mark.parametrize(
    ("rotate", "pixel", "expected"),
    [
        (0, (0, 0), (10, 110)),
        (90, (0, 0), (10, 20)),
        (180, (0, 0), (210, 20)),
        (270, (0, 0), (210, 110)),
    ],
)
def test_pixels_map_to_the_corner_a_viewer_shows_top_left(rotate, pixel, expected):
    box = (10.0, 20.0, 210.0, 110.0)  # a 200 x 90 pt crop box
    size = (200, 90) if rotate in (0, 180) else (90, 200)
    to_page = PixelMap.for_page(box, rotate, *size)
    assert to_page(*pixel) == pytest.approx(expected)
    opposite = (box[0] + box[2] - expected[0], box[1] + box[3] - expected[1])
    assert to_page(*size) == pytest.approx(opposite)  # the pixel corner across the page


def test_a_jpeg_becomes_a_page_at_its_dpi_with_its_own_bytes(tmp_path, capsys):
    image = tmp_path / "page.jpg"
    render_page(LINES, size=30, width=800).save(image, quality=90, dpi=(200, 200))
    out = tmp_path / "page.pdf"
    assert main(["pdf", str(image), str(out), "--workers", "0", "-q"]) == ExitCode.OK
    with pikepdf.open(out) as pdf:
        (page,) = pdf.pages
        width, height = Image.open(image).size
        assert [float(v) for v in page.mediabox] == pytest.approx(
            [0, 0, width * 72 / 200, height * 72 / 200]
        )
        (xobject,) = page.get_images().values()
        assert xobject.Filter == "/DCTDecode"
        assert xobject.read_raw_bytes() == image.read_bytes()  # passed through, not re-encoded
    assert words(page_text(out)) == words(" ".join(LINES))


def test_a_scanned_pdf_keeps_its_pages_and_gains_an_invisible_layer(scanned, tmp_path):
    source, texts = scanned
    out = tmp_path / "searchable.pdf"
    assert main(["pdf", str(source), str(out), "--workers", "0", "-q"]) == ExitCode.OK
    with pikepdf.open(source) as before, pikepdf.open(out) as after:
        assert len(after.pages) == len(before.pages) == 3
        for old, new in zip(before.pages, after.pages):
            assert list(new.mediabox) == list(old.mediabox)
            old_images = {k: v.read_raw_bytes() for k, v in old.get_images().items()}
            assert {k: v.read_raw_bytes() for k, v in new.get_images().items()} == old_images
    for i, lines in enumerate(texts):
        assert words(page_text(out, i)) == words(" ".join(lines))
        assert np.array_equal(render(out, i), render(source, i))  # the layer never shows
    assert out.stat().st_size <= source.stat().st_size * 1.15 + 100_000


def test_pages_that_carry_text_are_kept_unless_forced(tmp_path, capsys):
    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(300, 200))
    page = pdf.pages[0]
    font = pikepdf.Dictionary(
        Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1, BaseFont=pikepdf.Name.Helvetica
    )
    page.Resources = pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font))
    page.Contents = pdf.make_stream(b"BT /F1 24 Tf 30 100 Td (Born digital) Tj ET")
    source = tmp_path / "digital.pdf"
    pdf.save(source)
    out = tmp_path / "out.pdf"
    assert main(["pdf", str(source), str(out), "--workers", "0"]) == ExitCode.OK
    assert "already carry text" in capsys.readouterr().err
    with pikepdf.open(source) as a, pikepdf.open(out) as b:
        assert b.pages[0].Contents.read_bytes() == a.pages[0].Contents.read_bytes()
    assert page_text(out).strip() == "Born digital"


def test_encrypted_and_corrupt_pdfs_fail_clearly_and_write_nothing(tmp_path, scanned, capsys):
    source, _ = scanned
    locked = tmp_path / "locked.pdf"
    with pikepdf.open(source) as pdf:
        pdf.save(locked, encryption=pikepdf.Encryption(owner="o", user="secret"))
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(source.read_bytes()[:300])
    for bad, words_in_message in ((locked, "encrypted"), (broken, "not a readable PDF")):
        out = tmp_path / f"{bad.stem}.out.pdf"
        assert main(["pdf", str(bad), str(out), "--workers", "0"]) == ExitCode.DOCUMENT_ERROR == 5
        err = capsys.readouterr().err
        assert str(bad) in err and words_in_message in err
        assert not out.exists()
        assert not list(tmp_path.glob(f".{out.name}.*"))  # no temporary file left either


@pytest.mark.parametrize("rotation", [0, 90])
def test_the_layer_puts_each_word_on_its_pixels(tmp_path, rotation):
    from benchmarks.layout import word_accuracy
    from benchmarks.rendered_pages import render_layout, turn
    from benchmarks.searchable_pdf import layer_words

    rendered = render_layout("two_columns", width=1100, size=22, seed=11)
    if rotation:
        rendered = turn(rendered, rotation)
    image = tmp_path / "page.png"
    rendered.image.save(image, dpi=(150, 150))
    out = tmp_path / "page.pdf"
    assert main(["pdf", str(image), str(out), "--workers", "0", "-q"]) == ExitCode.OK
    found = layer_words(out, 0, dpi=150)
    assert word_accuracy(found, rendered) >= 0.9
    # Extraction follows the reading order: the page's lines, column after column.
    assert words(page_text(out)) == words(" ".join(rendered.lines))


def test_a_multi_page_tiff_gives_one_page_per_frame(tmp_path):
    frames = [render_page([f"Frame number {i} of the scan"], size=30, width=700) for i in range(3)]
    tiff = tmp_path / "scan.tif"
    frames[0].save(
        tiff, save_all=True, append_images=frames[1:], compression="tiff_lzw", dpi=(100, 100)
    )
    out = tmp_path / "scan.pdf"
    assert main(["pdf", str(tiff), str(out), "--workers", "0", "-q"]) == ExitCode.OK
    with pikepdf.open(out) as pdf:
        assert len(pdf.pages) == 3
        assert float(pdf.pages[0].mediabox[2]) == pytest.approx(700 * 72 / 100)
    for i in range(3):
        assert words(page_text(out, i)) == words(f"Frame number {i} of the scan")


def test_words_are_separated_as_their_line_is():
    from ocrmill.outputs.pdf_layer import _spaced

    assert _spaced("Total 9.00", ["Total", "9.00"]) == [True, False]
    assert _spaced("谢谢您 THANK YOU", ["谢", "谢", "您", "THANK", "YOU"]) == [
        False,
        False,
        True,
        True,
        False,
    ]
    assert _spaced("odd", ["x", "y"]) == [True, False]
