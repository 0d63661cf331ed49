"""ocrmill as OCRmyPDF's engine, side by side with `ocrmill pdf`, OCRmyPDF's RapidOCR plugin
and OCRmyPDF + Tesseract on the same 10-page scan.

    python -m benchmarks.ocrmypdf_plugin [--ocrmypdf PATH] [--rounds 4] [--out PATH.md]

The scan is built here (in a temporary folder) from ten pages of the real-page set's
development half (``benchmarks/real_pages.json``: nine born-digital pages from seven
sources rendered at 300 dpi, in English, French and German, and a scanned brochure),
each embedded losslessly at 300 dpi. The commands run alternately, ``--rounds`` times each,
every one writing a plain PDF (``--output-type pdf``: PDF/A costs Ghostscript's time, the
same for all) with its default jobs (one per CPU) and ``-l eng+fra+deu``:

* ``ocrmypdf --plugin ocrmill.ocrmypdf`` in this Python (ocrmill reads the pages);
* ``ocrmill pdf`` (its own plan of workers);
* ``ocrmypdf --plugin ocrmypdf_rapidocr`` (RapidOCR plugin 1.0.1, the same PP-OCRv6 models:
  RapidOCR reads one language, so it gets ``-l eng``) and plain ``ocrmypdf`` (Tesseract 5),
  both with the OCRmyPDF at ``--ocrmypdf`` (default: on PATH), which must have
  ``ocrmypdf_rapidocr`` installed beside it for the plugin's column.

Reported: wall time (median, and the median of the rounds' ratios against ``ocrmill pdf``),
peak RSS of the process tree, and the text layer's CER per page against the page's
ground truth in reading order (pdfium's text in content order; whitespace runs = one space,
case-sensitive), macro over the pages. A tool that cannot run says why.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import pikepdf
from PIL import Image

from benchmarks.proc_memory import Measured, run_measured
from benchmarks.real_pages import DEFAULT_DATA, load_set, score_text
from benchmarks.reports import machine_line, save_report
from benchmarks.searchable_pdf import layer_texts

ROOT = Path(__file__).resolve().parents[1]
DPI = 300
PAGES = (
    "linn-brochure",
    "pdfjs-tracemonkey-p1",
    "acm-sigconf-p3",
    "revtex-apssamp-p1",
    "mnras-guide-p1",
    "els-dcsample-p1",
    "jacow-a4-p1",
    "nwejm-fr-p3",
    "univie-deutsch-p2",
    "camelot-us001-p1",
)
LANGUAGES = "eng+fra+deu"
OURS = "OCRmyPDF + ocrmill plugin"
OCRMILL = "ocrmill pdf"
RAPID = "OCRmyPDF + RapidOCR plugin"
TESSERACT = "OCRmyPDF + Tesseract"


def build_scan(folder: Path) -> tuple[Path, list[tuple[str, str]]]:
    """The 10-page image-only PDF and each page's (id, ground truth)."""
    from ocrmill.outputs.pdf import image_document

    pages = load_set(DEFAULT_DATA, ids=PAGES)
    pdf = pikepdf.new()
    for i, page in enumerate(pages):
        path = folder / f"page{i}.png"
        with Image.open(page.image) as image:
            image.convert("RGB").save(path, dpi=(DPI, DPI))
        pdf.pages.extend(image_document(path).pages)
    scan = folder / "scan.pdf"
    pdf.save(scan)
    return scan, [(page.id, page.gt) for page in pages]


def _peer(given: str | None) -> tuple[str | None, str]:
    found = given or shutil.which("ocrmypdf")
    if not found:
        return None, "OCRmyPDF not found (pip install ocrmypdf==17.13.0 ocrmypdf-rapidocr==1.0.1)"
    return found, ""


def _peer_python(ocrmypdf: str) -> str:
    """The Python an ``ocrmypdf`` script runs with (its shebang)."""
    first = Path(ocrmypdf).read_text(encoding="utf-8", errors="replace").splitlines()[0]
    return first[2:].strip() if first.startswith("#!") else sys.executable


