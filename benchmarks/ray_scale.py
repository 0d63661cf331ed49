"""Ray at scale, with an engine that reads nothing (the fake engine of the tests), so what is
measured is the path inputs and records take: listing, scheduling, writing.

    python -m benchmarks.ray_scale [--inputs 10000 100000] [--rounds 2] [--workers 2]
                                   [--modes local ray-shards ray-driver] [--out PATH.md]

N inputs are N hard links to one small file (an ``@list`` of their paths). Each command runs
as its own process, modes alternating within a round:

* ``local``: ``ocrmill run @list -o out.jsonl`` on the local worker pool;
* ``ray-shards``: ``ocrmill run --ray @list -o DIR/`` (a local Ray started by the command;
  inputs listed by read tasks, shards written by the actors);
* ``ray-driver``: ``ocrmill run --ray @list -o out.jsonl`` (every task listed on the driver,
  every record written by it).

Reported: wall time; records/s over the whole command and after its first record (start-up
excluded); time to the first record written (a line in the JSONL file, or in a shard or its
temporary file) and to the first complete shard; the driver process's own peak RSS (not
Ray's services or the actors) and its RSS at quarters of the run; the tree's peak RSS; and
that every input has exactly one record.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil

from benchmarks.proc_memory import tree_rss
from benchmarks.reports import machine_line, save_report

ROOT = Path(__file__).resolve().parents[1]
FAKE = "tests.fault.engines:fake_engine"
MODES = ("local", "ray-shards", "ray-driver")
POLL_S = 0.1
LINKS_PER_FILE = 60_000


def make_inputs(folder: Path, n: int) -> Path:
    """``n`` hard links to one file the fake engine reads as "x"; returns their @list."""
    data = folder / "in"
    data.mkdir(parents=True, exist_ok=True)
    listing = folder / f"list-{n}.txt"
    with listing.open("w") as fh:
        for i in range(n):
            original = data / f"original-{i // LINKS_PER_FILE}.png"  # ext4 allows 65,000
            if not original.exists():
                original.write_bytes(b"ok:x")
            path = data / f"{i:08d}.png"
            if not path.exists():
                os.link(original, path)
            fh.write(f"{path}\n")
    return listing


def command(mode: str, listing: Path, out: Path, workers: int, shard_size: int) -> list[str]:
    cmd = [sys.executable, "-m", "ocrmill", "run", f"@{listing}", "-q", "--workers", str(workers)]
    cmd += ["--engine-factory", FAKE]
    if mode == "local":
        return [*cmd, "-o", str(out / "out.jsonl")]
    if mode == "ray-driver":
        return [*cmd, "--ray", "-o", str(out / "out.jsonl")]
    return [*cmd, "--ray", "-o", f"{out}/", "--shard-size", str(shard_size)]


def first_record_written(mode: str, out: Path) -> bool:
    if mode != "ray-shards":
        path = out / "out.jsonl"
        return path.exists() and path.stat().st_size > 0
    root = out / "shards"
    return root.is_dir() and any(p.stat().st_size > 0 for p in root.rglob("*") if p.is_file())


def first_shard_done(out: Path) -> bool:
    root = out / "shards"
    return root.is_dir() and any(True for _ in root.rglob("*.json"))


def records(mode: str, out: Path) -> list[str]:
    files = [out / "out.jsonl"] if mode != "ray-shards" else sorted(out.rglob("*.jsonl"))
    inputs = []
    for path in files:
        with path.open("rb") as fh:
            inputs.extend(json.loads(line)["input"] for line in fh)
    return inputs


def role(proc: psutil.Process, driver: int) -> str:
    """What a process of the command's tree is, for the CPU breakdown."""
    if proc.pid == driver:
        return "driver"
    line = " ".join(proc.cmdline())
    if "MapBatches(" in line:
        return "OCR actors"
    if "multiprocessing" in line or "spawn_main" in line:
        return "pool workers"
    if proc.name() in ("raylet", "gcs_server"):
        return proc.name()
    if "ray::" in line or "default_worker.py" in line:
        return "other Ray workers (read tasks, Ray Data's own actors)"
    return "other Ray services"


def cpu_by_role(ps: psutil.Process, seen: dict[int, tuple[str, float]]) -> None:
    """Each process's CPU seconds so far, by pid (the last sample of a process counts)."""
    for proc in [ps, *ps.children(recursive=True)]:
        try:
            times = proc.cpu_times()
            seen[proc.pid] = (role(proc, ps.pid), times.user + times.system)
        except psutil.Error:
            pass


