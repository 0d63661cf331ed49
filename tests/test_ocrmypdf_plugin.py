"""ocrmill as OCRmyPDF's OCR engine: the real OCRmyPDF runs the plugin on image-only PDFs
(upright, turned 90 and 180 degrees, two columns, skewed) and its output reads as
`ocrmill pdf`'s does; --rotate-pages, --deskew and --sidecar work; a language the models
cannot read is refused by name. Needs the extra: pip install 'ocrmill[ocrmypdf]'."""

from __future__ import annotations

import dataclasses
import math
import shutil
import subprocess
import sys
from types import SimpleNamespace

import pikepdf
import pytest
from benchmarks.pdf_extractors import score
from benchmarks.rendered_pages import render_layout, skew, turn

from ocrmill.cli import main
from ocrmill.outputs.pdf import image_document
from ocrmill.results import PageResult, TextBlock, TextLine, Word

from .outputs.extractors import EXTRACTORS, pages_or_skip, pdfium_pages, pdfminer_pages

ocrmypdf = pytest.importorskip(
    "ocrmypdf", reason="OCRmyPDF is not installed (pip install 'ocrmill[ocrmypdf]')"
)

DPI = 200
PLUGIN = "ocrmill.ocrmypdf"


def _scan(tmp_path, images) -> str:
    pdf = pikepdf.new()
    for i, image in enumerate(images):
        path = tmp_path / f"page{i}.png"
        image.save(path, dpi=(DPI, DPI))
        pdf.pages.extend(image_document(path).pages)
    scan = tmp_path / "scan.pdf"
    pdf.save(scan)
    return str(scan)


def _needs_tesseract() -> None:
    if shutil.which("tesseract") is None:
        pytest.skip(
            "OCRmyPDF checks that Tesseract is installed on every run, whichever engine "
            "reads (apt-get install tesseract-ocr)"
        )


def _ocrmypdf(scan: str, out, **kwargs) -> None:
    _needs_tesseract()
    kwargs.setdefault("output_type", "pdf")  # PDF/A needs Ghostscript; not what is tested
    ocrmypdf.ocr(scan, out, plugins=[PLUGIN], progress_bar=False, **kwargs)


def _cer(text: str, truth: str) -> float:
    return score(text, truth).cer * 100


@pytest.fixture(scope="module")
def columns():
    return render_layout("two_columns", width=1000, size=22, seed=8)


@pytest.fixture(scope="module")
def turned_scan(columns, tmp_path_factory):
    """Two-column pages upright, turned 90 and turned 180, and `ocrmill pdf`'s CER of each
    page (pdfium's text) against the page's ground truth."""
    tmp_path = tmp_path_factory.mktemp("turned")
    images = [columns.image, turn(columns, 90).image, turn(columns, 180).image]
    scan = _scan(tmp_path, images)
    ours = tmp_path / "ocrmill.pdf"
    assert main(["pdf", scan, str(ours), "--output-type", "pdf", "--workers", "0", "-q"]) == 0
    return scan, [_cer(text, columns.text) for text in pdfium_pages(ours)]


@pytest.mark.slow
def test_ocrmypdf_with_the_plugin_reads_as_ocrmill_pdf(columns, turned_scan, tmp_path):
    """OCRmyPDF's own renderer, fed the plugin's page trees, on upright and turned pages
    (not turned by OCRmyPDF): the text layer and the sidecar read within 1 point of `ocrmill
    pdf`'s text layer, page by page (the upside-down page in pdfminer.six: pdfium reads the
    words of each upside-down line of OCRmyPDF's renderer backwards; see the next test)."""
    scan, reference = turned_scan
    out, sidecar = tmp_path / "out.pdf", tmp_path / "out.txt"
    _ocrmypdf(scan, out, sidecar=sidecar)
    assert max(reference) < 5, reference  # ocrmill reads these pages (else nothing is shown)
    pdfium = [_cer(text, columns.text) for text in pdfium_pages(out)]
    upside_down = _cer(pdfminer_pages(out)[2], columns.text)
    got = [pdfium[0], pdfium[1], upside_down]
    sidecar_pages = sidecar.read_text(encoding="utf-8").split("\f")
    assert len(sidecar_pages) == 3
    side = [_cer(text, columns.text) for text in sidecar_pages]
    for name, g, s, r in zip(["upright", "turned 90", "turned 180"], got, side, reference):
        assert g <= r + 1.0, (name, g, r)
        assert s <= r + 1.0, (name, s, r)