def _has_module(python: str, module: str) -> bool:
    probe = [python, "-c", f"import {module}"]
    return subprocess.run(probe, capture_output=True).returncode == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ocrmypdf", help="the peers' ocrmypdf executable (default: on PATH)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if not _has_module(sys.executable, "ocrmypdf"):
        raise SystemExit("OCRmyPDF is not installed here: pip install 'ocrmill[ocrmypdf]'")
    peer, why_not = _peer(args.ocrmypdf)
    folder = Path(tempfile.mkdtemp(prefix="ocrmill-ocrmypdf-bench-"))
    try:
        scan, pages = build_scan(folder)
        plain = ["--output-type", "pdf", "--quiet"]
        commands = {
            OURS: [
                sys.executable, "-m", "ocrmypdf", "--plugin", "ocrmill.ocrmypdf",
                "-l", LANGUAGES, *plain, str(scan), str(folder / "ours.pdf"),
            ],
            OCRMILL: [
                sys.executable, "-m", "ocrmill", "pdf", str(scan), str(folder / "ocrmill.pdf"),
                "--output-type", "pdf", "--pdf-dpi", str(DPI), "-q",
            ],
        }  # fmt: skip
        skipped: dict[str, str] = {}
        if peer:
            if _has_module(_peer_python(peer), "ocrmypdf_rapidocr"):
                commands[RAPID] = [
                    peer, "--plugin", "ocrmypdf_rapidocr", "-l", "eng", *plain,
                    str(scan), str(folder / "rapid.pdf"),
                ]  # fmt: skip
            else:
                skipped[RAPID] = f"ocrmypdf_rapidocr is not installed beside {peer}"
            commands[TESSERACT] = [
                peer,
                "-l",
                LANGUAGES,
                *plain,
                str(scan),
                str(folder / "tesseract.pdf"),
            ]
        else:
            skipped[RAPID] = skipped[TESSERACT] = why_not
        outputs = {
            OURS: folder / "ours.pdf",
            OCRMILL: folder / "ocrmill.pdf",
            RAPID: folder / "rapid.pdf",
            TESSERACT: folder / "tesseract.pdf",
        }
        runs: dict[str, list[Measured]] = {name: [] for name in commands}
        for _ in range(args.rounds):
            for name, cmd in commands.items():  # alternating: A B C D A B C D
                runs[name].append(run_measured(cmd, ROOT, ok_codes=(0,)))
        cers = {
            name: [
                score_text(text, gt) * 100
                for text, (_, gt) in zip(layer_texts(outputs[name]), pages)
            ]
            for name in commands
        }
        report = _report(args, commands, runs, cers, pages, skipped)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    save_report(report, "ocrmypdf_plugin", args.out)


def _shown(arg: str) -> str:
    """A command's argument as the report shows it: files by name (temporary files, this
    machine's Pythons), the peers' OCRmyPDF as ``ocrmypdf``."""
    if not arg.startswith("/"):
        return arg
    name = Path(arg).name
    return "python" if name.startswith("python") else name


def _report(args, commands, runs, cers, pages, skipped) -> str:
    names = list(commands)
    base = runs[OCRMILL]
    lines = [
        "# ocrmill as OCRmyPDF's engine: time, memory and text layer",
        "",
        f"Command: `python -m benchmarks.ocrmypdf_plugin --rounds {args.rounds}`",
        "",
        machine_line(),
        "",
        "Ten real pages at 300 dpi (`benchmarks/real_pages.json`, development half: "
        + ", ".join(pid for pid, _ in pages)
        + f"); plain PDF output; {args.rounds} alternating rounds. CER: the text layer as "
        "pdfium extracts it against the page's reading-order ground truth.",
        "",
        "| tool | wall s (median) | ratio to `ocrmill pdf` (median of rounds) "
        "| peak tree RSS MiB (max) | macro text-layer CER % |",
        "|---|---|---|---|---|",
    ]
    for name in names:
        walls = [m.wall_s for m in runs[name]]
        ratios = [m.wall_s / b.wall_s for m, b in zip(runs[name], base)]
        rss = max(m.peak_rss_mib for m in runs[name])
        cer = statistics.mean(cers[name])
        lines.append(
            f"| {name} | {statistics.median(walls):.1f} | {statistics.median(ratios):.2f}x "
            f"| {rss:.0f} | {cer:.2f} |"
        )
    for name, why in skipped.items():
        lines.append(f"| {name} | skipped: {why} | | | |")
    lines += ["", "## Text-layer CER % per page", ""]
    lines.append("| page | " + " | ".join(names) + " |")
    lines.append("|---|" + "---|" * len(names))
    for i, (pid, _) in enumerate(pages):
        lines.append(f"| {pid} | " + " | ".join(f"{cers[n][i]:.2f}" for n in names) + " |")
    lines += ["", "## Commands", ""]
    lines += [f"- {name}: `{' '.join(_shown(c) for c in cmd)}`" for name, cmd in commands.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
