"""Page layout benchmark: reading order, word boxes and page rotation, ocrmill side by side
with Tesseract 5.

    python -m benchmarks.layout [--parts pages,receipts,upright] [--receipts N]
                                [--labels PATH] [--no-tesseract] [--out PATH.md]

* ``pages``: the tesseract test pages (page-level ground truth in reading order) and
  rendered column pages (``rendered_pages.py``), each upright, skewed by +-3.5 degrees
  (Pillow, bicubic, canvas grown, white fill) and turned by 90, 180 and 270 degrees
  (``np.rot90``, exact). Given-order CER: the record's ``text`` exactly as given, against
  the ground truth in reading order; whitespace runs count as one space, case-sensitive.
  Columns: ocrmill with ``layout.mode=lines, layout.rotation=off`` (plain row order, as
  before the layout work), ocrmill with the defaults (``auto``), Tesseract
  (``tesseract PAGE - -l eng``; for turned pages also ``--psm 1``, its orientation
  detection). Rendered pages also score words: a ground-truth word counts when the
  predicted word that overlaps it most has the same text and IoU >= 0.5 with its glyph box.
* ``receipts``: SROIE receipts upright and turned 90/180/270: given-order CER
  (case-insensitive: the GT is upper-case) and the rotation found; the upright page is
  also read in ``lines`` mode (row order as before).
* ``upright``: every image of the labels file as it is: the rotation found must be 0.

The report goes to ``benchmarks/results/layout_<timestamp>.md`` (a ``.json`` twin holds
the per-page numbers).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from benchmarks import metrics
from benchmarks.eval_docs import DEFAULT_LABELS, RESULTS_DIR, _table, machine_info
from benchmarks.rendered_pages import (
    LAYOUTS,
    TABLE_LAYOUTS,
    RenderedPage,
    polygon_iou,
    render_layout,
    skew,
    turn,
)
from benchmarks.reports import tesseract_version
from ocrmill.models import shipped_layout_model

SKEW = 3.5
TURNS = (90, 180, 270)
VARIANTS = ("upright", f"skew +{SKEW}", f"skew -{SKEW}", "turn 90", "turn 180", "turn 270")
PARTS = ("pages", "receipts", "upright")


def cer(pred: str, gt: str, case_sensitive: bool = True) -> float:
    """Given-order CER: whitespace runs count as one space."""
    return metrics.page_cer(
        metrics.normalize_text(pred, case_sensitive), metrics.normalize_text(gt, case_sensitive)
    ).cer


def variant_image(image: Image.Image, variant: str) -> tuple[np.ndarray, int]:
    """The page in one variant and its rotation (how far the content is turned)."""
    rgb = image.convert("RGB")
    if variant.startswith("skew"):
        degrees = float(variant.split()[1])
        turned = rgb.rotate(degrees, resample=Image.BICUBIC, expand=True, fillcolor=(255,) * 3)
        return np.asarray(turned), 0
    if variant.startswith("turn"):
        rotation = int(variant.split()[1])
        return np.ascontiguousarray(np.rot90(np.asarray(rgb), rotation // 90)), rotation
    return np.asarray(rgb), 0


def rendered_variant(page: RenderedPage, variant: str) -> RenderedPage:
    if variant.startswith("skew"):
        return skew(page, float(variant.split()[1]))
    if variant.startswith("turn"):
        return turn(page, int(variant.split()[1]))
    return page


def word_accuracy(words: list[tuple[str, np.ndarray]], page: RenderedPage) -> float:
    """Share of the page's words found with the right text and a box with IoU >= 0.5."""
    if not page.words:
        return math.nan
    boxes = np.array([b for _, b in words]) if words else np.zeros((0, 4, 2))
    lo, hi = boxes.min(axis=1), boxes.max(axis=1)
    right = 0
    for text, gt in page.words:
        g_lo, g_hi = gt.min(axis=0), gt.max(axis=0)
        near = np.flatnonzero(((lo < g_hi) & (hi > g_lo)).all(axis=1))
        if not len(near):
            continue
        ious = [polygon_iou(boxes[k], gt) for k in near]
        best = int(near[int(np.argmax(ious))])
        right += words[best][0] == text and max(ious) >= 0.5
    return right / len(page.words)


