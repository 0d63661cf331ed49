"""`ocrmill pdf`'s options as OCRmyPDF users know them: --pages, --sidecar, '-' for input
and output, --password, --output-type and the metadata options, --redo-ocr; and
password-protected PDFs refused with ``encrypted_pdf`` by `ocrmill read` and `ocrmill run`."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pikepdf
import pypdfium2 as pdfium
import pytest

from ocrmill.cli import main
from ocrmill.errors import ExitCode
from ocrmill.outputs.pdf import image_document

from ..conftest import render_page
from ..outputs.pdfa_check import pdfa_problems

TEXTS = [["Searchable text layers", "sit on their words"], ["Second page words"], ["Third page"]]
FAST = ["--workers", "0", "--pdf-dpi", "150"]


def words(text: str) -> list[str]:
    return text.replace("\r", " ").replace("\n", " ").split()


def page_texts(path) -> list[str]:
    doc = pdfium.PdfDocument(str(path))
    try:
        return [doc[i].get_textpage().get_text_range() for i in range(len(doc))]
    finally:
        doc.close()


@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    """A 3-page image-only PDF, and a copy that opens only with the password 'secret'."""
    root = tmp_path_factory.mktemp("scan")
    pdf = pikepdf.new()
    for i, lines in enumerate(TEXTS):
        path = root / f"p{i}.png"
        render_page(lines, size=30, width=800).save(path, dpi=(150, 150))
        pdf.pages.extend(image_document(path).pages)
    out = root / "scan.pdf"
    pdf.save(out)
    locked = root / "locked.pdf"
    pdf.save(locked, encryption=pikepdf.Encryption(owner="owner", user="secret"))
    return out, locked


def test_pages_reads_only_the_chosen_pages_and_sidecar_has_every_page(scan, tmp_path, monkeypatch):
    import ocrmill.pipeline.pdf as pdf_pages

    source, _ = scan
    rendered = []
    render = pdf_pages.render_pdf_page

    def spy(path, index, **kwargs):
        rendered.append(index)
        return render(path, index, **kwargs)

    monkeypatch.setattr(pdf_pages, "render_pdf_page", spy)
    out, sidecar = tmp_path / "out.pdf", tmp_path / "out.txt"
    args = ["pdf", str(source), str(out), "--pages", "1,3-end", "--sidecar", str(sidecar)]
    assert main([*args, *FAST, "-q"]) == ExitCode.OK
    assert sorted(rendered) == [0, 2]  # page 2 was never rendered
    texts = page_texts(out)
    assert [words(t) for t in texts] == [words(" ".join(TEXTS[0])), [], words(TEXTS[2][0])]
    with pikepdf.open(source) as before, pikepdf.open(out) as after:
        old, new = before.pages[1].obj, after.pages[1].obj
        assert new.Contents.read_bytes() == old.Contents.read_bytes()  # copied untouched
        assert set(new.Resources.XObject.keys()) == set(old.Resources.XObject.keys())
    pages = sidecar.read_text(encoding="utf-8").split("\f")
    assert [words(p) for p in pages] == [words(" ".join(TEXTS[0])), [], words(TEXTS[2][0])]


def test_sidecar_to_stdout_and_its_errors(scan, tmp_path, capsys):
    source, _ = scan
    out = tmp_path / "out.pdf"
    assert main(["pdf", str(source), str(out), "--sidecar", "-", *FAST, "-q"]) == 0
    pages = capsys.readouterr().out.split("\f")
    assert [words(p) for p in pages] == [words(" ".join(lines)) for lines in TEXTS]

    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    for unwritable, problem in ((a_file / "out.txt", "is not a folder"), (tmp_path, "is a folder")):
        assert main(["pdf", str(source), str(out), "--sidecar", str(unwritable), *FAST]) == 2
        err = capsys.readouterr().err
        assert f"--sidecar {unwritable}: " in err and problem in err
    assert main(["pdf", str(source), "-", "--sidecar", "-", *FAST]) == 2
    assert "standard output already carries the PDF" in capsys.readouterr().err


def test_pages_past_the_end_or_malformed_are_usage_errors(scan, tmp_path, capsys):
    source, _ = scan
    out = tmp_path / "out.pdf"
    assert main(["pdf", str(source), str(out), "--pages", "2,9", *FAST]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert f"{source}: --pages 2,9: page 9 is past the end (the document has 3 pages)" in err
    assert not out.exists()
    for spec in ("0", "3-1", "two"):
        with pytest.raises(SystemExit) as exited:
            main(["pdf", str(source), str(out), "--pages", spec])
        assert exited.value.code == 2
        assert f"'{spec}'" in capsys.readouterr().err


def test_stdin_to_stdout_writes_only_the_pdf_to_stdout(tmp_path):
    """A real process: the PDF's bytes alone on stdout, the log on stderr, no file '-'."""
    image = tmp_path / "page.png"
    render_page(TEXTS[0], size=30, width=800).save(image, dpi=(150, 150))
    proc = subprocess.run(
        [sys.executable, "-m", "ocrmill", "pdf", "-", "-", "--workers", "0"],
        input=image.read_bytes(),
        capture_output=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.startswith(b"%PDF-") and proc.stdout.rstrip().endswith(b"%%EOF")
    assert b"<stdout>: 1 page(s) with a text layer" in proc.stderr  # the log went to stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["page.png"]  # no file named '-'
    out = tmp_path / "from_stdout.pdf"
    out.write_bytes(proc.stdout)
    assert words(page_texts(out)[0]) == words(" ".join(TEXTS[0]))


def test_stdin_that_is_neither_pdf_nor_image_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"just some text\n")))
    out = tmp_path / "out.pdf"
    assert main(["pdf", "-", str(out), *FAST]) == ExitCode.DOCUMENT_ERROR
    assert "<stdin>: standard input is neither a PDF nor an image" in capsys.readouterr().err
    assert not out.exists()


