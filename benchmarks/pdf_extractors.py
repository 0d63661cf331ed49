"""How the text layer of a searchable PDF reads in the four common extractors (pdfium,
poppler, pdfminer.six, pdf.js), page by page, against `ocrmill read` of the same page.

    python -m benchmarks.pdf_extractors [--ocrmypdf PATH] [--ocrmypdf-args ARGS] [--extra]
                                        [--workers 0] [--keep DIR] [--out PATH.md]

The scanned PDF is built here (in a temporary folder, never in the repository), every page
an image only, embedded losslessly at 200 dpi: Tesseract's phototest page (prose; from
../shared/data/docs/tesseract/phototest.tif, left out when absent) upright and turned 90,
180 and 270 degrees; a rendered two-column page upright and turned 180; a rendered mixed page
(a big title over two columns and a small footer) upright and skewed 3 degrees. `ocrmill
pdf` makes it searchable (`--pdf-dpi 200`, so the layer comes from the same pixels), and
`ocrmill read --json --pdf-dpi 200` gives the reference text of each page. Every page of
the output is extracted with the four extractors (tests/outputs/extractors.py) and scored:
CER against the reference with whitespace runs collapsed to one space, and the words ratio
(extractor's word count / reference's). With `--ocrmypdf PATH` (or `ocrmypdf` on PATH and
`--ocrmypdf auto`), OCRmyPDF runs on the same scan (`--rotate-pages --jobs 2 --sidecar`) and
its layer is scored the same way against its own sidecar text (Tesseract's reading), for
comparison (`--ocrmypdf-args` adds options: its default `--rotate-pages-threshold` of 14 leaves
pages whose orientation Tesseract is less sure of as they stand). The scan is also stored with
the turned pages given the `/Rotate` that shows them upright (as OCRmyPDF's --rotate-pages
leaves them), made searchable and read again, and scored the same way. `--extra` adds pages
skewed the hard ways (clockwise, 20 degrees, turned and skewed). `--keep DIR` keeps the
scans, the outputs and the read records there.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pikepdf
from PIL import Image
from tests.outputs.extractors import EXTRACTORS, ExtractorUnavailable, extractor_versions

from benchmarks import metrics
from benchmarks.eval_docs import machine_info
from benchmarks.rendered_pages import render_layout, skew, turn
from benchmarks.reports import machine_line, save_report

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
PHOTOTEST = DATA / "docs" / "tesseract" / "phototest.tif"
DPI = 200
SKEW_DEGREES = 3.0


@dataclass(frozen=True)
class Page:
    """One page of the scan: what it shows (for the report) and its image."""

    name: str
    kind: str  # the page type the summary groups by
    image: Image.Image


def scan_pages(phototest: Path = PHOTOTEST, extra: bool = False) -> tuple[list[Page], list[str]]:
    """The pages of the scan, and notes on what was left out (phototest when absent). With
    ``extra``, also pages skewed the hard ways: clockwise (a line's end comes down toward
    the next line's start), and turned and skewed."""
    pages: list[Page] = []
    notes: list[str] = []
    if phototest.exists():
        prose = Image.open(phototest).convert("L")
        # Turned counter-clockwise by the angle, as a page scanned turned would be.
        for angle in (0, 90, 180, 270):
            image = prose.rotate(angle, expand=True) if angle else prose
            pages.append(Page(f"phototest (prose) turned {angle}", f"turned {angle}", image))
    else:
        notes.append(f"{phototest} not found: the prose pages (upright, 90, 180, 270) are left out")
    columns = render_layout("two_columns", width=1600, size=24, seed=5)
    pages.append(Page("two columns upright", "turned 0", columns.image))
    pages.append(Page("two columns turned 180", "turned 180", turn(columns, 180).image))
    mixed = render_layout("title_columns_footer", width=1600, size=24, seed=9)
    pages.append(Page("mixed (title, columns, footer) upright", "turned 0", mixed.image))
    pages.append(
        Page(
            f"mixed skewed {SKEW_DEGREES:g} degrees",
            "skewed",
            skew(mixed, SKEW_DEGREES).image,
        )
    )
    if extra:
        narrow = render_layout("narrow_gutter", width=1400, size=22, seed=2)
        pages += [
            Page("mixed skewed -2 degrees (clockwise)", "skewed", skew(mixed, -2).image),
            Page("brochure skewed -1.5 degrees", "skewed", skew(narrow, -1.5).image),
            Page("mixed skewed 20 degrees", "skewed", skew(mixed, 20).image),
            Page(
                "two columns turned 180, skewed 3",
                "turned and skewed",
                skew(turn(columns, 180), 3).image,
            ),
            Page(
                "two columns turned 90, skewed -4",
                "turned and skewed",
                skew(turn(columns, 90), -4).image,
            ),
        ]
    return pages, notes


def stored_upright(scan: Path, records: Sequence[dict], out: Path) -> None:
    """A copy of ``scan`` whose turned pages are stored with the ``/Rotate`` that shows them
    upright (as OCRmyPDF's --rotate-pages leaves them, and as some scanners store pages): a
    page whose read record has a ``rotation`` gets that much clockwise ``/Rotate``."""
    with pikepdf.open(scan) as pdf:
        for page, record in zip(pdf.pages, records):
            if record.get("rotation"):
                page.obj[pikepdf.Name.Rotate] = int(record["rotation"])
        pdf.save(out)


def build_scan(pages: Sequence[Page], folder: Path) -> Path:
    """An image-only PDF of ``pages``, each embedded losslessly at :data:`DPI`."""
    from ocrmill.outputs.pdf import image_document

    pdf = pikepdf.new()
    for i, page in enumerate(pages):
        path = folder / f"page{i}.png"
        page.image.save(path, dpi=(DPI, DPI))
        pdf.pages.extend(image_document(path).pages)
    out = folder / "scan.pdf"
    pdf.save(out)
    return out


def read_records(scan: Path) -> list[dict]:
    """`ocrmill read --json` of every page of ``scan`` at :data:`DPI`, in page order."""
    proc = subprocess.run(
        [sys.executable, "-m", "ocrmill", "read", "--json", "--pdf-dpi", str(DPI), "-q", str(scan)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    records = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    return sorted(records, key=lambda r: r["page"])


def ocrmill_pdf(scan: Path, out: Path, workers: str) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "ocrmill",
            "pdf",
            str(scan),
            str(out),
            "--pdf-dpi",
            str(DPI),
            "--workers",
            workers,
            "-q",
        ],
        check=True,
        cwd=ROOT,
    )


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def ocrmypdf_pdf(
    ocrmypdf: str, scan: Path, out: Path, jobs: int, extra: Sequence[str] = ()
) -> list[str]:
    """OCRmyPDF's searchable PDF of ``scan`` at ``out`` (its sidecar text beside it, one
    page per form feed); returns the sidecar's pages."""
    sidecar = out.with_suffix(".txt")
    subprocess.run(
        [
            ocrmypdf,
            "--rotate-pages",
            "--jobs",
            str(jobs),
            "--quiet",
            *extra,
            "--sidecar",
            str(sidecar),
            str(scan),
            str(out),
        ],
        check=True,
        cwd=ROOT,
    )
    return sidecar.read_text(encoding="utf-8").split("\f")


@dataclass(frozen=True)
class Score:
    """One extractor on one page: CER against the reference (whitespace runs collapsed)
    and the words ratio (extracted words / reference words)."""

    cer: float
    words: float
    read: bool = True  # False: the reference is empty (nothing was read), not scored

    def cell(self) -> str:
        if not self.read:
            return "nothing read"
        return f"{self.cer * 100:.1f} % / {self.words:.2f}"

    @property
    def agrees(self) -> bool:
        """Within 2 % CER and 2 % of the words (or nothing to agree with)."""
        return not self.read or (self.cer <= 0.02 and abs(self.words - 1) <= 0.02)


def score(text: str, reference: str) -> Score:
    """CER of ``text`` against ``reference`` with whitespace runs collapsed, and the words
    ratio."""
    got = metrics.normalize_text(text, True)
    want = metrics.normalize_text(reference, True)
    ratio = len(got.split()) / max(1, len(want.split()))
    return Score(metrics.page_cer(got, want).cer, ratio, bool(want))


def score_pdf(
    path: Path,
    references: Sequence[str],
    extractors: dict[str, Callable[[Path], list[str]]] | None = None,
) -> tuple[dict[str, list[Score]], dict[str, str]]:
    """Every extractor's score of every page of ``path``, and why an extractor that could
    not run did not."""
    scores: dict[str, list[Score]] = {}
    missing: dict[str, str] = {}
    for name, extract in (extractors or EXTRACTORS).items():
        try:
            texts = extract(path)
        except ExtractorUnavailable as exc:
            missing[name] = str(exc)
            continue
        if len(texts) != len(references):
            raise RuntimeError(f"{name} gave {len(texts)} pages of {path}, not {len(references)}")
        scores[name] = [score(t, r) for t, r in zip(texts, references)]
    return scores, missing


def _table(pages: Sequence[Page], scores: dict[str, list[Score]]) -> list[str]:
    names = list(scores)
    lines = [
        "| page | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for i, page in enumerate(pages):
        lines.append(f"| {page.name} | " + " | ".join(scores[n][i].cell() for n in names) + " |")
    return lines


def _summary(pages: Sequence[Page], scores: dict[str, list[Score]]) -> list[str]:
    """Worst CER and the words ratio farthest from 1 per page type and extractor."""
    kinds = list(dict.fromkeys(p.kind for p in pages))
    names = list(scores)
    lines = [
        "| page type | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for kind in kinds:
        at = [i for i, p in enumerate(pages) if p.kind == kind]
        cells = []
        for n in names:
            read = [scores[n][i] for i in at if scores[n][i].read]
            if not read:
                cells.append("nothing read")
                continue
            worst_cer = max(s.cer for s in read)
            worst_words = max((s.words for s in read), key=lambda w: abs(w - 1))
            cells.append(Score(worst_cer, worst_words).cell())
        lines.append(f"| {kind} ({len(at)}) | " + " | ".join(cells) + " |")
    passing = [n for n in names if all(s.agrees for s in scores[n])]
    lines += [
        "",
        "Within 2 % CER and 2 % of the words on every page: "
        + (", ".join(passing) if passing else "none")
        + ".",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ocrmypdf", help="the ocrmypdf executable, or 'auto' for the one on PATH")
    parser.add_argument("--jobs", type=int, default=2, help="OCRmyPDF's --jobs")
    parser.add_argument(
        "--ocrmypdf-args",
        default="",
        help='more OCRmyPDF options (e.g. "--rotate-pages-threshold 2")',
    )
    parser.add_argument(
        "--workers", default="0", help="ocrmill's --workers (default 0: in this process)"
    )
    parser.add_argument(
        "--extra",
        action="store_true",
        help="also pages skewed clockwise, steeply, and turned and skewed",
    )
    parser.add_argument("--keep", type=Path, help="keep the scan and the outputs in this folder")
    parser.add_argument(
        "--rescore",
        type=Path,
        help="score again the outputs a --keep run left in this folder (nothing is run)",
    )
    parser.add_argument("--label", default="", help="a note for the report's title")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    ocrmypdf = shutil.which("ocrmypdf") if args.ocrmypdf == "auto" else args.ocrmypdf
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    folder = args.rescore or args.keep or Path(tempfile.mkdtemp(prefix="ocrmill-extractors-"))
    run = args.rescore is None
    try:
        pages, notes = scan_pages(extra=args.extra)
        scan = build_scan(pages, folder) if run else folder / "scan.pdf"
        records = read_records(scan) if run else _records(folder / "read.jsonl")
        (folder / "read.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        if len(records) != len(pages):
            raise SystemExit(f"{folder} holds {len(records)} pages, not {len(pages)}: --extra?")
        references = [r.get("text", "") for r in records]
        if run:
            ocrmill_pdf(scan, folder / "ocrmill.pdf", args.workers)
        results = {"ocrmill pdf": score_pdf(folder / "ocrmill.pdf", references)}
        if any(r.get("rotation") for r in records):
            upright = folder / "scan-upright.pdf"
            if run:
                stored_upright(scan, records, upright)
                upright_records = read_records(upright)
                (folder / "read-upright.jsonl").write_text(
                    "".join(json.dumps(r) + "\n" for r in upright_records)
                )
                ocrmill_pdf(upright, folder / "ocrmill-upright.pdf", args.workers)
            else:
                upright_records = _records(folder / "read-upright.jsonl")
            results["ocrmill pdf, turned pages stored with /Rotate (shown upright)"] = score_pdf(
                folder / "ocrmill-upright.pdf", [r.get("text", "") for r in upright_records]
            )
        if ocrmypdf or (not run and (folder / "ocrmypdf.pdf").exists()):
            if run and ocrmypdf:
                extra = shlex.split(args.ocrmypdf_args)
                ocrmypdf_pdf(ocrmypdf, scan, folder / "ocrmypdf.pdf", args.jobs, extra)
            sidecar = (folder / "ocrmypdf.txt").read_text(encoding="utf-8").split("\f")
            results["OCRmyPDF + Tesseract"] = score_pdf(
                folder / "ocrmypdf.pdf", sidecar[: len(pages)]
            )
            # Tesseract's reading against ocrmill's: how far apart the two references are.
            notes.append(
                "OCRmyPDF's sidecar against `ocrmill read`, CER per page: "
                + ", ".join(f"{score(s, r).cer * 100:.0f} %" for s, r in zip(sidecar, references))
            )
        report = _report(args, pages, notes, results, "OCRmyPDF + Tesseract" in results)
    finally:
        if not args.keep and run:
            shutil.rmtree(folder, ignore_errors=True)
    save_report(report, "pdf_extractors", args.out)


def _report(args, pages, notes, results, ocrmypdf) -> str:
    lines = [
        "# Searchable PDF text layer in four extractors"
        + (f": {args.label}" if args.label else ""),
        "",
        f"Command: `python -m benchmarks.pdf_extractors {shlex.join(sys.argv[1:])}`",
        "",
        f"{machine_line()} ocrmill {machine_info()['ocrmill']}.",
        "",
        f"Input: {len(pages)} image-only pages at {DPI} dpi. Each cell: CER against the "
        "reference (whitespace runs collapsed to one space) / words ratio (extracted / "
        "reference). Reference: `ocrmill read` of the same page for ocrmill's layer (of "
        "the scan stored upright for the /Rotate section); "
        "OCRmyPDF's own sidecar text (Tesseract's reading) for its layer. Extractors: pdfium "
        "`get_text_range`, poppler `pdftotext -raw`, pdfminer.six `extract_text` (default "
        "LAParams), pdf.js `getTextContent` items joined with a newline at `hasEOL` "
        "(Firefox's find and copy-all text).",
        "",
        "Extractors here: "
        + "; ".join(f"{name}: {version}" for name, version in extractor_versions().items())
        + ".",
    ]
    if not ocrmypdf:
        lines += ["", "OCRmyPDF: not run (pass `--ocrmypdf PATH`)."]
    for note in notes:
        lines += ["", note + "."]
    for tool, (scores, missing) in results.items():
        lines += ["", f"## {tool}", ""]
        for name, why in missing.items():
            lines.append(f"- {name}: not run: {why}")
        if missing:
            lines.append("")
        lines += _table(pages, scores)
        lines += ["", "Worst per page type (CER / words ratio):", ""]
        lines += _summary(pages, scores)
        means = {
            n: statistics.mean(s.cer for s in v if s.read) * 100
            for n, v in scores.items()
            if any(s.read for s in v)
        }
        lines += ["", "Mean CER: " + ", ".join(f"{n} {m:.1f} %" for n, m in means.items()) + "."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
