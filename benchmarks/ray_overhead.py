"""Ray's overhead: ``ocrmill run @list`` (local pool) against ``ocrmill run --ray @list`` (a
local Ray started by the command) with the same number of workers / actors, on the same images.

    python -m benchmarks.ray_overhead [--labels ../shared/data/docs/labels.jsonl]
                                      [--workers 2] [--limit N] [--out PATH.md]

Each command runs as its own process tree, one after another. Reported per command:

* wall time of the whole command (start-up included: the pool's model loading; for Ray also
  starting Ray itself and its actors) and images/s over it;
* the steady rate: records after the first arrival / (time of the last arrival - time of
  the first), from polling the output file every 20 ms: start-up excluded, and so is the
  first arrival (Ray delivers a block of records at once; counting it with no time spent
  on it would flatter the command that delivers more at once);
* peak RSS summed over the process tree (with Ray: the driver, Ray's own services and the
  actors, which are all children of the command when it starts a local Ray);
* whether both commands read the same text for every input.
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
from typing import Any

from benchmarks.eval_docs import load_labels, select_labels
from benchmarks.proc_memory import run_measured

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LABELS = ROOT.parent / "shared" / "data" / "docs" / "labels.jsonl"


def count_lines(path: Path) -> int:
    try:
        with path.open("rb") as fh:
            return sum(1 for line in fh if line.endswith(b"\n"))
    except FileNotFoundError:
        return 0


def measure(cmd: list[str], out: Path) -> dict[str, Any]:
    """Run ``cmd``; wall time, first/last record times (s from start) and peak tree RSS."""
    first: float | None = None
    last: float | None = None
    seen = first_n = 0

    def watch(now: float) -> None:
        nonlocal first, last, seen, first_n
        n = count_lines(out)
        if n and first is None:
            first, first_n = now, n
        if n > seen:
            seen, last = n, now

    m = run_measured(cmd, ROOT, period_s=0.02, on_poll=watch)
    wall, peak = m.wall_s, m.peak_rss_bytes
    if count_lines(out) > seen:  # the last records landed after the final poll
        seen, last = count_lines(out), wall
    return {
        "wall_s": wall,
        "first_s": first,
        "first_records": first_n,
        "last_s": last,
        "records": seen,
        "peak": peak,
    }


def texts(path: Path) -> dict[tuple[str, Any], str | None]:
    recs = [json.loads(line) for line in path.read_text().splitlines()]
    return {(r["input"], r["page"]): r.get("text") if r["ok"] else None for r in recs}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--labels", type=Path, default=DEFAULT_LABELS)
    parser.add_argument("--workers", type=int, default=2, help="pool workers = Ray actors")
    parser.add_argument("--limit", type=int, help="first N images, round-robin over sources")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    labels = select_labels(load_labels(args.labels), None, args.limit)
    data_root = args.labels.parent.parent
    paths = [str(data_root / rec["image"]) for rec in labels]
    n = len(paths)
    rows: list[tuple[str, dict[str, Any]]] = []
    outputs: list[Path] = []
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "list.txt"
        listing.write_text("\n".join(paths) + "\n")
        for label, extra in (
            (f"ocrmill run --workers {args.workers}", []),
            (f"ocrmill run --ray --workers {args.workers}", ["--ray"]),
        ):
            out = Path(tmp) / f"out{len(rows)}.jsonl"
            cmd = [sys.executable, "-m", "ocrmill", "run", f"@{listing}", "-o", str(out)]
            cmd += [*extra, "--workers", str(args.workers), "-q"]
            result = measure(cmd, out)
            rows.append((label, result))
            outputs.append(Path(tmp) / f"kept{len(outputs)}.jsonl")
            outputs[-1].write_bytes(out.read_bytes())
            print(label, {k: v for k, v in result.items()}, file=sys.stderr)
        local_texts, ray_texts = texts(outputs[0]), texts(outputs[1])
    same = sum(local_texts.get(k) == v for k, v in ray_texts.items())

    def steady(r: dict[str, Any]) -> float:
        span = (r["last_s"] or 0.0) - (r["first_s"] or 0.0)
        after_first = r["records"] - r["first_records"]
        return after_first / span if span > 0 and after_first > 0 else float("nan")

    local, on_ray = rows[0][1], rows[1][1]
    lines = [
        "# Ray's overhead: `ocrmill run` local pool vs `ocrmill run --ray`",
        "",
        f"Command: `python -m benchmarks.ray_overhead {' '.join(sys.argv[1:])}`",
        f"Machine: {os.cpu_count()} CPUs, {platform.platform()}, Python "
        f"{platform.python_version()}, ray {_version('ray')}; "
        f"{dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')}. "
        f"{n} images from {args.labels.name} (round-robin over sources); "
        f"{args.workers} pool workers vs {args.workers} Ray actors (a local Ray started by the "
        "command; default engine settings).",
        "",
        "| command | wall s | images/s (wall) | first records at s (how many) | steady "
        "images/s (after the first arrival) | peak RSS of process tree MiB |",
        "|---|---|---|---|---|---|",
    ]
    for label, r in rows:
        lines.append(
            f"| {label} | {r['wall_s']:.1f} | {n / r['wall_s']:.3f} | {r['first_s'] or 0:.1f} "
            f"({r['first_records']}) | {steady(r):.3f} | {r['peak'] / 2**20:.0f} |"
        )
    lines += [
        "",
        f"Ray / local: wall time {on_ray['wall_s'] / local['wall_s']:.2f}x, "
        f"throughput over the wall {local['wall_s'] / on_ray['wall_s']:.2f}x, "
        f"steady throughput {steady(on_ray) / steady(local):.2f}x; start-up (first record) "
        f"{on_ray['first_s'] or 0:.1f} s vs {local['first_s'] or 0:.1f} s.",
        f"Same text for {same} of {len(ray_texts)} inputs "
        f"({len(local_texts)} local records, {len(ray_texts)} Ray records).",
    ]
    report = "\n".join(lines) + "\n"
    print(report)
    stamp = f"{dt.datetime.now():%Y%m%d-%H%M%S}"
    out_path = args.out or ROOT / "benchmarks" / "results" / f"ray_overhead_{stamp}.md"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(report)
    print(f"saved {out_path}", file=sys.stderr)


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


if __name__ == "__main__":
    main()