# ---------------------------------------------------------------------------- engines


class Readers:
    """ocrmill in both layout modes, and Tesseract (when installed)."""

    def __init__(self, use_tesseract: bool, tmp: Path) -> None:
        from ocrmill.config import LayoutOptions, load_config
        from ocrmill.engine import Engine

        self.engine = Engine(load_config())
        base = self.engine.config.read
        self.auto = base
        self.lines = _with_layout(base, LayoutOptions(mode="lines", rotation="off"))
        self.tesseract = shutil.which("tesseract") if use_tesseract else None
        self.tmp = tmp

    def ocrmill(self, pixels: np.ndarray, *, lines_mode: bool = False) -> dict[str, Any]:
        opts = self.lines if lines_mode else self.auto
        start = time.perf_counter()
        res = self.engine.read(pixels, options=opts)
        seconds = time.perf_counter() - start
        words = [(w.text, np.array(w.box)) for line in res.lines for w in line.words]
        return {
            "text": res.text,
            "rotation": res.rotation,
            "words": words,
            "seconds": seconds,
            "timings_ms": dict(res.timings_ms),
        }

    def run_tesseract(self, pixels: np.ndarray, psm: int | None = None) -> dict[str, Any] | None:
        if self.tesseract is None:
            return None
        path = self.tmp / "page.png"
        Image.fromarray(pixels).save(path)
        cmd = [self.tesseract, str(path), "-", "-l", "eng"]
        if psm is not None:
            cmd += ["--psm", str(psm)]
        start = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        return {"text": out.stdout, "seconds": time.perf_counter() - start}


def _with_layout(options: Any, layout: Any) -> Any:
    import dataclasses

    return dataclasses.replace(options, layout=layout)


# ---------------------------------------------------------------------------- parts


def load_pages(labels: list[dict[str, Any]], data_root: Path) -> list[tuple[str, Any, str]]:
    """(name, PIL image or RenderedPage, ground-truth text) of the test pages."""
    pages: list[tuple[str, Any, str]] = []
    for rec in labels:
        if rec["level"] == "page":
            text = "\n".join(line["text"] for line in rec["lines"] if line["text"])
            pages.append((Path(rec["image"]).name, Image.open(data_root / rec["image"]), text))
    # A table between paragraphs is read as the page shows it only with a layout model.
    for layout in LAYOUTS + (TABLE_LAYOUTS if shipped_layout_model() else ()):
        page = render_layout(layout)
        pages.append((f"rendered {layout}", page, page.text))
    return pages


def run_pages(readers: Readers, pages: list[tuple[str, Any, str]], log: Callable) -> list[dict]:
    rows = []
    for name, source, gt in pages:
        for variant in VARIANTS:
            if isinstance(source, RenderedPage):
                page = rendered_variant(source, variant)
                pixels, rotation = np.asarray(page.image), page.rotation
            else:
                page = None
                pixels, rotation = variant_image(source, variant)
            auto = readers.ocrmill(pixels)
            before = readers.ocrmill(pixels, lines_mode=True)
            row: dict[str, Any] = {
                "page": name,
                "variant": variant,
                "rotation": rotation,
                "found_rotation": auto["rotation"],
                "cer_lines": cer(before["text"], gt),
                "cer_auto": cer(auto["text"], gt),
                "seconds": auto["seconds"],
                "layout_ms": auto["timings_ms"].get("layout", math.nan),
                "total_ms": auto["timings_ms"].get("total", math.nan),
                "words": word_accuracy(auto["words"], page) if page is not None else math.nan,
            }
            tess = readers.run_tesseract(pixels)
            row["cer_tesseract"] = cer(tess["text"], gt) if tess else math.nan
            osd = readers.run_tesseract(pixels, psm=1) if rotation else None
            row["cer_tesseract_osd"] = cer(osd["text"], gt) if osd else math.nan
            rows.append(row)
            log(
                f"{name} {variant}: lines {100 * row['cer_lines']:.2f} auto "
                f"{100 * row['cer_auto']:.2f} tesseract {100 * row['cer_tesseract']:.2f} "
                f"rotation {row['found_rotation']}/{rotation} words {row['words']:.3f}"
            )
    return rows


