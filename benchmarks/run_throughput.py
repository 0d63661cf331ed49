"""Whole-command throughput: ``ocrmill run @list -o out.jsonl`` (start-up included) against
RapidOCR's per-image loop in one warm process, on the same images, in alternating rounds.

    python -m benchmarks.run_throughput [--labels ../shared/data/docs/labels.jsonl]
                                        [--sets 30,all] [--rounds 4] [--limit N]
                                        [--ocrmill-args "--workers 2"] [--out PATH.md]

Sets: ``30`` is the first 15 SROIE and the first 15 ICDAR 2015 images in the labels file's
order (then sorted by path); ``all`` is every image. Each round runs ocrmill, then RapidOCR, each as its
own process tree, one after another (A B A B ...). Peak RSS is the peak of the *sum* over
a process and all its children (sampled every 50 ms with psutil), so a pool of workers is
charged for every worker. RapidOCR's images/s counts its loop alone, after model loading
and one warm-up image (the comparison that favours RapidOCR); ocrmill's counts the whole
command. Page CER (macro, case-insensitive, reading order as in ``eval_docs``) and
per-stage milliseconds per image come from the first round's outputs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import metrics
from benchmarks.eval_docs import gt_regions, load_labels
from benchmarks.proc_memory import run_measured
from benchmarks.reports import machine_line, save_report

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LABELS = ROOT.parent / "shared" / "data" / "docs" / "labels.jsonl"
STAGES_OCRMILL = ("decode", "detect", "crop", "classify", "recognize", "layout")
STAGES_RAPID = ("det", "cls", "rec")

RAPID_LOOP = """
import json, sys, time
t0 = time.perf_counter()
from benchmarks.eval_docs import _forbid_rapidocr_downloads, _load_rapidocr_models
_forbid_rapidocr_downloads()
from rapidocr import RapidOCR
engine = RapidOCR()
_load_rapidocr_models(engine)
paths = [line.strip() for line in open(sys.argv[1]) if line.strip()]
engine(paths[0])  # warm-up
t1 = time.perf_counter()
with open(sys.argv[2], "w") as out:
    for p in paths:
        r = engine(p)
        lines = [
            {"text": str(t), "box": [[float(x), float(y)] for x, y in b]}
            for t, b in zip(r.txts or (), r.boxes if r.boxes is not None else ())
        ]
        el = [float(v) * 1000 if isinstance(v, float) else 0.0 for v in r.elapse_list]
        out.write(json.dumps({"input": p, "lines": lines, "stages_ms": el}) + "\\n")
