"""Huge pages: real receipts composed onto 8K x 8K and 16K x 16K canvases, read by ocrmill
(tiled), ocrmill (downscaled) and RapidOCR (default), each in its own process.

    python -m benchmarks.huge_pages [--sizes 8000,16000] [--modes tile,downscale,rapidocr]

Reports wall time (decode included), peak RSS of the process, lines found and recall of
the placed ground-truth lines: a line counts as read when a predicted line whose centre
lies inside it (grown by half its height) matches its text (case-insensitive, normalized
edit distance <= 0.34). Word recall is the bag-of-words recall over all placed words.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from benchmarks.reports import machine_line, save_report

ROOT = Path(__file__).resolve().parents[1]
LABELS = ROOT.parent / "shared" / "data" / "docs" / "labels.jsonl"


def compose(size: int, out: Path) -> list[dict]:
    """Pack SROIE receipts (native resolution) row by row onto a white canvas."""
    from PIL import Image

    rows = [json.loads(x) for x in LABELS.open()]
    pages = [r for r in rows if r["source"] == "sroie" and max(r["width"], r["height"]) <= 1800]
    canvas = Image.new("RGB", (size, size), (255, 255, 255))
    truth: list[dict] = []
    x = y = 40
    row_h = 0
    i = 0
    while True:
        page = pages[i % len(pages)]
        i += 1
        w, h = page["width"], page["height"]
        if x + w > size - 40:
            x, y, row_h = 40, y + row_h + 60, 0
        if y + h > size - 40:
            break
        with Image.open(LABELS.parent.parent / page["image"]) as img:
            canvas.paste(img.convert("RGB"), (x, y))
        for line in page["lines"]:
            if line["text"] and line["points"]:
                pts = [[px + x, py + y] for px, py in line["points"]]
                truth.append({"text": line["text"], "points": pts})
        x += w + 60
        row_h = max(row_h, h)
    canvas.save(out, compress_level=1)
    return truth


def worker(mode: str, image: str, result: str) -> None:
    t0 = time.perf_counter()
    if mode == "rapidocr":
        from rapidocr import RapidOCR

        out = RapidOCR()(image)
        lines = [
            {"text": t, "box": [list(map(float, p)) for p in b]}
            for t, b in zip(out.txts or (), out.boxes if out.boxes is not None else ())
        ]
    else:
        import dataclasses

        from ocrmill.config import Config, ReadOptions, TileOptions
        from ocrmill.engine import Engine

        opts = dataclasses.replace(ReadOptions(), tile=TileOptions(huge=mode))  # type: ignore[arg-type]
        res = Engine(Config()).read(image, options=opts)
        lines = [{"text": ln.text, "box": [list(p) for p in ln.box]} for ln in res.lines]
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    Path(result).write_text(json.dumps({"wall_s": wall, "peak_rss": peak, "lines": lines}))


def score(truth: list[dict], lines: list[dict]) -> tuple[float, float]:
    import numpy as np
    from rapidfuzz.distance import Levenshtein

    centers = np.array([np.mean(ln["box"], axis=0) for ln in lines]) if lines else np.zeros((0, 2))
    found = 0
    for gt in truth:
        pts = np.array(gt["points"], float)
        x0, y0 = pts.min(axis=0)
        x1, y1 = pts.max(axis=0)
        m = (y1 - y0) / 2
        near = np.flatnonzero(
            (centers[:, 0] >= x0 - m)
            & (centers[:, 0] <= x1 + m)
            & (centers[:, 1] >= y0 - m)
            & (centers[:, 1] <= y1 + m)
        )
        gt_text = gt["text"].casefold()
        if any(
            Levenshtein.normalized_distance(lines[k]["text"].casefold(), gt_text) <= 0.34
            for k in near
        ):
            found += 1
    gt_words = Counter(w for gt in truth for w in gt["text"].casefold().split())
    pred_words = Counter(w for ln in lines for w in ln["text"].casefold().split())
    word_recall = sum((gt_words & pred_words).values()) / max(1, sum(gt_words.values()))
    return found / max(1, len(truth)), word_recall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="8000,16000")
    parser.add_argument("--modes", default="tile,downscale,rapidocr")
    parser.add_argument(
        "--worker", nargs=3, metavar=("MODE", "IMAGE", "RESULT"), help=argparse.SUPPRESS
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    if not LABELS.exists():
        raise SystemExit(f"needs {LABELS}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in [int(s) for s in args.sizes.split(",")]:
            image = Path(tmp) / f"canvas_{size}.png"
            truth = compose(size, image)
            for mode in args.modes.split(","):
                result = Path(tmp) / f"{mode}_{size}.json"
                cmd = [
                    sys.executable,
                    "-m",
                    "benchmarks.huge_pages",
                    "--worker",
                    mode,
                    str(image),
                    str(result),
                ]
                proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
                if proc.returncode != 0:
                    rows.append(
                        (size, mode, len(truth), None, proc.stderr.strip().splitlines()[-1:])
                    )
                    print(rows[-1], file=sys.stderr)
                    continue
                data = json.loads(result.read_text())
                line_recall, word_recall = score(truth, data["lines"])
                rows.append((size, mode, len(truth), data, (line_recall, word_recall)))
                print(
                    size,
                    mode,
                    f"{data['wall_s']:.1f}s",
                    f"{data['peak_rss'] / 2**30:.2f}GiB",
                    f"lines {len(data['lines'])}/{len(truth)}",
                    f"recall {line_recall:.3f} words {word_recall:.3f}",
                    file=sys.stderr,
                )
            image.unlink()
    out = [
        "# Huge pages: tiled detection vs downscaling",
        "",
        f"Command: `python -m benchmarks.huge_pages {' '.join(sys.argv[1:])}`",
        machine_line(),
        "Canvas: SROIE receipts (<= 1800 px) pasted at native resolution, row by row, onto a white square.",
        "",
        "| canvas | engine | GT lines | lines found | line recall | word recall | wall s | peak RSS GiB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    names = {
        "tile": "ocrmill (tile)",
        "downscale": "ocrmill (downscale)",
        "rapidocr": "RapidOCR default",
    }
    for size, mode, n, data, extra in rows:
        if data is None:
            out.append(f"| {size}² | {names.get(mode, mode)} | {n} | failed: {extra} | | | | |")
            continue
        lr, wr = extra
        out.append(
            f"| {size}² | {names.get(mode, mode)} | {n} | {len(data['lines'])} | {lr:.3f} | {wr:.3f} | {data['wall_s']:.1f} | {data['peak_rss'] / 2**30:.2f} |"
        )
    save_report("\n".join(out) + "\n", "huge_pages", args.out)


if __name__ == "__main__":
    main()
