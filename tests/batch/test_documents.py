"""Documents through the run layer: every page of every document is read (PDF pages and
multi-page TIFF pages alike), and a document that cannot be written is that input's failure
record, never the end of the run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pikepdf
import pytest
from PIL import Image, PngImagePlugin

from ocrmill.batch import run
from ocrmill.batch.executors import SerialExecutor
from ocrmill.batch.sources import iter_tasks

from ..conftest import three_page_tiff

ROOT = Path(__file__).resolve().parents[2]
FAKE = "tests.fault.engines:fake_engine"
BOXES = "tests.fault.engines:box_engine"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "ocrmill", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)


def command_png(path: Path, size: tuple[int, int], command: str) -> None:
    """A white 1-bit PNG whose ``command`` text chunk tells the fake engine what to read
    (it never decodes the pixels)."""
    info = PngImagePlugin.PngInfo()
    info.add_text("command", command)
    Image.new("1", size, 1).save(path, pnginfo=info)


def test_a_multi_page_tiff_is_one_task_per_page(tmp_path):
    tiff = tmp_path / "scan.tif"
    three_page_tiff(tiff)
    single = tmp_path / "one.tif"
    Image.new("RGB", (50, 40), (255, 255, 255)).save(single)
    tasks = list(iter_tasks([str(tiff), str(single)]))
    assert [(t.name, t.page, t.pages) for t in tasks] == [
        (str(tiff), 0, 3),
        (str(tiff), 1, 3),
        (str(tiff), 2, 3),
        (str(single), None, 1),
    ]


def test_run_reads_every_page_of_a_tiff(tmp_path):
    tiff = tmp_path / "scan.tif"
    three_page_tiff(tiff)
    got = []
    summary = run([str(tiff)], got.append, executor=SerialExecutor(engine_factory=BOXES))
    assert summary.exit_code == 0
    assert sorted(r.page for r in got) == [0, 1, 2]
    # each page read from its own pixels: the square moves right from page to page
    lefts = [r.lines[0].box[0][0] for r in sorted(got, key=lambda r: r.page)]
    assert lefts == [10.0, 30.0, 50.0]


def test_run_cli_writes_every_page_of_a_tiff_into_its_documents(tmp_path):
    tiff = tmp_path / "scan.tif"
    three_page_tiff(tiff)
    out = tmp_path / "out.jsonl"
    pdfs, hocrs = tmp_path / "pdf", tmp_path / "hocr"
    proc = cli(
        "run", str(tiff), "-o", str(out), "--pdf-dir", str(pdfs), "--hocr-dir", str(hocrs),
        "--engine-factory", BOXES, "--workers", "1", "-q",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["page"] for r in records) == [0, 1, 2]
    (pdf_file,) = pdfs.rglob("*.pdf")
    with pikepdf.open(pdf_file) as pdf:
        assert len(pdf.pages) == 3
    (hocr_file,) = hocrs.rglob("*.hocr")
    assert hocr_file.read_text().count('class="ocr_page"') == 3


@pytest.mark.slow
def test_a_huge_image_among_20_is_made_searchable_or_is_one_failure(tmp_path):
    """Pillow's own cap (179 megapixels) is not ours: a 250-megapixel image under the
    default cap (300 megapixels) becomes a searchable PDF; over --max-pixels, its document
    is one image_too_large record and the other 19 are written."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in range(19):
        command_png(inputs / f"page{i:02d}.png", (200, 100), f"ok:page {i}")
    command_png(inputs / "huge.png", (16_000, 15_625), "ok:huge")  # 250 megapixels
    common = ["--engine-factory", FAKE, "--workers", "1", "-q"]

    out, folder = tmp_path / "a.jsonl", tmp_path / "a"
    proc = cli("run", str(inputs), "-o", str(out), "--pdf-dir", str(folder), *common)
    assert proc.returncode == 0, proc.stderr
    assert len(list(folder.rglob("*.pdf"))) == 20
    with pikepdf.open(next(folder.rglob("huge.png.pdf"))) as pdf:
        image = pdf.pages[0].Resources.XObject.Im0
        assert (int(image.Width), int(image.Height)) == (16_000, 15_625)

    out, folder = tmp_path / "b.jsonl", tmp_path / "b"
    capped = ["--max-pixels", "100000000"]
    proc = cli("run", str(inputs), "-o", str(out), "--pdf-dir", str(folder), *capped, *common)
    assert proc.returncode == 3, proc.stderr
    assert len(list(folder.rglob("*.pdf"))) == 19
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 20  # one record per input: the failure replaces the read
    (failed,) = [r for r in records if not r["ok"]]
    assert failed["input"].endswith("huge.png")
    assert failed["error"]["code"] == "image_too_large"
    assert "100,000,000" in failed["error"]["message"]
