"""Where a CPU worker's memory goes: resident size of one engine, step by step, in a fresh
process per variant (imports, models loaded, warm-up, then every 10 images and the peak).

    python -m benchmarks.worker_memory [--labels PATH] [--set 30|all] [--threads 1]
                                       [--variants default,onnxruntime,openvino,...]

Variants: ``default`` (backends chosen by measurement, what a worker runs), ``onnxruntime`` /
``openvino`` (every model on one backend), ``untrimmed`` (default without returning freed
memory between images), ``big-batches`` (default with the GPU-sized recognition batches).
Each runs in its own process, one after another; the report goes to
``benchmarks/results/worker_memory_*.md``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from benchmarks.eval_docs import load_labels
from benchmarks.reports import machine_line, save_report
from benchmarks.run_throughput import DEFAULT_LABELS, pick_set

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("default", "onnxruntime", "openvino", "untrimmed", "big-batches")

CHILD = r"""
import ctypes, dataclasses, json, os, resource, sys, time
def rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
steps = [("start", rss())]
import numpy, cv2, PIL.Image
steps.append(("numpy, OpenCV, Pillow imported", rss()))
from ocrmill.config import Config
from ocrmill.engine import Engine
variant, threads, paths = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
config = Config()
backend = dataclasses.replace(config.backend, threads=threads)
if variant in ("onnxruntime", "openvino"):
    backend = dataclasses.replace(backend, name=variant)
config = dataclasses.replace(config, backend=backend)
if variant == "big-batches":
    rec = dataclasses.replace(config.read.rec, cpu_max_batch_pixels=config.read.rec.max_batch_pixels)
    config = dataclasses.replace(config, read=dataclasses.replace(config.read, rec=rec))
steps.append(("ocrmill imported", rss()))
engine = Engine(config)
steps.append((f"models loaded ({', '.join(f'{k}={v[0]}' for k, v in engine.providers.items())})", rss()))
engine.warmup()
steps.append(("warmed up", rss()))
trim = ctypes.CDLL(None).malloc_trim
started = time.perf_counter()
for i, path in enumerate(paths, 1):
    engine.read(path)
    if variant != "untrimmed":
        trim(0)
    if i % 10 == 0 or i == len(paths):
        steps.append((f"after {i} images", rss()))
seconds = time.perf_counter() - started
print(json.dumps({"steps": steps, "peak": peak(), "seconds": seconds}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=Path, default=DEFAULT_LABELS)
    parser.add_argument("--set", default="30")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    labels = pick_set(load_labels(args.labels), args.set)
    data_root = args.labels.parent.parent
    paths = [str(data_root / rec["image"]) for rec in labels]
    report = [
        "# Memory of one CPU engine, step by step",
        "",
        f"Command: `python -m benchmarks.worker_memory {' '.join(sys.argv[1:])}`",
        "",
        machine_line(),
        f"{len(paths)} images (set `{args.set}`), {args.threads} inference thread(s). RSS in MiB "
        "(from /proc/self/statm); peak is the process's ru_maxrss.",
        "",
    ]
    for variant in args.variants.split(","):
        if variant not in VARIANTS:
            raise SystemExit(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, variant, str(args.threads), *paths],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise SystemExit(f"variant {variant} failed:\n{proc.stderr[-3000:]}")
        info = json.loads(proc.stdout.strip().splitlines()[-1])
        report += [f"## `{variant}`: peak {info['peak']:.0f} MiB, {info['seconds']:.1f} s", ""]
        report += ["| step | RSS MiB |", "|---|---|"]
        report += [f"| {name} | {mib:.0f} |" for name, mib in info["steps"]]
        report.append("")
        print(f"{variant}: peak {info['peak']:.0f} MiB, {info['seconds']:.1f} s", file=sys.stderr)
    save_report("\n".join(report) + "\n", "worker_memory", args.out)


if __name__ == "__main__":
    main()
