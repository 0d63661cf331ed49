"""The text layer of searchable PDFs read by the four common extractors (pdfium, poppler,
pdfminer.six, pdf.js): each gives every page's words as they stand, in reading order, on
upright, turned (90, 180, 270), skewed (both ways) and /Rotate-stored pages."""

from __future__ import annotations

import pikepdf
import pytest
from benchmarks.pdf_extractors import DPI, read_records, score
from benchmarks.rendered_pages import RenderedPage, render_layout, skew, turn

from ocrmill.cli import main
from ocrmill.errors import ExitCode
from ocrmill.outputs.pdf import LayeredPdf, image_document

from .extractors import EXTRACTORS, pages_or_skip
from .known_words import known_result
from .pdfa_check import pdfa_problems

MAX_CER = 0.02
MAX_WORDS_OFF = 0.02  # |extracted words / read words - 1|


def _shown_upright_by_rotate(page: RenderedPage, tmp_path, index: int) -> pikepdf.Pdf:
    """A one-page PDF of ``page`` turned 90 degrees, with /Rotate 90 to show it upright."""
    path = tmp_path / f"stored{index}.png"
    turn(page, 90).image.save(path, dpi=(150, 150))
    pdf = image_document(path)
    pdf.pages[0].obj[pikepdf.Name.Rotate] = 90
    return pdf


def _assert_reads(name: str, path, expected: list[str], labels: list[str]) -> None:
    texts = pages_or_skip(name, path)
    assert len(texts) == len(expected)
    wrong = []
    for label, text, want in zip(labels, texts, expected):
        s = score(text, want)
        if s.cer > MAX_CER or abs(s.words - 1) > MAX_WORDS_OFF:
            wrong.append(f"{label}: CER {s.cer:.1%}, words x{s.words:.2f}: {text[:160]!r}")
    assert not wrong, f"{name} misreads the layer:\n" + "\n".join(wrong)


@pytest.fixture(scope="module")
def known_words_pdf(tmp_path_factory):
    """Pages whose layer is drawn from the rendered words themselves (no OCR): the
    extractors must give exactly the page's lines."""
    tmp_path = tmp_path_factory.mktemp("known")
    columns = render_layout("two_columns", width=1000, size=20, seed=4)
    mixed = render_layout("title_columns_footer", width=1000, size=20, seed=6)
    cases = {
        "upright": columns,
        "turned 90": turn(columns, 90),
        "turned 180": turn(columns, 180),
        "turned 270": turn(columns, 270),
        "skewed +3": skew(mixed, 3),
        "skewed -2": skew(mixed, -2),
        "turned 180, skewed 3": skew(turn(columns, 180), 3),
    }
    pdf = pikepdf.new()
    for i, page in enumerate(cases.values()):
        path = tmp_path / f"page{i}.png"
        page.image.save(path, dpi=(150, 150))
        pdf.pages.extend(image_document(path).pages)
    stored = _shown_upright_by_rotate(columns, tmp_path, 0)
    pdf.pages.extend(stored.pages)
    cases["stored turned, /Rotate 90"] = columns  # shown upright: the upright page's words
    source = tmp_path / "scan.pdf"
    pdf.save(source)
    layered = LayeredPdf(pikepdf.open(source))
    for i, page in enumerate(cases.values()):
        layered.add_layer(i, known_result(page))
    out = tmp_path / "layered.pdf"
    layered.save(out)
    layered.close()
    return out, list(cases), [page.text for page in cases.values()]


@pytest.mark.parametrize("extractor", list(EXTRACTORS))
def test_every_extractor_reads_the_words_as_they_stand(known_words_pdf, extractor):
    path, labels, texts = known_words_pdf
    _assert_reads(extractor, path, texts, labels)


def test_words_keep_their_places_on_turned_and_skewed_pages(known_words_pdf):
    """pdfium's character boxes (what search and selection highlight) sit on the words."""
    from benchmarks.layout import word_accuracy
    from benchmarks.searchable_pdf import layer_words

    path, labels, _ = known_words_pdf
    columns = render_layout("two_columns", width=1000, size=20, seed=4)
    mixed = render_layout("title_columns_footer", width=1000, size=20, seed=6)
    for index, page in [(2, turn(columns, 180)), (4, skew(mixed, 3)), (5, skew(mixed, -2))]:
        assert word_accuracy(layer_words(path, index, dpi=150), page) >= 0.85, labels[index]


