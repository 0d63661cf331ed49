"""`ocrmill run` end to end: real processes, real files, injected faults."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from ..conftest import render_text, write_text_pdf

ROOT = Path(__file__).resolve().parents[2]
FAKE = "tests.fault.engines:fake_engine"


def ocrmill(*args: str) -> list[str]:
    return [sys.executable, "-m", "ocrmill", *args]


def run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(ocrmill(*args), capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def corrupt_files(root: Path) -> list[Path]:
    """20 broken inputs of different kinds."""
    good = root / "_good.jpg"
    render_text("seed", size=30).save(good, quality=90)
    png = root / "_good.png"
    render_text("seed", size=30).save(png)
    out = []
    for i in range(4):
        p = root / f"bad_trunc_{i}.jpg"
        p.write_bytes(good.read_bytes()[: 200 + 50 * i])
        out.append(p)
    for i in range(4):
        p = root / f"bad_trunc_{i}.png"
        p.write_bytes(png.read_bytes()[: 100 + 30 * i])
        out.append(p)
    for i in range(4):
        p = root / f"bad_empty_{i}.png"
        p.write_bytes(b"")
        out.append(p)
    for i in range(4):
        p = root / f"bad_text_{i}.jpg"
        p.write_text("this is not an image\n" * (i + 1))
        out.append(p)
    for i in range(4):
        p = root / f"bad_pdf_{i}.pdf"
        p.write_bytes(b"%PDF-1.4 garbage that is no document " * (i + 1))
        out.append(p)
    good.unlink()
    png.unlink()
    return out


@pytest.mark.slow
def test_200_inputs_with_20_corrupt_gives_exactly_20_errors(tmp_path):
    data = tmp_path / "in"
    data.mkdir()
    lines = ["Alpha 101", "Bravo 202", "Charlie 303", "Delta 404"]
    seeds = []
    for i, text in enumerate(lines):
        p = data / f"seed_{i}.png"
        render_text(text, size=28).save(p)
        seeds.append((p, text))
    expected = {}
    for i in range(180):
        src, text = seeds[i % len(seeds)]
        dst = data / "good" / f"img_{i:03d}.png"
        dst.parent.mkdir(exist_ok=True)
        shutil.copy(src, dst)
        expected[str(dst)] = text
    for src, _ in seeds:
        src.unlink()
    bad = corrupt_files(data)
    out = tmp_path / "out.jsonl"
    proc = run("run", str(data), "-o", str(out), "--workers", "2", "--no-cls", "-q")
    assert proc.returncode == 3, proc.stderr
    recs = records(out)
    assert len(recs) == 200
    assert len({r["input"] for r in recs}) == 200  # exactly once each
    failed = {r["input"]: r["error"]["code"] for r in recs if not r["ok"]}
    assert set(failed) == {str(p) for p in bad}
    assert set(failed.values()) >= {"corrupt_image", "empty_input", "unsupported_format"}
    for r in recs:
        if r["ok"]:
            assert r["text"] == expected[r["input"]], r
    assert "failed" in proc.stderr


def test_interrupt_then_resume_completes_without_duplicates(tmp_path):
    inputs = []
    for i in range(40):
        p = tmp_path / f"t{i:02d}.png"  # bytes are commands for the fake engine
        p.write_bytes(f"slow:0.1:text{i}".encode())
        inputs.append(str(p))
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(inputs) + "\n")
    out = tmp_path / "out.jsonl"
    args = ["run", f"@{listing}", "-o", str(out), "--workers", "2", "--engine-factory", FAKE, "-q"]
    proc = subprocess.Popen(ocrmill(*args), cwd=ROOT, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if out.exists() and len(out.read_text().splitlines()) >= 5:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    first = records(out)
    assert 5 <= len(first) < 40
    assert "--resume" in err
    proc2 = run(*args, "--resume")
    assert proc2.returncode == 0, proc2.stderr
    final = records(out)
    names = Counter(r["input"] for r in final)
    assert sorted(names) == sorted(inputs) and set(names.values()) == {1}
    assert all(r["text"] == f"text{int(Path(r['input']).stem[1:])}" for r in final)


def test_pdf_pages_are_records_and_a_broken_pdf_does_not_stop_the_rest(tmp_path):
    pdfium = pytest.importorskip("pypdfium2")
    pdf_path = tmp_path / "doc.pdf"
    write_text_pdf(pdf_path)
    assert len(pdfium.PdfDocument(str(pdf_path))) == 2
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(pdf_path.read_bytes()[:400])
    out = tmp_path / "out.jsonl"
    proc = run(
        "run",
        str(pdf_path),
        str(broken),
        "-o",
        str(out),
        "--workers",
        "1",
        "--pdf-dpi",
        "150",
        "-q",
    )
    assert proc.returncode == 3, proc.stderr
    recs = records(out)
    by_page = {(r["input"], r["page"]): r for r in recs}
    assert by_page[(str(pdf_path), 0)]["text"] == "First page text"
    assert by_page[(str(pdf_path), 1)]["text"] == "Second page text"
    assert not by_page[(str(broken), None)]["ok"]
    assert len(recs) == 3


def test_doctor_prints_plan_and_reasons():
    proc = run("doctor", "--device", "auto")
    assert proc.returncode == 0, proc.stderr
    assert "plan for device=auto" in proc.stdout
    assert "workers:" in proc.stdout and "CPUs usable" in proc.stdout
    assert "PP-OCRv6_rec_small.onnx" in proc.stdout


def test_resume_reads_a_listed_file_that_was_missing_once_it_is_there(tmp_path):
    present = tmp_path / "here.png"
    present.write_bytes(b"ok:here")
    late = tmp_path / "late.png"
    listing = tmp_path / "list.txt"
    listing.write_text(f"{present}\n{late}\n")
    out = tmp_path / "out.jsonl"
    args = ["run", f"@{listing}", "-o", str(out), "--workers", "1", "--engine-factory", FAKE]
    first = run(*args, "-q")
    assert first.returncode == 3, first.stderr
    assert sorted((r["input"], r["ok"]) for r in records(out)) == [
        (str(present), True),
        (str(late), False),
    ]
    late.write_bytes(b"ok:late")
    second = run(*args, "-q", "--resume")
    assert second.returncode == 0, second.stderr
    final = records(out)
    assert sorted((r["input"], r["text"]) for r in final) == [
        (str(present), "here"),
        (str(late), "late"),
    ]