def measure(
    mode: str, listing: Path, n: int, workers: int, scratch: Path, shard_size: int
) -> dict[str, Any]:
    out = Path(tempfile.mkdtemp(prefix=f"{mode}-", dir=scratch))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    err = (out.parent / f"{out.name}.err").open("w+")
    started = time.perf_counter()
    proc = subprocess.Popen(
        command(mode, listing, out, workers, shard_size), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
        stderr=err,
    )  # fmt: skip
    ps = psutil.Process(proc.pid)
    samples: list[tuple[float, int]] = []
    tree_peak = 0
    first: float | None = None
    shard: float | None = None
    cpu: dict[int, tuple[str, float]] = {}
    while proc.poll() is None:
        now = time.perf_counter() - started
        try:
            samples.append((now, ps.memory_info().rss))
            tree_peak = max(tree_peak, tree_rss(ps))
            cpu_by_role(ps, cpu)
        except psutil.Error:
            pass
        if first is None and first_record_written(mode, out):
            first = now
        if mode == "ray-shards" and shard is None and first_shard_done(out):
            shard = now
        time.sleep(POLL_S)
    wall = time.perf_counter() - started
    err.seek(0)
    if proc.returncode not in (0, 3):
        raise SystemExit(f"{mode} at {n} failed ({proc.returncode}):\n{err.read()[-3000:]}")
    got = Counter(records(mode, out))
    once = len(got) == n and set(got.values()) == {1}
    driver_peak = max(rss for _, rss in samples)
    quarters = []
    for q in (0.25, 0.5, 0.75, 1.0):
        at = [rss for t, rss in samples if t <= q * wall]
        quarters.append(round(max(at) / 2**20) if at else 0)
    first = first if first is not None else wall
    roles: Counter[str] = Counter()
    for name, seconds in cpu.values():
        roles[name] += seconds
    return {
        "cpu_s": {name: round(seconds, 2) for name, seconds in roles.most_common()},
        "mode": mode,
        "inputs": n,
        "wall_s": wall,
        "records": sum(got.values()),
        "exactly_once": once,
        "rate": sum(got.values()) / wall,
        "rate_after_first": sum(got.values()) / max(1e-9, wall - first),
        "first_record_s": first,
        "first_shard_s": shard,
        "driver_peak_mib": driver_peak / 2**20,
        "driver_quarters_mib": quarters,
        "tree_peak_mib": tree_peak / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--shard-size", type=int, default=256, help="inputs per shard (256)")
    parser.add_argument("--scratch", type=Path, default=None, help="folder for inputs/outputs")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="ocrmill-ray-scale-"))
    runs: list[dict[str, Any]] = []
    for n in args.inputs:
        listing = make_inputs(scratch, n)
        for r in range(args.rounds):
            modes = args.modes if r % 2 == 0 else list(reversed(args.modes))
            for mode in modes:
                result = measure(mode, listing, n, args.workers, scratch, args.shard_size)
                print(json.dumps(result), file=sys.stderr, flush=True)
                runs.append(result)
    save_report(report(runs, args), "ray_scale", args.out)
    (args.out or scratch / "ray_scale.md").with_suffix(".json").write_text(
        json.dumps(runs, indent=1)
    )


def report(runs: list[dict[str, Any]], args: argparse.Namespace) -> str:
    med = statistics.median
    lines = [
        "# Ray at scale: the fake engine through the whole path",
        "",
        machine_line(),
        "",
        f"`python -m benchmarks.ray_scale --inputs {' '.join(map(str, args.inputs))} "
        f"--rounds {args.rounds} --workers {args.workers} --shard-size {args.shard_size}`: "
        f"{args.workers} local workers or "
        f"Ray actors; medians of {args.rounds} rounds, modes alternating. Driver RSS is the "
        "command's own process (Ray's services and the actors are not in it); tree RSS adds "
        "every process it started.",
        "",
        "| inputs | mode | wall s | records/s | after 1st record | 1st record s | 1st shard s "
        "| driver peak MiB | driver at 25/50/75/100 % | tree peak MiB | each input once |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    keys = sorted({(r["inputs"], r["mode"]) for r in runs}, key=lambda k: (k[0], MODES.index(k[1])))
    by: dict[tuple[int, str], list[dict[str, Any]]] = {
        k: [r for r in runs if (r["inputs"], r["mode"]) == k] for k in keys
    }
    for (n, mode), rs in by.items():
        shard = [r["first_shard_s"] for r in rs if r["first_shard_s"] is not None]
        quarters = "/".join(
            str(round(med(r["driver_quarters_mib"][i] for r in rs))) for i in range(4)
        )
        lines.append(
            f"| {n:,} | {mode} | {med(r['wall_s'] for r in rs):.1f} "
            f"| {med(r['rate'] for r in rs):,.0f} | {med(r['rate_after_first'] for r in rs):,.0f} "
            f"| {med(r['first_record_s'] for r in rs):.1f} "
            f"| {f'{med(shard):.1f}' if shard else '-'} "
            f"| {med(r['driver_peak_mib'] for r in rs):.0f} | {quarters} "
            f"| {med(r['tree_peak_mib'] for r in rs):.0f} "
            f"| {'yes' if all(r['exactly_once'] for r in rs) else 'NO'} |"
        )
    lines += [
        "",
        "Where the CPU time goes (CPU seconds by process, sampled every 0.1 s, last round):",
        "",
    ]
    for (n, mode), rs in by.items():
        parts = ", ".join(f"{name} {sec:.1f}" for name, sec in rs[-1]["cpu_s"].items())
        lines.append(f"- {n:,} {mode}: {parts}")
    lines += ["", "Ratios (medians):", ""]
    for n in args.inputs:
        local = by.get((n, "local"))
        shards = by.get((n, "ray-shards"))
        if local and shards:
            ratio = med(r["rate_after_first"] for r in shards) / med(
                r["rate_after_first"] for r in local
            )
            lines.append(f"- {n:,} inputs: ray-shards / local records/s after the first: "
                         f"{ratio:.2f}x")  # fmt: skip
    small, big = min(args.inputs), max(args.inputs)
    if small != big and (small, "ray-shards") in by and (big, "ray-shards") in by:
        peak_small = med(r["driver_peak_mib"] for r in by[(small, "ray-shards")])
        peak_big = med(r["driver_peak_mib"] for r in by[(big, "ray-shards")])
        first_small = med(r["first_record_s"] for r in by[(small, "ray-shards")])
        first_big = med(r["first_record_s"] for r in by[(big, "ray-shards")])
        lines.append(
            f"- ray-shards driver peak RSS at {big:,} / at {small:,}: {peak_big / peak_small:.2f}x; "
            f"first record {first_big:.1f} s vs {first_small:.1f} s"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