t2 = time.perf_counter()
print(json.dumps({"startup_s": t1 - t0, "loop_s": t2 - t1}))
"""


def pick_set(labels: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    if name == "all":
        return labels
    if name == "30":
        by_source: dict[str, list[dict[str, Any]]] = {}
        for rec in labels:
            by_source.setdefault(rec["source"], []).append(rec)
        # The first 15 of each source in the labels file's order (ICDAR img_1 to img_15),
        # then sorted by path.
        chosen = [
            rec for source in ("sroie", "icdar2015") for rec in by_source.get(source, [])[:15]
        ]
        return sorted(chosen, key=lambda r: r["image"])
    raise SystemExit(f"unknown set {name!r}: use 30 or all")


def page_cer(labels: list[dict[str, Any]], data_root: Path, preds: dict[str, list[Any]]) -> float:
    results = []
    for rec in labels:
        lines = preds.get(str(data_root / rec["image"]), [])
        regions = [metrics.Region.make(p["text"], p["box"]) for p in lines]
        results.append(metrics.score_page(regions, gt_regions(rec), rec["case_sensitive"]).cer)
    return metrics.macro_cer(results)


def ocrmill_outputs(path: Path) -> tuple[dict[str, list[Any]], dict[str, float], int]:
    """Predictions by input path, mean stage ms per image, and the count of ok records."""
    preds: dict[str, list[Any]] = {}
    sums = dict.fromkeys(STAGES_OCRMILL, 0.0)
    ok = 0
    records = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    for rec in records:
        if not rec.get("ok"):
            continue
        ok += 1
        preds[rec["input"]] = [{"text": ln["text"], "box": ln["box"]} for ln in rec["lines"]]
        for stage in STAGES_OCRMILL:
            sums[stage] += rec.get("timings_ms", {}).get(stage, 0.0)
    return preds, {k: v / max(1, ok) for k, v in sums.items()}, ok


def rapid_outputs(path: Path) -> tuple[dict[str, list[Any]], dict[str, float]]:
    preds: dict[str, list[Any]] = {}
    sums = dict.fromkeys(STAGES_RAPID, 0.0)
    records = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    for rec in records:
        preds[rec["input"]] = rec["lines"]
        for stage, ms in zip(STAGES_RAPID, rec["stages_ms"]):
            sums[stage] += ms
    return preds, {k: v / max(1, len(records)) for k, v in sums.items()}


def _stage_table(engine: str, stages: tuple[str, ...], ms: dict[str, float]) -> list[str]:
    return [
        "| engine | " + " | ".join(stages) + " | total |",
        "|---|" + "---|" * (len(stages) + 1),
        f"| {engine} | "
        + " | ".join(f"{ms[s]:.0f}" for s in stages)
        + f" | {sum(ms.values()):.0f} |",
        "",
    ]


def run_set(
    name: str, labels: list[dict[str, Any]], data_root: Path, args: argparse.Namespace, tmp: Path
) -> list[str]:
    n = len(labels)
    listing = tmp / f"list_{name}.txt"
    listing.write_text("".join(f"{data_root / rec['image']}\n" for rec in labels))
    extra = shlex.split(args.ocrmill_args)
    rounds: list[dict[str, float]] = []
    first: dict[str, Any] = {}
    for r in range(args.rounds):
        out = tmp / f"ocrmill_{name}_{r}.jsonl"
        cmd = [sys.executable, "-m", "ocrmill", "run", f"@{listing}", "-o", str(out), "-q", *extra]
        m = run_measured(cmd, ROOT)
        preds, stages, ok = ocrmill_outputs(out)
        rapid_out = tmp / f"rapid_{name}_{r}.jsonl"
        rm = run_measured([sys.executable, "-c", RAPID_LOOP, str(listing), str(rapid_out)], ROOT)
        info = json.loads(rm.stdout.strip().splitlines()[-1])
        row = {
            "ocrmill_wall_s": m.wall_s,
            "ocrmill_rss": m.peak_rss_mib,
            "rapid_loop_s": info["loop_s"],
            "rapid_rss": rm.peak_rss_mib,
        }
        rounds.append(row)
        print(f"[{name} round {r + 1}] {row} ok={ok}/{n}", file=sys.stderr)
        if r == 0:
            rapid_preds, rapid_stages = rapid_outputs(rapid_out)
            first = {
                "ok": ok,
                "ocrmill_cer": page_cer(labels, data_root, preds),
                "rapid_cer": page_cer(labels, data_root, rapid_preds),
                "ocrmill_stages": stages,
                "rapid_stages": rapid_stages,
            }

    def med(key: str) -> float:
        return statistics.median(row[key] for row in rounds)

    speed = [row["rapid_loop_s"] / row["ocrmill_wall_s"] for row in rounds]
    memory = [row["ocrmill_rss"] / row["rapid_rss"] for row in rounds]
    lines = [
        f"## Set `{name}`: {n} images",
        "",
        "| round | ocrmill images/s (whole command) | RapidOCR images/s (warm loop) | speed ratio | "
        "ocrmill tree peak RSS MiB | RapidOCR peak RSS MiB | RSS ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for i, row in enumerate(rounds):
        lines.append(
            f"| {i + 1} | {n / row['ocrmill_wall_s']:.3f} | {n / row['rapid_loop_s']:.3f} | "
            f"{speed[i]:.2f}x | {row['ocrmill_rss']:.0f} | {row['rapid_rss']:.0f} | {memory[i]:.2f}x |"
        )
    lines += [
        f"| **median** | **{n / med('ocrmill_wall_s'):.3f}** | **{n / med('rapid_loop_s'):.3f}** | "
        f"**{statistics.median(speed):.2f}x** | **{med('ocrmill_rss'):.0f}** | "
        f"**{med('rapid_rss'):.0f}** | **{statistics.median(memory):.2f}x** |",
        "",
        f"Page CER (macro): ocrmill {100 * first['ocrmill_cer']:.2f} %, RapidOCR "
        f"{100 * first['rapid_cer']:.2f} % ({first['ok']}/{n} ocrmill records ok).",
        "",
        "Milliseconds per image by stage (first round; ocrmill's are summed over its workers, "
        "so they add up to more than wall time when workers run in parallel):",
        "",
        *_stage_table("ocrmill", STAGES_OCRMILL, first["ocrmill_stages"]),
        *_stage_table("RapidOCR", STAGES_RAPID, first["rapid_stages"]),
    ]
    if any(math.isnan(first[k]) for k in ("ocrmill_cer", "rapid_cer")):
        lines.append("(a CER is NaN: no page with ground-truth text)\n")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=Path, default=DEFAULT_LABELS)
    parser.add_argument("--sets", default="30,all")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--limit", type=int, default=0, help="cut every set to N images")
    parser.add_argument("--ocrmill-args", default="", help="extra arguments for `ocrmill run`")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    try:
        import rapidocr  # noqa: F401
    except ImportError:
        raise SystemExit(
            "RapidOCR is not installed (pip install rapidocr): nothing to compare"
        ) from None
    labels = load_labels(args.labels)
    data_root = args.labels.parent.parent
    report = [
        "# `ocrmill run` throughput and memory vs RapidOCR",
        "",
        f"Command: `python -m benchmarks.run_throughput {' '.join(sys.argv[1:])}`",
        "",
        machine_line(),
        f"ocrmill options: `{args.ocrmill_args or '(defaults)'}`; OCRMILL_* environment: "
        f"{ {k: v for k, v in os.environ.items() if k.startswith('OCRMILL_')} or 'none' }.",
        "",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.sets.split(","):
            chosen = pick_set(labels, name)
            if args.limit:
                chosen = chosen[: args.limit]
            report += run_set(name, chosen, data_root, args, Path(tmp))
    save_report("\n".join(report) + "\n", "run_throughput", args.out)


if __name__ == "__main__":
    main()