@pytest.fixture(scope="module")
def sandwich(turned_scan, tmp_path_factory):
    scan, _ = turned_scan
    out = tmp_path_factory.mktemp("sandwich") / "out.pdf"
    _ocrmypdf(scan, out, pdf_renderer="sandwich")
    return out


@pytest.mark.slow
@pytest.mark.parametrize("extractor", list(EXTRACTORS))
def test_the_sandwich_renderer_grafts_ocrmills_own_layer(columns, turned_scan, sandwich, extractor):
    """--pdf-renderer sandwich: OCRmyPDF grafts the layer `ocrmill pdf` writes, which every
    common extractor reads in order on upright and turned pages alike."""
    _, reference = turned_scan
    got = [_cer(text, columns.text) for text in pages_or_skip(extractor, sandwich)]
    assert all(g <= r + 1.0 for g, r in zip(got, reference)), (got, reference)


@pytest.mark.slow
def test_rotate_pages_shows_each_page_upright(columns, turned_scan, tmp_path):
    """--rotate-pages: OCRmyPDF asks the plugin which way each page faces and turns the
    turned ones upright (/Rotate), and their text still reads in order."""
    scan, reference = turned_scan
    out = tmp_path / "out.pdf"
    _ocrmypdf(scan, out, rotate_pages=True)
    with pikepdf.open(out) as pdf:
        rotates = [int(page.obj.get("/Rotate", 0)) % 360 for page in pdf.pages]
    assert rotates == [0, 90, 180]
    got = [_cer(text, columns.text) for text in pdfium_pages(out)]
    assert all(g <= r + 1.0 for g, r in zip(got, reference)), (got, reference)


@pytest.mark.slow
def test_deskew_levels_the_page_image(tmp_path):
    """--deskew: the page image OCRmyPDF puts in the output is turned level by the skew the
    plugin measured (3 degrees in, well under half a degree out)."""
    from ocrmill.engine import Engine

    page = render_layout("title_columns_footer", width=1000, size=22, seed=2)
    scan = _scan(tmp_path, [skew(page, 3).image])
    out = tmp_path / "out.pdf"
    _ocrmypdf(scan, out, deskew=True)
    with pikepdf.open(out) as pdf:
        first = pdf.pages[0]
        images = first.get_images() if hasattr(first, "get_images") else first.images
        (image,) = (pikepdf.PdfImage(im) for im in images.values())
        image.as_pil_image().save(tmp_path / "deskewed.png")
    engine = Engine()
    before = math.degrees(engine.skew(str(tmp_path / "page0.png")))
    after = math.degrees(engine.skew(str(tmp_path / "deskewed.png")))
    assert abs(before) > 2.5 and abs(after) < 0.5, (before, after)
    assert _cer(pdfium_pages(out)[0], page.text) < 5


def test_a_language_the_models_cannot_read_is_refused_by_name(tmp_path):
    from ocrmypdf.exceptions import BadArgsError

    scan = _scan(tmp_path, [render_layout("two_columns", width=600, size=22, seed=1).image])
    with pytest.raises(BadArgsError, match="'rus'"):
        _ocrmypdf(scan, tmp_path / "out.pdf", language=["eng", "rus"])


