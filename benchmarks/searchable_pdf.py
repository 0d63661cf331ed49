"""`ocrmill pdf` side by side with OCRmyPDF + Tesseract on the same scanned PDF.

    python -m benchmarks.searchable_pdf [--labels ../shared/data/docs/labels.jsonl]
                                        [--ocrmypdf PATH] [--rounds 2] [--jobs 2] [--workers auto]
                                        [--ocrmill-args "--charset latin"] [--memory]
                                        [--out PATH.md]

The scanned PDF is built here (in a temporary folder, never in the repository) from four
pages, each embedded losslessly at 300 dpi: a magazine page with columns (UNLV 8071), a
rendered report page (a title over two columns and a footer; word boxes known), a receipt
(SROIE), and eurotext.tif turned by 90 degrees. The tools run alternately, `--rounds` times
each: OCRmyPDF with `--jobs` and `--rotate-pages` (Tesseract's page orientation), ocrmill
with `--workers` (default `auto`: its own plan) and `--ocrmill-args` (engine options, given
to `ocrmill read` too), once as it writes by default (PDF/A-2b) and, for the 4-page scan,
once with `--output-type pdf`. Reported: wall time (median, and the median of the rounds' ratios),
peak RSS of the process tree, output size,
text-layer CER per page against the ground truth (pdfium's extraction in content order),
`ocrmill read`'s own CER for each page, and the share of the rendered page's words whose
text-layer box (pdfium's character boxes joined) has IoU >= 0.5 with the glyph box.
`--memory` also runs `ocrmill pdf` on 5- and 500-page PDFs of a small page and reports the
peak RSS of each. `--document real-pages` reads a dense document instead: the `--real-count`
English pages of the real-page set (`benchmarks/real_pages.py`, built with its `--build`)
with the most ground-truth text, in the set's order, each embedded losslessly at 300 dpi;
their CER is against the set's reading-order ground truth. `--document turned-brochure`
reads six copies of one dense scanned page of that set (a two-column product brochure, ~700
words): upright, turned by 90, 180 and 270 degrees, and skewed by +3 and -3 degrees, which
is what a document fed through a scanner in every orientation costs. OCRmyPDF is found on PATH or at `--ocrmypdf`; without it, its columns
say why.
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
from pathlib import Path

import numpy as np
import pikepdf
import pypdfium2 as pdfium
from PIL import Image

from benchmarks.eval_docs import DEFAULT_LABELS, machine_info
from benchmarks.layout import cer, word_accuracy
from benchmarks.proc_memory import run_measured
from benchmarks.real_pages import DEFAULT_DATA as REAL_PAGES_DATA
from benchmarks.rendered_pages import render_layout
from benchmarks.reports import machine_line, save_report

ROOT = Path(__file__).resolve().parents[1]
DPI = 300
PLAIN = "ocrmill pdf --output-type pdf"


def _labels(path: Path) -> dict[str, dict]:
    return {json.loads(line)["image"]: json.loads(line) for line in path.read_text().splitlines()}


def _gt_text(label: dict) -> str:
    return "\n".join(line["text"] for line in label["lines"] if line.get("text"))


def build_scan(labels_path: Path, folder: Path) -> tuple[Path, list[dict]]:
    """The 4-page scanned PDF and, per page, its name, ground truth and word boxes."""
    labels = _labels(labels_path)
    data = labels_path.parent.parent
    report = render_layout("title_columns_footer", width=2400, size=40, seed=7)
    euro = Image.open(data / "docs/tesseract/eurotext.tif").convert("RGB")
    euro_turned = Image.fromarray(np.ascontiguousarray(np.rot90(np.asarray(euro), 1)))
    pages = [
        (
            "magazine (UNLV 8071, columns)",
            Image.open(data / "docs/tesseract/8071_093.3B.tif"),
            _gt_text(labels["docs/tesseract/8071_093.3B.tif"]),
            True,
            None,
        ),
        ("rendered report (title, columns, footer)", report.image, report.text, True, report),
        (
            "receipt (SROIE 000)",
            Image.open(data / "docs/sroie/sroie_train_000.jpg"),
            _gt_text(labels["docs/sroie/sroie_train_000.jpg"]),
            False,
            None,
        ),
        (
            "eurotext turned 90",
            euro_turned,
            _gt_text(labels["docs/tesseract/eurotext.tif"]),
            True,
            None,
        ),
    ]
    info = [
        {"name": name, "gt": gt, "case_sensitive": case_sensitive, "rendered": rendered}
        for name, _, gt, case_sensitive, rendered in pages
    ]
    return scanned_pdf([image for _, image, *_ in pages], folder / "scan.pdf"), info


def scanned_pdf(images: list[Image.Image], out: Path) -> Path:
    """``out``: one page per image, each embedded losslessly at ``DPI`` (as PNG files
    beside it)."""
    from ocrmill.outputs.pdf import image_document

    pdf = pikepdf.new()
    for i, image in enumerate(images):
        path = out.with_name(f"{out.stem}-{i}.png")
        image.save(path, dpi=(DPI, DPI))
        pdf.pages.extend(image_document(path).pages)
    pdf.save(out)
    return out


BROCHURE = "linn-brochure"
BROCHURE_VARIANTS = ("upright", "turn 90", "turn 180", "turn 270", "skew +3", "skew -3")


def build_turned_brochure(folder: Path, data_dir: Path) -> tuple[Path, list[dict]]:
    """A scanned PDF of the real-page set's brochure in ``BROCHURE_VARIANTS`` and, per page,
    its name and ground truth (the same text on every page)."""
    from benchmarks.layout import variant_image
    from benchmarks.real_pages import load_set

    pages = load_set(data_dir, ids=[BROCHURE])
    if not pages:
        raise SystemExit(f"{BROCHURE} not in {data_dir} (python -m benchmarks.real_pages --build)")
    image = Image.open(pages[0].image)
    images = [Image.fromarray(variant_image(image, v)[0]) for v in BROCHURE_VARIANTS]
    info = [
        {"name": f"{BROCHURE} {v}", "gt": pages[0].gt, "case_sensitive": True, "rendered": None}
        for v in BROCHURE_VARIANTS
    ]
    return scanned_pdf(images, folder / "turned-brochure.pdf"), info


def build_real_pages(folder: Path, count: int, data_dir: Path) -> tuple[Path, list[dict]]:
    """A scanned PDF of the ``count`` English real pages with the most ground-truth text
    (both halves of the set: this measures speed, nothing is tuned on it) and, per page,
    its name and ground truth."""
    from benchmarks.real_pages import load_set

    english = [p for p in load_set(data_dir) if p.lang == "en"]
    if len(english) < count:
        raise SystemExit(f"only {len(english)} English real pages in {data_dir}, {count} asked")
    dense = {p.id for p in sorted(english, key=lambda p: len(p.gt), reverse=True)[:count]}
    chosen = [p for p in english if p.id in dense]  # in the set's order
    info = [
        {"name": f"{p.id} ({p.split})", "gt": p.gt, "case_sensitive": True, "rendered": None}
        for p in chosen
    ]
    images = [Image.open(p.image) for p in chosen]
    return scanned_pdf(images, folder / "real-pages.pdf"), info


def layer_texts(path: Path) -> list[str]:
    doc = pdfium.PdfDocument(str(path))
    try:
        return [doc[i].get_textpage().get_text_range() for i in range(len(doc))]
    finally:
        doc.close()


def layer_words(path: Path, index: int, dpi: float) -> list[tuple[str, np.ndarray]]:
    """Words of a page's text layer with boxes in the page image's pixels."""
    doc = pdfium.PdfDocument(str(path))
    try:
        page = doc[index]
        height = page.get_height()
        textpage = page.get_textpage()
        words: list[tuple[str, np.ndarray]] = []
        chars: list[str] = []
        boxes: list[tuple[float, ...]] = []
        for i in range(textpage.count_chars() + 1):
            char = textpage.get_text_range(i, 1) if i < textpage.count_chars() else " "
            if char and not char.isspace():
                chars.append(char)
                boxes.append(textpage.get_charbox(i, loose=True))
                continue
            if chars:
                x0, x1 = min(b[0] for b in boxes), max(b[2] for b in boxes)
                y0, y1 = height - max(b[3] for b in boxes), height - min(b[1] for b in boxes)
                quad = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]) * dpi / 72
                words.append(("".join(chars), quad))
            chars, boxes = [], []
        return words
    finally:
        doc.close()


def read_texts(scan: Path, extra: list[str]) -> list[str]:
    """What `ocrmill read` gives for each page (the reference for the layer's CER)."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ocrmill",
            "read",
            "--json",
            "--pdf-dpi",
            str(DPI),
            *extra,
            str(scan),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    records = sorted(
        (json.loads(line) for line in proc.stdout.splitlines()), key=lambda r: r["page"]
    )
    return [r.get("text", "") for r in records]


def _find_ocrmypdf(given: str | None) -> tuple[list[str] | None, str]:
    if given:
        return [given], ""
    found = shutil.which("ocrmypdf")
    if found:
        return [found], ""
    return (
        None,
        "OCRmyPDF not found (pip install ocrmypdf==17.13.0 and apt-get install tesseract-ocr ghostscript; or pass --ocrmypdf)",
    )


def memory_runs(folder: Path) -> list[tuple[int, float, float]]:
    """(pages, wall s, peak tree RSS MiB) of `ocrmill pdf` on 5- and 500-page PDFs."""
    from ocrmill.outputs.pdf import image_document

    small = render_layout("two_columns", width=900, size=22, seed=2).image
    page_png = folder / "small.png"
    small.save(page_png, dpi=(150, 150))
    one = image_document(page_png)
    out = []
    for count in (5, 500):
        pdf = pikepdf.new()
        for _ in range(count):
            pdf.pages.extend(one.pages)
        path = folder / f"pages{count}.pdf"
        pdf.save(path)
        m = run_measured(
            [
                sys.executable,
                "-m",
                "ocrmill",
                "pdf",
                str(path),
                str(folder / f"out{count}.pdf"),
                "-q",
            ],
            ROOT,
        )
        out.append((count, m.wall_s, m.peak_rss_mib))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=Path, default=DEFAULT_LABELS)
    parser.add_argument("--ocrmypdf", help="the ocrmypdf executable (default: on PATH)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=2, help="OCRmyPDF's --jobs")
    parser.add_argument(
        "--workers", default="auto", help="ocrmill's --workers (default: its own plan)"
    )
    parser.add_argument(
        "--ocrmill-args",
        default="",
        help='engine options for `ocrmill pdf` and `ocrmill read` (e.g. "--charset latin")',
    )
    parser.add_argument("--memory", action="store_true", help="also 5 vs 500 pages")
    parser.add_argument(
        "--document",
        choices=("four-pages", "real-pages", "turned-brochure"),
        default="four-pages",
        help="the 4-page scan (default), a dense document of real pages, or one dense page "
        "in six orientations",
    )
    parser.add_argument("--real-count", type=int, default=20, help="pages of --document real-pages")
    parser.add_argument(
        "--real-data",
        type=Path,
        default=REAL_PAGES_DATA,
        help="the real-page set's built pages (python -m benchmarks.real_pages --build)",
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if not args.labels.exists():
        raise SystemExit(f"labels not found: {args.labels} (needs ../shared/data)")
    ocrmypdf, why_not = _find_ocrmypdf(args.ocrmypdf)
    folder = Path(tempfile.mkdtemp(prefix="ocrmill-pdf-bench-"))
    try:
        if args.document == "real-pages":
            scan, pages = build_real_pages(folder, args.real_count, args.real_data)
        elif args.document == "turned-brochure":
            scan, pages = build_turned_brochure(folder, args.real_data)
        else:
            scan, pages = build_scan(args.labels, folder)
        extra = shlex.split(args.ocrmill_args)
        ocrmill = [sys.executable, "-m", "ocrmill", "pdf", str(scan)]
        options = ["--workers", str(args.workers), "--pdf-dpi", str(DPI), "-q", *extra]
        commands = {"ocrmill pdf": [*ocrmill, str(folder / "ocrmill.pdf"), *options]}
        if args.document == "four-pages":  # a plain PDF beside the default PDF/A-2b
            plain = [*ocrmill, str(folder / "plain.pdf"), *options, "--output-type", "pdf"]
            commands[PLAIN] = plain
        if ocrmypdf:
            commands["OCRmyPDF + Tesseract"] = [
                *ocrmypdf,
                "--jobs",
                str(args.jobs),
                "--rotate-pages",
                "--quiet",
                str(scan),
                str(folder / "ocrmypdf.pdf"),
            ]
        runs: dict[str, list] = {name: [] for name in commands}
        for _ in range(args.rounds):
            for name, cmd in commands.items():  # alternating: A B A B
                runs[name].append(run_measured(cmd, ROOT, ok_codes=(0,)))
        reference = read_texts(scan, extra)
        outputs = {
            "ocrmill pdf": folder / "ocrmill.pdf",
            PLAIN: folder / "plain.pdf",
            "OCRmyPDF + Tesseract": folder / "ocrmypdf.pdf",
        }
        report = _report(args, scan, pages, commands, runs, outputs, reference, why_not)
        if args.memory:
            report += _memory_section(memory_runs(folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    save_report(report, "searchable_pdf", args.out)


def _machine() -> str:
    """One line: the machine (CPU model and vector flags) and ocrmill's version."""
    return f"{machine_line()} ocrmill {machine_info()['ocrmill']}."


def _report(args, scan, pages, commands, runs, outputs, reference, why_not) -> str:
    lines = [
        "# Searchable PDF: `ocrmill pdf` vs OCRmyPDF + Tesseract",
        "",
        f"Command: `python -m benchmarks.searchable_pdf {' '.join(sys.argv[1:])}`",
        "",
        _machine(),
        "",
        f"Input: {len(pages)} scanned pages at {DPI} dpi, {scan.stat().st_size / 1024:.0f} KiB. "
        f"{args.rounds} alternating rounds; OCRmyPDF --jobs {args.jobs}, ocrmill --workers "
        f"{args.workers}{' ' + args.ocrmill_args if args.ocrmill_args else ''}.",
        "",
        "| tool | wall s (median) | rounds | peak RSS MiB | output KiB | growth |",
        "|---|---|---|---|---|---|",
    ]
    size_in = scan.stat().st_size
    for name, measured in runs.items():
        walls = [m.wall_s for m in measured]
        size = outputs[name].stat().st_size if outputs[name].exists() else 0
        lines.append(
            f"| {name} | {statistics.median(walls):.1f} | {', '.join(f'{w:.1f}' for w in walls)} | "
            f"{max(m.peak_rss_mib for m in measured):.0f} | {size / 1024:.0f} | "
            f"{(size - size_in) / size_in * 100:+.1f} % |"
        )
    if why_not:
        lines.append(f"| OCRmyPDF + Tesseract | skipped: {why_not} | | | | |")
    else:
        ratios = [
            a.wall_s / b.wall_s for a, b in zip(runs["ocrmill pdf"], runs["OCRmyPDF + Tesseract"])
        ]
        lines += [
            "",
            f"Wall time ocrmill / OCRmyPDF, round by round: "
            f"{', '.join(f'{r:.2f}' for r in ratios)}; median {statistics.median(ratios):.2f}.",
        ]
    if PLAIN in runs:
        pdfa = [a.wall_s / b.wall_s for a, b in zip(runs["ocrmill pdf"], runs[PLAIN])]
        lines += [
            "",
            f"Wall time PDF/A-2b (default) / `--output-type pdf`, round by round: "
            f"{', '.join(f'{r:.3f}' for r in pdfa)}; median {statistics.median(pdfa):.3f}.",
        ]
    lines += [
        "",
        "Text-layer CER per page (pdfium's extraction in content order, against the ground truth):",
        "",
    ]
    names = [n for n in outputs if outputs[n].exists()]
    lines.append("| page | `ocrmill read` | " + " | ".join(names) + " |")
    lines.append("|---|---|" + "---|" * len(names))
    texts = {n: layer_texts(outputs[n]) for n in names}
    means: dict[str, list[float]] = {n: [] for n in names}
    for i, page in enumerate(pages):
        cs = page["case_sensitive"]
        row = f"| {page['name']} | {cer(reference[i], page['gt'], cs) * 100:.1f} % |"
        for n in names:
            value = cer(texts[n][i], page["gt"], cs) * 100
            means[n].append(value)
            row += f" {value:.1f} % |"
        lines.append(row)
    lines.append(
        "| mean | | " + " | ".join(f"{statistics.mean(means[n]):.1f} %" for n in names) + " |"
    )
    rendered_index = next((i for i, p in enumerate(pages) if p["rendered"] is not None), None)
    if rendered_index is not None:
        lines += [
            "",
            "Word placement on the rendered page (words with the right text and IoU >= 0.5):",
            "",
        ]
        for n in names:
            accuracy = word_accuracy(
                layer_words(outputs[n], rendered_index, DPI), pages[rendered_index]["rendered"]
            )
            lines.append(f"- {n}: {accuracy * 100:.1f} %")
    return "\n".join(lines) + "\n"


def _memory_section(rows: list[tuple[int, float, float]]) -> str:
    lines = [
        "",
        "Memory of `ocrmill pdf` by document length (a small two-column page repeated):",
        "",
        "| pages | wall s | peak RSS of the process tree MiB |",
        "|---|---|---|",
    ]
    lines += [f"| {n} | {wall:.1f} | {rss:.0f} |" for n, wall, rss in rows]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
