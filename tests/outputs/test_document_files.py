"""Per-document files from runs (`ocrmill run --pdf-dir/--hocr-dir/--alto-dir/--text-dir`)
and `ocrmill read --format hocr|alto`."""

from __future__ import annotations

import os

import pikepdf
from lxml import etree, html

from ocrmill.batch.files import output_path
from ocrmill.cli import main
from ocrmill.errors import ExitCode

from ..conftest import render_page, write_text_pdf


def test_output_files_mirror_the_input_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert (
        output_path(tmp_path / "out", "scans/a.png", ".hocr") == tmp_path / "out/scans/a.png.hocr"
    )
    assert output_path(tmp_path / "out", "/data/x.pdf", ".pdf") == tmp_path / "out/data/x.pdf.pdf"


def test_run_writes_one_file_per_document_and_resumes(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    os.mkdir("in")
    render_page(["A single image page"], size=30, width=700).save("in/image.png")
    write_text_pdf("in/doc.pdf")
    (tmp_path / "in" / "broken.png").write_bytes(b"not an image")
    args = ["run", "in", "--workers", "0", "-q", "--pdf-dir", "pdf", "--hocr-dir", "hocr"]
    args += ["--alto-dir", "alto", "--text-dir", "text", "-o", "out.jsonl"]
    assert main(args) == ExitCode.SOME_INPUTS_FAILED  # the broken image
    assert (tmp_path / "text/in/doc.pdf.txt").read_text() == "First page text\n\fSecond page text\n"
    assert (tmp_path / "text/in/image.png.txt").read_text() == "A single image page\n"
    hocr = html.fromstring((tmp_path / "hocr/in/doc.pdf.hocr").read_bytes())
    assert len(hocr.xpath('//div[@class="ocr_page"]')) == 2
    alto = etree.fromstring((tmp_path / "alto/in/doc.pdf.xml").read_bytes())
    assert [s.get("CONTENT") for s in alto.iter("{*}String")] == [
        "First",
        "page",
        "text",
        "Second",
        "page",
        "text",
    ]
    with pikepdf.open(tmp_path / "pdf/in/doc.pdf.pdf") as pdf:
        assert len(pdf.pages) == 2
    assert (tmp_path / "pdf/in/image.png.pdf").exists()
    # The broken input gets a failed page in hOCR/ALTO/text and no PDF.
    assert not (tmp_path / "pdf/in/broken.png.pdf").exists()
    assert b"data-error" in (tmp_path / "hocr/in/broken.png.hocr").read_bytes()
    assert not list(tmp_path.rglob(".*.tmp"))
    # Resume reads what some output lacks: the image whose hOCR is gone, and the broken
    # image (it can have no PDF). Outputs that hold a record do not get it twice.
    (tmp_path / "hocr/in/image.png.hocr").unlink()
    jsonl = (tmp_path / "out.jsonl").read_text()
    assert main([*args, "--resume"]) == ExitCode.SOME_INPUTS_FAILED
    assert (tmp_path / "out.jsonl").read_text() == jsonl  # every record was already there
    assert (tmp_path / "hocr/in/image.png.hocr").exists()
    assert "2 read" in capsys.readouterr().err


def test_run_needs_an_output(tmp_path, capsys):
    assert main(["run", str(tmp_path), "-q"]) == ExitCode.USAGE
    assert "-o FILE.jsonl" in capsys.readouterr().err


def test_read_prints_hocr_and_alto_documents(tmp_path, capsys):
    pdf = tmp_path / "doc.pdf"
    write_text_pdf(pdf)
    assert main(["read", str(pdf), "--format", "hocr"]) == ExitCode.OK
    document = html.fromstring(capsys.readouterr().out.encode())
    words = [w.text for w in document.xpath('//span[@class="ocrx_word"]')]
    assert words == ["First", "page", "text", "Second", "page", "text"]
    assert main(["read", str(pdf), "--format", "alto"]) == ExitCode.OK
    root = etree.fromstring(capsys.readouterr().out.encode())
    assert len(list(root.iter("{*}Page"))) == 2