@pytest.fixture(scope="module")
def scan_and_read(tmp_path_factory):
    """An image-only PDF of upright, turned, skewed and two-column pages, and `ocrmill read
    --json` of the same pages (at the same dpi: the same pixels), read once for every
    output option."""
    tmp_path = tmp_path_factory.mktemp("ocr")
    columns = render_layout("two_columns", width=1000, size=22, seed=8)
    mixed = render_layout("title_columns_footer", width=1000, size=22, seed=2)
    cases = {
        "upright": columns.image,
        "turned 90": turn(columns, 90).image,
        "turned 180": turn(columns, 180).image,
        "turned 270": turn(columns, 270).image,
        "skewed +3": skew(mixed, 3).image,
        "skewed -2": skew(mixed, -2).image,
    }
    pdf = pikepdf.new()
    for i, image in enumerate(cases.values()):
        path = tmp_path / f"page{i}.png"
        image.save(path, dpi=(DPI, DPI))
        pdf.pages.extend(image_document(path).pages)
    scan = tmp_path / "scan.pdf"
    pdf.save(scan)
    read = [record["text"] for record in read_records(scan)]
    assert len(read) == len(cases) and all(len(text) > 100 for text in read)
    return scan, list(cases), read


# The default is PDF/A-2b (--output-type pdfa); a plain PDF; turned pages shown upright.
OUTPUT_OPTIONS = {
    "default (pdfa)": [],
    "pdf": ["--output-type", "pdf"],
    "rotate-pages": ["--rotate-pages"],
}


@pytest.fixture(scope="module", params=list(OUTPUT_OPTIONS))
def ocrmill_pdf_and_read(request, scan_and_read, tmp_path_factory):
    """`ocrmill pdf` of the scan with one set of output options, and what `ocrmill read`
    gave for its pages."""
    scan, labels, read = scan_and_read
    out = tmp_path_factory.mktemp("pdf") / "searchable.pdf"
    args = ["--pdf-dpi", str(DPI), "--workers", "0", "-q", *OUTPUT_OPTIONS[request.param]]
    assert main(["pdf", str(scan), str(out), *args]) == ExitCode.OK
    return out, labels, read, request.param


@pytest.mark.slow
@pytest.mark.parametrize("extractor", list(EXTRACTORS))
def test_ocrmill_pdf_reads_in_every_extractor_as_ocrmill_read(ocrmill_pdf_and_read, extractor):
    out, labels, read, _ = ocrmill_pdf_and_read
    _assert_reads(extractor, out, read, labels)


@pytest.mark.slow
def test_output_options_shape_the_document(ocrmill_pdf_and_read):
    """PDF/A-2b by default, a plain PDF when asked; --rotate-pages shows each turned page
    upright (/Rotate: the turn read), its content as it was."""
    out, labels, _, option = ocrmill_pdf_and_read
    problems = pdfa_problems(out)
    assert problems == [] if option != "pdf" else "not declared PDF/A-2b" in problems
    with pikepdf.open(out) as pdf:
        rotates = [int(page.obj.get("/Rotate", 0)) for page in pdf.pages]
    turns = [0, 90, 180, 270, 0, 0]
    assert rotates == (turns if option == "rotate-pages" else [0] * len(labels)), labels


def test_pages_sharing_resources_each_get_their_own_layer(tmp_path):
    """Pages that share one (inherited or referenced) resource dictionary: each page's
    resources name its own layer and keep what they held; the shared dictionary is as it was."""
    pages = [render_layout("two_columns", width=800, size=20, seed=k) for k in range(3)]
    pdf = pikepdf.new()
    for k, page in enumerate(pages):
        path = tmp_path / f"p{k}.png"
        page.image.save(path, dpi=(150, 150))
        pdf.pages.extend(image_document(path).pages)
    shared = pdf.make_indirect(pikepdf.Dictionary(XObject=pikepdf.Dictionary()))
    for k, page in enumerate(pdf.pages):  # one dictionary naming every page's image
        for name, image in page.obj.Resources.XObject.items():
            shared.XObject[f"{name}_{k}"] = image
    draws = []
    for k, page in enumerate(pdf.pages):
        (name,) = page.obj.Resources.XObject.keys()
        draws.append(f"{name}_{k}")
        page.obj.Contents.write(
            page.obj.Contents.read_bytes().replace(name.encode(), draws[-1].encode())
        )
        page.obj.Resources = shared
    source = tmp_path / "shared.pdf"
    pdf.save(source)
    layered = LayeredPdf(pikepdf.open(source))
    for k, page in enumerate(pages):
        layered.add_layer(k, known_result(page))
    out = tmp_path / "layered.pdf"
    layered.save(out)
    layered.close()
    with pikepdf.open(out) as done:
        for page in done.pages:
            names = set(page.obj.Resources.XObject.keys())
            layers = {n for n in names if n.startswith("/OcrmillLayer")}
            assert len(layers) == 1 and set(draws) <= names  # its layer; the images kept
    texts = EXTRACTORS["pdfium"](out)
    assert [score(t, p.text).cer for t, p in zip(texts, pages, strict=True)] == [0.0] * 3
