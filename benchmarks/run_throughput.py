"""Whole-command throughput: ``ocrmill run @list -o out.jsonl`` (start-up included) with
1 and 2 workers, against RapidOCR's per-image loop in one process, on the same images.

    python -m benchmarks.run_throughput [--labels ../shared/data/docs/labels.jsonl]
                                        [--workers 1,2] [--limit N] [--out PATH.md]

Each command runs as its own process tree, one after another. Peak RSS is the peak of the
*sum* over the process and all its children (sampled every 50 ms with psutil), so a pool of
workers is charged for every worker. RapidOCR's time is reported twice: whole process
(import + model load + loop) and its loop alone (an already-warm process).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

from benchmarks.proc_memory import run_measured

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LABELS = ROOT.parent / "shared" / "data" / "docs" / "labels.jsonl"

RAPID_LOOP = """
import json, sys, time
t0 = time.perf_counter()
from rapidocr import RapidOCR
engine = RapidOCR()
paths = [line.strip() for line in open(sys.argv[1]) if line.strip()]
t1 = time.perf_counter()
lines = 0
for p in paths:
    out = engine(p)
    lines += len(out.txts or ())
t2 = time.perf_counter()
print(json.dumps({"startup_s": t1 - t0, "loop_s": t2 - t1, "lines": lines}))
"""


def measure(cmd: list[str]) -> dict[str, float | str]:
    m = run_measured(cmd, ROOT)
    return {
        "wall_s": m.wall_s,
        "peak_rss_mib": m.peak_rss_mib,
        "stdout": m.stdout,
        "stderr": m.stderr,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=Path, default=DEFAULT_LABELS)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if not args.labels.exists():
        raise SystemExit(f"labels not found: {args.labels} (needs ../shared/data)")
    data_root = args.labels.parent.parent
    paths = [str(data_root / json.loads(line)["image"]) for line in args.labels.open()]
    if args.limit:
        paths = paths[: args.limit]
    n = len(paths)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "list.txt"
        listing.write_text("\n".join(paths) + "\n")
        for workers in [int(w) for w in args.workers.split(",")]:
            out = Path(tmp) / f"out{workers}.jsonl"
            cmd = [sys.executable, "-m", "ocrmill", "run", f"@{listing}", "-o", str(out)]
            r = measure([*cmd, "--workers", str(workers), "-q"])
            records = [json.loads(x) for x in out.read_text().splitlines()]
            ok = sum(rec["ok"] for rec in records)
            rows.append(
                (
                    f"ocrmill run --workers {workers}",
                    r["wall_s"],
                    None,
                    r["peak_rss_mib"],
                    f"{ok}/{len(records)} ok",
                )
            )
            print(rows[-1], file=sys.stderr)
        r = measure([sys.executable, "-c", RAPID_LOOP, str(listing)])
        info = json.loads(str(r["stdout"]).strip().splitlines()[-1])
        rows.append(
            (
                "RapidOCR loop (1 process)",
                r["wall_s"],
                info["loop_s"],
                r["peak_rss_mib"],
                f"{info['lines']} lines",
            )
        )
        print(rows[-1], file=sys.stderr)
    rapid_wall, rapid_loop = rows[-1][1], rows[-1][2]
    lines = [
        "# `ocrmill run` throughput vs RapidOCR",
        "",
        f"Command: `python -m benchmarks.run_throughput {' '.join(sys.argv[1:])}`",
        f"Machine: {os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()}; "
        f"{dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')}. {n} images from {args.labels.name}.",
        "",
        "| command | wall s (start-up included) | warm loop s | images/s (wall) | peak RSS of process tree MiB | vs RapidOCR warm loop | note |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, wall, loop, rss, note in rows:
        ratio = f"{rapid_loop / float(wall):.2f}x"
        lines.append(
            f"| {name} | {float(wall):.1f} | {'' if loop is None else f'{loop:.1f}'} | {n / float(wall):.3f} | {float(rss):.0f} | {ratio} | {note} |"
        )
    lines += [
        "",
        f"RapidOCR whole process: {float(rapid_wall):.1f} s; its loop alone: {rapid_loop:.1f} s "
        f"({n / rapid_loop:.3f} images/s). Ratios compare each whole ocrmill command with "
        "RapidOCR's warm loop (the comparison that favours RapidOCR).",
    ]
    report = "\n".join(lines) + "\n"
    print(report)
    out_path = (
        args.out
        or ROOT / "benchmarks" / "results" / f"run_throughput_{dt.datetime.now():%Y%m%d-%H%M%S}.md"
    )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(report)
    print(f"saved {out_path}", file=sys.stderr)


if __name__ == "__main__":
    main()