def run_receipts(
    readers: Readers, labels: list[dict[str, Any]], data_root: Path, limit: int, log: Callable
) -> list[dict]:
    rows = []
    chosen = [r for r in labels if r["source"] == "sroie"][:limit]
    for rec in chosen:
        gt = "\n".join(line["text"] for line in rec["lines"] if line["text"])
        pixels = np.asarray(Image.open(data_root / rec["image"]).convert("RGB"))
        before = readers.ocrmill(pixels, lines_mode=True)
        row: dict[str, Any] = {
            "page": Path(rec["image"]).name,
            "cer_lines": cer(before["text"], gt, False),
        }
        for rotation in (0, *TURNS):
            res = readers.ocrmill(np.ascontiguousarray(np.rot90(pixels, rotation // 90)))
            row[f"cer_{rotation}"] = cer(res["text"], gt, False)
            row[f"rotation_{rotation}"] = res["rotation"]
        rows.append(row)
        log(
            " ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items())
        )
    return rows


def run_upright(
    readers: Readers, labels: list[dict[str, Any]], data_root: Path, log: Callable
) -> list[dict]:
    rows = []
    for rec in labels:
        pixels = np.asarray(Image.open(data_root / rec["image"]).convert("RGB"))
        res = readers.ocrmill(pixels)
        rows.append(
            {
                "page": rec["image"],
                "source": rec["source"],
                "rotation": res["rotation"],
                "layout_ms": res["timings_ms"].get("layout", math.nan),
                "total_ms": res["timings_ms"].get("total", math.nan),
            }
        )
        if res["rotation"]:
            log(f"FALSE TURN {rec['image']}: rotation {res['rotation']}")
    return rows


# ---------------------------------------------------------------------------- report


def pages_section(rows: list[dict]) -> list[str]:
    out = ["## Pages: given-order CER %, rotation, words", ""]
    out += [
        "CER: the record's `text` as given against the ground truth in reading order "
        "(whitespace runs = one space, case-sensitive). `lines`: ocrmill with "
        "`layout.mode=lines, layout.rotation=off` (row order, as before); `auto`: the "
        "defaults. Tesseract: `tesseract PAGE - -l eng`; `psm 1`: with its orientation "
        "detection (turned pages only). Words: share of the ground-truth words read with "
        "the right text and a box of IoU >= 0.5 (rendered pages only).",
        "",
    ]
    table = []
    for r in rows:
        table.append(
            [
                r["page"],
                r["variant"],
                metrics.pct(r["cer_lines"]),
                metrics.pct(r["cer_auto"]),
                metrics.pct(r["cer_tesseract"]),
                metrics.pct(r["cer_tesseract_osd"]),
                f"{r['found_rotation']} / {r['rotation']}",
                metrics.pct(r["words"]),
                f"{r['seconds']:.2f}",
                f"{r['layout_ms']:.0f}",
            ]
        )
    out += _table(
        "page|variant|ocrmill lines|ocrmill auto|Tesseract|Tesseract psm 1|rotation found / true|"
        "words %|ocrmill s|layout ms",
        table,
    )
    out += ["", "### Summary", ""]
    summary = []
    groups = {
        "UNLV pages (8071, 8087)": lambda r: r["page"].startswith("80"),
        "phototest + eurotext": lambda r: r["page"] in ("phototest.tif", "eurotext.tif"),
        "rendered column pages": lambda r: r["page"].startswith("rendered"),
    }
    for label, pick in groups.items():
        for variant in VARIANTS:
            sel = [r for r in rows if pick(r) and r["variant"] == variant]
            if not sel:
                continue
            summary.append(
                [
                    label,
                    variant,
                    metrics.pct(metrics.nanmean([r["cer_lines"] for r in sel])),
                    metrics.pct(metrics.nanmean([r["cer_auto"] for r in sel])),
                    metrics.pct(metrics.nanmean([r["cer_tesseract"] for r in sel])),
                    metrics.pct(metrics.nanmean([r["words"] for r in sel])),
                    f"{sum(r['found_rotation'] == r['rotation'] for r in sel)}/{len(sel)}",
                ]
            )
    out += _table(
        "pages|variant|mean CER lines %|mean CER auto %|mean CER Tesseract %|words %|"
        "rotation right",
        summary,
    )
    return out


def receipts_section(rows: list[dict]) -> list[str]:
    out = ["## Receipts: upright and turned", ""]
    out += [
        "Given-order CER (case-insensitive; SROIE GT is upper-case) of the record's `text` "
        "against the GT lines in their given order, mean over receipts; rotation right = "
        "the record's `rotation` equals the turn.",
        "",
    ]
    table = [
        [
            "lines mode (row order as before)",
            metrics.pct(metrics.nanmean([r["cer_lines"] for r in rows])),
            "",
        ]
    ]
    for rotation in (0, *TURNS):
        right = sum(r[f"rotation_{rotation}"] == rotation for r in rows)
        table.append(
            [
                f"auto, turned {rotation}",
                metrics.pct(metrics.nanmean([r[f"cer_{rotation}"] for r in rows])),
                f"{right}/{len(rows)}",
            ]
        )
    return out + _table("receipts|mean CER %|rotation right", table)


def upright_section(rows: list[dict]) -> list[str]:
    flips = [r for r in rows if r["rotation"]]
    layout = sum(r["layout_ms"] for r in rows)
    total = sum(r["total_ms"] for r in rows)
    out = ["## Upright images: false turns", ""]
    out.append(
        f"{len(flips)} of {len(rows)} upright images reported a rotation other than 0"
        + (": " + ", ".join(f"{r['page']} ({r['rotation']})" for r in flips) if flips else ".")
    )
    out += [
        "",
        f"Layout stage: {layout:.0f} ms of {total:.0f} ms summed over these images "
        f"({100 * layout / max(total, 1e-9):.2f} % of read time).",
    ]
    return out


def render_report(report: dict[str, Any]) -> str:
    m = report["machine"]
    out = [
        "# Page layout benchmark",
        "",
        f"Command: `{report['command']}`",
        "",
        f"Machine: {m['cpu_count']} CPUs, {m['platform']}, Python {m['python']}, "
        f"ocrmill {m['ocrmill']}; {m['date']}. Tesseract: {report['tesseract']}.",
        "",
    ]
    if "pages" in report:
        out += [*pages_section(report["pages"]), ""]
    if "receipts" in report:
        out += [*receipts_section(report["receipts"]), ""]
    if "upright" in report:
        out += [*upright_section(report["upright"]), ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--receipts", type=int, default=50, help="SROIE receipts to turn")
    parser.add_argument("--labels", type=Path, default=DEFAULT_LABELS)
    parser.add_argument("--no-tesseract", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    parts = [p for p in args.parts.split(",") if p]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise SystemExit(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    from benchmarks.eval_docs import load_labels

    labels = load_labels(args.labels)
    data_root = args.labels.parent.parent

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    report: dict[str, Any] = {
        "command": "python -m benchmarks.layout " + " ".join(argv or sys.argv[1:]),
        "machine": machine_info(),
        "tesseract": "skipped (--no-tesseract)" if args.no_tesseract else tesseract_version(),
    }
    with tempfile.TemporaryDirectory(prefix="ocrmill-layout-") as tmp:
        readers = Readers(not args.no_tesseract, Path(tmp))
        if "pages" in parts:
            report["pages"] = run_pages(readers, load_pages(labels, data_root), log)
        if "receipts" in parts:
            report["receipts"] = run_receipts(readers, labels, data_root, args.receipts, log)
        if "upright" in parts:
            report["upright"] = run_upright(readers, labels, data_root, log)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = args.out or RESULTS_DIR / f"layout_{stamp}.md"
    out.write_text(render_report(report) + "\n", encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
    print(f"saved {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