def test_password_opens_an_encrypted_pdf_and_the_error_says_how(scan, tmp_path, capsys):
    _, locked = scan
    out = tmp_path / "out.pdf"
    assert main(["pdf", str(locked), str(out), *FAST]) == ExitCode.DOCUMENT_ERROR
    err = capsys.readouterr().err
    assert f"qpdf --decrypt --password=PASSWORD {locked} decrypted.pdf" in err
    assert main(["pdf", str(locked), str(out), "--password", "wrong", *FAST]) == 5
    assert f"{locked}: the PDF is encrypted and --password is not its password" in (
        capsys.readouterr().err
    )
    assert not out.exists()
    assert main(["pdf", str(locked), str(out), "--password", "secret", *FAST, "-q"]) == 0
    with pikepdf.open(out) as pdf:
        assert not pdf.is_encrypted and len(pdf.pages) == 3
    assert [words(t) for t in page_texts(out)] == [words(" ".join(lines)) for lines in TEXTS]


def test_output_type_and_metadata_options(scan, tmp_path):
    source, _ = scan
    default, plain = tmp_path / "default.pdf", tmp_path / "plain.pdf"
    info = ["--title", "Ledger", "--author", "A. Clerk", "--subject", "Accounts"]
    assert main(["pdf", str(source), str(default), *info, "--keywords", "a, b", *FAST, "-q"]) == 0
    assert pdfa_problems(default) == []
    assert main(["pdf", str(source), str(plain), "--output-type", "pdf", *FAST, "-q"]) == 0
    assert "not declared PDF/A-2b" in pdfa_problems(plain)
    from ocrmill.cli.doctor import version

    with pikepdf.open(default) as pdf:
        meta, docinfo = pdf.open_metadata(), pdf.docinfo
        assert str(docinfo.Producer) == meta["pdf:Producer"] == f"ocrmill {version()}"
        assert str(docinfo.Title) == meta["dc:title"] == "Ledger"
        assert str(docinfo.Author) == "A. Clerk" and meta["dc:creator"] == ["A. Clerk"]
        assert str(docinfo.Subject) == meta["dc:description"] == "Accounts"
        assert str(docinfo.Keywords) == meta["pdf:Keywords"] == "a, b"


def test_redo_ocr_replaces_the_earlier_layer(scan, tmp_path, capsys):
    source, _ = scan
    first, kept, redone = tmp_path / "first.pdf", tmp_path / "kept.pdf", tmp_path / "redone.pdf"
    assert main(["pdf", str(source), str(first), *FAST, "-q"]) == 0
    assert main(["pdf", str(first), str(kept), *FAST]) == 0
    assert "3 of 3 pages already carry text" in capsys.readouterr().err
    assert main(["pdf", str(first), str(redone), "--redo-ocr", *FAST, "-q"]) == 0
    assert [words(t) for t in page_texts(redone)] == [words(" ".join(x)) for x in TEXTS]
    with pikepdf.open(redone) as pdf:
        for page in pdf.pages:
            assert sum("Ocrmill" in str(n) for n in page.obj.Resources.XObject) == 1
    with pytest.raises(SystemExit):
        main(["pdf", str(first), str(redone), "--redo-ocr", "--force-ocr"])


@pytest.mark.parametrize("command", ["read", "run"])
def test_read_and_run_refuse_an_encrypted_pdf_with_encrypted_pdf(scan, tmp_path, capsys, command):
    _, locked = scan
    if command == "read":
        code = main(["read", "--json", str(locked)])
        out = capsys.readouterr().out
    else:
        jsonl = tmp_path / "out.jsonl"
        code = main(["run", str(locked), "-o", str(jsonl), "--workers", "0", "-q"])
        out = jsonl.read_text()
    assert code == ExitCode.SOME_INPUTS_FAILED
    (record,) = [json.loads(line) for line in out.splitlines()]
    assert record["error"]["code"] == "encrypted_pdf"
    assert (
        "qpdf --decrypt" in record["error"]["message"] and str(locked) in record["error"]["message"]
    )


def test_redo_ocr_does_not_read_visible_text_again(scan, tmp_path):
    """A page with visible text beside its scanned words: the new layer holds the scanned
    words only (the page is read from a copy without its text), so the visible words are
    found once, not twice."""
    source, _ = scan
    mixed = tmp_path / "mixed.pdf"
    with pikepdf.open(source) as pdf:
        page = pdf.pages[0]
        font = pikepdf.Dictionary(
            Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1, BaseFont=pikepdf.Name.Helvetica
        )
        page.obj.Resources.Font = pikepdf.Dictionary(F1=font)
        page.contents_add(pdf.make_stream(b"BT /F1 28 Tf 40 12 Td (Visible stamp) Tj ET"))
        pdf.save(mixed)
    out = tmp_path / "out.pdf"
    assert main(["pdf", str(mixed), str(out), "--redo-ocr", "--pages", "1", *FAST, "-q"]) == 0
    found = words(page_texts(out)[0])
    assert found.count("Visible") == 1 and found.count("stamp") == 1
    assert set(words(" ".join(TEXTS[0]))) <= set(found)
