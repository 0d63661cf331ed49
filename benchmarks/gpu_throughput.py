"""GPU throughput of the worker pool on the labeled document images.

    python -m benchmarks.gpu_throughput [--labels ../shared/data/docs/labels.jsonl]
        [--workers N] [--repeat R] [--backend auto|torch|onnxruntime] [--out PATH.md]

Three runs on the same GPU and the same images (decoded bytes read once, before timing):

1. one worker, one image at a time (submit, wait, submit: what a naive loop does);
2. one worker, batched (every image submitted at once; the worker reads up to
   ``--max-batch`` per engine call: detection batched by shape bucket, recognition crops
   of all those pages batched together);
3. N workers, batched (N from the VRAM-aware plan unless ``--workers``).

While each run goes, NVML samples GPU utilisation and memory every 100 ms; each worker's
GPU memory after warm-up is reported by the worker itself. The target: run 3 at
>= 10x the images/s of run 1. Needs an NVIDIA GPU and a CUDA backend (onnxruntime-gpu, or
torch + onnx2torch); exits with a clear message otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import platform
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LABELS = ROOT.parent / "shared" / "data" / "docs" / "labels.jsonl"
RESULTS_DIR = ROOT / "benchmarks" / "results"


class GpuSampler:
    """Samples utilisation (%) and used memory of one GPU through NVML in a thread."""

    def __init__(self, index: int | None, period_s: float = 0.1) -> None:
        self._period = period_s
        self._handle = None
        if index is not None:  # None: a CPU dry run, nothing to sample
            import pynvml

            self._nvml = pynvml
            pynvml.nvmlInit()
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        self._stop = threading.Event()
        self.util: list[int] = []
        self.used: list[int] = []
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.util.append(int(self._nvml.nvmlDeviceGetUtilizationRates(self._handle).gpu))
            self.used.append(int(self._nvml.nvmlDeviceGetMemoryInfo(self._handle).used))
            time.sleep(self._period)

    def __enter__(self) -> GpuSampler:
        if self._handle is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def summary(self) -> dict[str, float]:
        if not self.util:
            return {"util_mean": 0.0, "util_median": 0.0, "used_peak_mib": 0.0}
        return {
            "util_mean": statistics.fmean(self.util),
            "util_median": statistics.median(self.util),
            "used_peak_mib": max(self.used) / 2**20,
        }


def load_images(labels: Path, limit: int | None) -> list[tuple[str, bytes]]:
    if not labels.is_file():
        raise SystemExit(f"labels file not found: {labels} (pass --labels PATH)")
    out = []
    with labels.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                rec = json.loads(line)
                path = labels.parent.parent / rec["image"]  # "docs/sroie/..."
                out.append((str(path), path.read_bytes()))
    return out[:limit] if limit else out


def run_case(
    name: str,
    plan: Any,
    config: Any,
    images: list[tuple[str, bytes]],
    *,
    sequential: bool,
    max_batch: int,
    repeat: int,
    gpu_index: int,
) -> dict[str, Any]:
    from ocrmill.runtime.pool import PoolConfig, WorkerPool
    from ocrmill.tasks import Task

    batch = 1 if sequential else max_batch
    pool_config = PoolConfig(max_batch=batch, max_batch_gpu=batch, queue_size=4096)
    with WorkerPool(plan, config, pool_config) as pool:
        workers = pool.metrics()["workers"]
        tasks = [(n, b) for _ in range(repeat) for n, b in images]
        ok = 0
        with GpuSampler(gpu_index) as sampler:
            started = time.perf_counter()
            if sequential:
                for n, b in tasks:
                    r = pool.submit(Task(id=pool.new_task_id(), source=b, name=n)).result()
                    ok += r.ok
            else:
                futures = [
                    pool.submit(Task(id=pool.new_task_id(), source=b, name=n)) for n, b in tasks
                ]
                ok = sum(f.result().ok for f in futures)
            wall = time.perf_counter() - started
    row = {
        "case": name,
        "workers": len(plan.slots),
        "images": len(tasks),
        "ok": ok,
        "wall_s": wall,
        "images_per_s": len(tasks) / wall,
        "gpu_bytes_per_worker": [w.get("gpu_bytes") for w in workers],
        **sampler.summary(),
    }
    print(json.dumps(row), flush=True)
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--labels", type=Path, default=DEFAULT_LABELS)
    p.add_argument("--limit", type=int, help="first N images only")
    p.add_argument("--repeat", type=int, default=2, help="pass over the images R times")
    p.add_argument("--workers", default="auto", help="workers for the N-worker run")
    p.add_argument("--max-batch", type=int, default=16, help="images per worker engine call")
    p.add_argument("--backend", default="auto", help="auto, torch or onnxruntime")
    p.add_argument("--gpu", type=int, default=0, help="NVML index of the GPU to use")
    p.add_argument(
        "--dry-run-on-cpu",
        action="store_true",
        help="run the same three cases on CPU workers (checks the script; numbers mean nothing)",
    )
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)

    from ocrmill.backends.factory import cuda_backend_name
    from ocrmill.config import load_config
    from ocrmill.runtime.devices import probe
    from ocrmill.runtime.plan import WorkerPlan, WorkerSlot, plan_workers

    config = load_config()
    config = dataclasses.replace(
        config, backend=dataclasses.replace(config.backend, name=args.backend)
    )
    inv = probe()
    images = load_images(args.labels, args.limit)
    if args.dry_run_on_cpu:
        backend, device, gpu_index, gpu_name = "cpu dry run", "cpu", None, "none (CPU dry run)"
        one = WorkerPlan((WorkerSlot("cpu", 1),), ("one CPU worker",))
        many = plan_workers(inv, device="cpu", workers=args.workers)
    else:
        if not inv.gpus:
            raise SystemExit(f"no GPU: {inv.gpu_note}")
        found = cuda_backend_name(config.backend)
        if found is None:
            raise SystemExit("no CUDA backend installed: onnxruntime-gpu, or torch + onnx2torch")
        backend, device, gpu_index = found, f"cuda:{args.gpu}", args.gpu
        gpu = next((g for g in inv.gpus if g.index == args.gpu), None)
        if gpu is None:
            raise SystemExit(f"no GPU with NVML index {args.gpu}")
        gpu_name = f"{gpu.name}, {gpu.total_bytes / 2**30:.0f} GiB"
        one = WorkerPlan((WorkerSlot(device, 2),), ("one GPU worker",))
        many = plan_workers(inv, device=device, workers=args.workers, gpu_backend=backend)
    print(many.describe(), file=sys.stderr)
    common = dict(max_batch=args.max_batch, repeat=args.repeat, gpu_index=gpu_index)
    rows = [
        run_case("1 worker, one image at a time", one, config, images, sequential=True, **common),
        run_case("1 worker, batched", one, config, images, sequential=False, **common),
        run_case(
            f"{len(many.slots)} workers, batched", many, config, images, sequential=False, **common
        ),
    ]
    base = rows[0]["images_per_s"]
    lines = [
        "# GPU throughput of the worker pool",
        "",
        f"Command: `python -m benchmarks.gpu_throughput {' '.join(argv or sys.argv[1:])}`",
        f"GPU: {gpu_name}; backend {backend}; "
        f"{len(images)} images x {args.repeat}; Python {platform.python_version()}; "
        f"{dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')}",
        "",
        "| run | workers | images/s | vs one-at-a-time | GPU util mean % | GPU memory peak MiB "
        "| GPU MiB per worker (after warm-up) | ok |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        per = ", ".join(f"{b / 2**20:.0f}" if b else "?" for b in r["gpu_bytes_per_worker"])
        lines.append(
            f"| {r['case']} | {r['workers']} | {r['images_per_s']:.2f} | "
            f"{r['images_per_s'] / base:.1f}x | {r['util_mean']:.0f} | {r['used_peak_mib']:.0f} "
            f"| {per} | {r['ok']}/{r['images']} |"
        )
    lines += ["", "Plan:", "", "```", many.describe(), "```", ""]
    report = "\n".join(lines)
    print(report)
    out = args.out or RESULTS_DIR / f"gpu_throughput_{dt.datetime.now():%Y%m%d-%H%M%S}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report)
    print(f"report: {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