@pytest.mark.slow
def test_ocr_engine_ocrmill_selects_it_without_the_plugin_option(tmp_path):
    """The entry point: `ocrmypdf --ocr-engine ocrmill` (no --plugin) reads with ocrmill."""
    _needs_tesseract()
    page = render_layout("two_columns", width=800, size=22, seed=3)
    scan = _scan(tmp_path, [page.image])
    out, sidecar = tmp_path / "out.pdf", tmp_path / "out.txt"
    cmd = [sys.executable, "-m", "ocrmypdf", "--ocr-engine", "ocrmill", "--output-type", "pdf"]
    proc = subprocess.run(
        [*cmd, "--sidecar", str(sidecar), "-q", scan, str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert _cer(sidecar.read_text(encoding="utf-8"), page.text) < 5


def test_the_entry_point_claims_only_its_own_name():
    """Installing ocrmill never changes what a plain `ocrmypdf` run reads with; the plugin
    asked for by name takes `auto` too."""
    import ocrmill.ocrmypdf as plugin
    from ocrmill.ocrmypdf import entry
    from ocrmill.ocrmypdf.engine import OcrmillEngine

    auto, ours, tess = (SimpleNamespace(ocr_engine=n) for n in ("auto", "ocrmill", "tesseract"))
    assert entry.get_ocr_engine(auto) is None and entry.get_ocr_engine(tess) is None
    assert isinstance(entry.get_ocr_engine(ours), OcrmillEngine)
    assert isinstance(plugin.get_ocr_engine(auto), OcrmillEngine)
    assert plugin.get_ocr_engine(tess) is None


@pytest.mark.parametrize(
    ("languages", "charset"),
    [
        (["eng"], "latin"),
        (["deu", "fra", "pol"], "latin"),
        (["chi_sim"], "all"),
        (["jpn", "chi_tra"], "all"),
        (["eng", "chi_sim"], "auto"),
    ],
)
def test_languages_choose_the_charset(languages, charset):
    from ocrmill.ocrmypdf.languages import charset_for

    assert charset_for(languages) == charset


@pytest.mark.parametrize("language", ["rus", "kor", "ara", "vie", "ell", "chi_sim_vert"])
def test_languages_the_models_lack_are_named(language):
    from ocrmill.ocrmypdf.languages import UnsupportedLanguage, charset_for

    with pytest.raises(UnsupportedLanguage, match=repr(language)):
        charset_for(["eng", language])


def _result(rotation: int, score: float) -> PageResult:
    """Twelve lines of text, running as a page turned by ``rotation`` shows them."""
    lines = []
    for k in range(12):
        x0, y0, x1, y1 = 100.0, 100.0 + 40 * k, 700.0, 130.0 + 40 * k
        box = ((x0, y0), (x1, y0), (x1, y1), (x0, y1))
        if rotation in (90, 270):
            box = tuple((y, x) for x, y in box)
        words = (Word("words", score, box),)
        lines.append(TextLine("words of a line of text", score, box, words))
    blocks = (TextBlock(lines[0].box, (0,), "header"), TextBlock(lines[1].box, tuple(range(1, 12))))
    return PageResult("p.png", 1000, 1000, tuple(lines), rotation=rotation, blocks=blocks)


def test_orientation_is_ocrmypdfs_clockwise_angle_with_a_confidence_on_its_scale():
    from ocrmill.ocrmypdf.engine import DEFAULT_THRESHOLD, orientation_confidence

    clear = [orientation_confidence(_result(r, 0.98)) for r in (0, 90, 180, 270)]
    assert all(c > DEFAULT_THRESHOLD for c in clear), clear
    assert orientation_confidence(_result(90, 0.5)) < DEFAULT_THRESHOLD  # read doubtfully
    # Lines running across the axis the page was found on: no evidence for it.
    crossed = _result(0, 0.98)
    assert orientation_confidence(dataclasses.replace(crossed, rotation=90)) == 0.0


def test_the_page_tree_has_areas_lines_and_words_in_reading_order():
    from ocrmypdf.hocrtransform import OcrClass

    from ocrmill.ocrmypdf.tree import page_tree

    tree = page_tree(_result(90, 0.98), dpi=300.0, page_number=4)
    assert tree.ocr_class == OcrClass.PAGE and tree.dpi == 300.0 and tree.page_number == 4
    areas = tree.children
    assert [a.ocr_class for a in areas] == [OcrClass.CAREA, OcrClass.CAREA]
    header_lines = areas[0].children[0].children
    assert [line.ocr_class for line in header_lines] == [OcrClass.HEADER]
    body = areas[1].children[0].children
    assert len(body) == 11 and all(line.ocr_class == OcrClass.LINE for line in body)
    assert all(line.textangle == 90 for line in header_lines + body)
    word = body[0].children[0]
    assert word.text == "words" and word.confidence == pytest.approx(0.98)
    assert (word.bbox.left, word.bbox.top) == (140, 100)  # the quad's corners, transposed
