"""The worker plan: how many workers, on which device, with how many threads each.

:func:`plan_workers` is pure arithmetic over an :class:`~ocrmill.runtime.devices.Inventory`
(so it is tested on fake inventories); :func:`plan_for` is what every front end calls: it
probes this machine, finds the installed CUDA backend and the GPU footprint an earlier run
measured (:class:`FootprintCache`), then plans. Runs in the parent. Every decision that
departs from what was asked (no GPU, not enough GPU memory, too little RAM) is recorded as
a reason a person can read in ``ocrmill doctor``.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ocrmill.config import Config
from ocrmill.errors import ConfigError
from ocrmill.runtime.devices import Inventory

if TYPE_CHECKING:
    from collections.abc import Iterable

GIB = 1024**3
# Resident memory of one CPU worker with the PP-OCRv6 small models: peak 715 MiB over 30
# document images with OpenVINO running the detector (it keeps its working memory between
# calls; 427 MiB on ONNX Runtime alone; benchmarks/results/worker_memory_20261201.md), and
# ~1 GiB for the whole process tree over the 104 labelled images with their full-page scans
# (run_throughput_20261201-after.md). Keeps auto worker counts inside RAM, with room for
# bigger pages.
CPU_WORKER_BYTES = 1300 * 1024**2
# CPU threads per worker when the worker count is left to the plan. Each worker holds its
# own models and working memory (~0.8 GiB with PP-OCRv6 small), so the CPUs go to threads
# first: on 2 CPUs, 1 worker x 2 threads read 30 document images within ~4 % of 2 x 1
# thread's speed (medians 1.99 and 2.06 images/s) at 54 % of the process tree's peak RSS
# (822 and 1530 MiB;
# benchmarks/results/run_throughput_20261201-after.md and -2x1.md). Not measured beyond 2
# CPUs: past 4 threads a worker's serial Python stages (decode, crop, layout) would leave
# cores idle, so bigger machines get more workers.
CPU_THREADS_PER_WORKER = 4
# GPU memory one engine instance needs until a worker has measured its own.
GPU_FOOTPRINT_ESTIMATE = 2 * GIB
GPU_RESERVE_BYTES = 1 * GIB
MAX_INSTANCES_PER_GPU = 8


@dataclass(frozen=True)
class WorkerSlot:
    """One worker process to start."""

    device: str  # "cpu" or "cuda:N" (N = NVML index)
    threads: int  # intra-op threads of its inference sessions

    @property
    def gpu_index(self) -> int | None:
        return int(self.device.split(":")[1]) if self.device.startswith("cuda:") else None


@dataclass(frozen=True)
class WorkerPlan:
    """The workers to start and why (``reasons``); ``warnings`` say where the plan departs
    from what was explicitly asked for (a GPU that cannot be used)."""

    slots: tuple[WorkerSlot, ...]
    reasons: tuple[str, ...]
    warnings: tuple[str, ...] = ()

    @property
    def device_kind(self) -> str:
        return "cuda" if any(s.gpu_index is not None for s in self.slots) else "cpu"

    def summary(self) -> str:
        """One line: ``1 worker on the CPU (2 threads)``, ``3 workers: 2 on cuda:0 (2 threads
        each), 1 on the CPU (1 thread)``."""
        groups: dict[tuple[str, int], int] = {}
        for slot in self.slots:
            groups[(slot.device, slot.threads)] = groups.get((slot.device, slot.threads), 0) + 1

        def where(device: str, threads: int, n: int) -> str:
            place = "the CPU" if device == "cpu" else device
            each = " each" if n > 1 else ""
            return f"on {place} ({threads} thread{'s' * (threads > 1)}{each})"

        count = len(self.slots)
        head = f"{count} worker{'s' * (count > 1)}"
        if len(groups) == 1:
            ((device, threads), n) = next(iter(groups.items()))
            return f"{head} {where(device, threads, n)}"
        parts = [f"{n} {where(device, threads, n)}" for (device, threads), n in groups.items()]
        return f"{head}: " + ", ".join(parts)

    def describe(self) -> str:
        counts: dict[tuple[str, int], int] = {}
        for slot in self.slots:
            counts[(slot.device, slot.threads)] = counts.get((slot.device, slot.threads), 0) + 1
        parts = [
            f"{n} x {dev} ({threads} thread{'s' * (threads > 1)})"
            for (dev, threads), n in counts.items()
        ]
        lines = [f"workers: {len(self.slots)} = " + " + ".join(parts)]
        lines += [f"  - {r}" for r in self.reasons]
        return "\n".join(lines)


def parse_device(device: str) -> tuple[str, int | None]:
    """``auto`` | ``cpu`` | ``cuda`` | ``cuda:N`` -> (kind, index)."""
    m = re.fullmatch(r"(auto|cpu|cuda)(?::(\d+))?", device.strip().lower())
    if not m or (m.group(2) is not None and m.group(1) != "cuda"):
        raise ConfigError(f"device must be auto, cpu, cuda or cuda:N, got {device!r}")
    return m.group(1), int(m.group(2)) if m.group(2) is not None else None


def parse_workers(workers: str | int) -> int | None:
    """``auto`` -> None, else a positive count."""
    if isinstance(workers, int) or str(workers).strip().isdigit():
        n = int(workers)
        if n < 1:
            raise ConfigError(f"workers must be >= 1, got {n}")
        return n
    if str(workers).strip().lower() == "auto":
        return None
    raise ConfigError(f"workers must be 'auto' or a positive integer, got {workers!r}")


def _cpu_plan(
    inv: Inventory, wanted: int | None, reasons: list[str], *, warning: str | None = None
) -> WorkerPlan:
    if wanted is None:
        by_threads = max(1, inv.cpus // CPU_THREADS_PER_WORKER)
        by_memory = (
            max(1, inv.memory_available_bytes // CPU_WORKER_BYTES)
            if inv.memory_available_bytes
            else by_threads
        )
        count = max(1, min(by_threads, by_memory))
        if by_memory < by_threads:
            reasons.append(
                f"{count} CPU workers, not {by_threads}: {inv.memory_available_bytes / GIB:.1f} GiB "
                f"available at ~{CPU_WORKER_BYTES / GIB:.1f} GiB per worker"
            )
        else:
            reasons.append(
                f"one worker per {CPU_THREADS_PER_WORKER} CPUs ({inv.cpus} usable): a worker's "
                "threads read almost as fast as as many single-threaded workers, in far less memory"
            )
    else:
        count = wanted
        if count > inv.cpus:
            reasons.append(f"{count} workers on {inv.cpus} CPUs: oversubscribed, expect contention")
    threads = max(1, inv.cpus // count)
    slots = tuple(WorkerSlot("cpu", threads) for _ in range(count))
    return WorkerPlan(slots, tuple(reasons), (warning,) if warning else ())


def plan_workers(
    inv: Inventory,
    *,
    device: str = "auto",
    workers: str | int = "auto",
    gpu_backend: str | None = None,
    footprint_bytes: int = GPU_FOOTPRINT_ESTIMATE,
    reserve_bytes: int = GPU_RESERVE_BYTES,
    max_per_gpu: int = MAX_INSTANCES_PER_GPU,
    cpu_workers: int = 0,
) -> WorkerPlan:
    """Decide the workers for ``device`` / ``workers`` on this inventory.

    ``gpu_backend`` names an installed backend able to run on CUDA (None: none is); without
    one, GPUs cannot be used and the plan falls back to CPU workers, saying why.
    ``cpu_workers`` adds that many single-threaded CPU workers beside GPU workers: tasks
    that run out of GPU memory even one crop at a time are retried there.
    """
    kind, index = parse_device(device)
    wanted = parse_workers(workers)
    reasons: list[str] = []
    if kind == "cpu":
        reasons.append("device=cpu")
        return _cpu_plan(inv, wanted, reasons)

    gpus = list(inv.gpus)
    asked = device.strip().lower()  # a GPU asked for by name, not found, is worth a warning
    if index is not None:
        gpus = [g for g in gpus if g.index == index]
        if not gpus:
            why = f"--device {asked}: no such GPU; using CPU (ocrmill doctor says why)"
            return _cpu_plan(inv, wanted, [*reasons, why], warning=why)
    if not gpus:
        if kind == "cuda":
            why = f"--device {asked}: no GPU found; using CPU (ocrmill doctor says why)"
            return _cpu_plan(inv, wanted, [*reasons, why], warning=why)
        reasons.append("no GPU found; reading on the CPU")  # the usual case: nothing wrong
        return _cpu_plan(inv, wanted, reasons)
    if gpu_backend is None:
        why = (
            "GPU found but no CUDA-capable backend is installed "
            "(onnxruntime-gpu, or torch with CUDA and onnx2torch); using CPU"
        )
        return _cpu_plan(inv, wanted, [*reasons, why], warning=why)

    capacity: dict[int, int] = {}
    for g in gpus:
        usable = g.free_bytes - reserve_bytes
        n = min(max_per_gpu, max(0, usable // max(1, footprint_bytes)))
        capacity[g.index] = int(n)
        reasons.append(
            f"cuda:{g.index} {g.name}: {g.free_bytes / GIB:.1f} GiB free - {reserve_bytes / GIB:.1f} reserve "
            f"-> {n} instance(s) at {footprint_bytes / GIB:.2f} GiB each"
        )
    total_capacity = sum(capacity.values())
    if total_capacity == 0:
        reasons.append("not enough free GPU memory for one instance; using CPU")
        return _cpu_plan(inv, wanted, reasons)
    count = total_capacity if wanted is None else min(wanted, total_capacity)
    if wanted is not None and wanted > total_capacity:
        reasons.append(f"asked for {wanted} workers, GPU memory allows {total_capacity}")
    # Round-robin over GPUs so load and memory spread evenly.
    devices: list[str] = []
    remaining = dict(capacity)
    while len(devices) < count:
        for idx in sorted(remaining):
            if remaining[idx] > 0 and len(devices) < count:
                devices.append(f"cuda:{idx}")
                remaining[idx] -= 1
    threads = max(1, inv.cpus // max(1, count))
    threads = min(threads, 2)  # GPU workers need little CPU; leave cores for decoding
    slots = [WorkerSlot(d, threads) for d in devices]
    if cpu_workers > 0:
        slots += [WorkerSlot("cpu", 1)] * cpu_workers
        reasons.append(
            f"{cpu_workers} CPU worker(s) beside the GPUs for tasks that run out of GPU memory"
        )
    return WorkerPlan(tuple(slots), tuple(reasons))


class FootprintCache:
    """Measured GPU memory per engine instance, keyed by models + backend + preset.

    Stored as JSON (default ``~/.cache/ocrmill/footprints.json``) so the next plan uses a
    measurement instead of the estimate.
    """

    def __init__(self, path: Path | None = None) -> None:
        base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        self.path = path or base / "ocrmill" / "footprints.json"

    @staticmethod
    def key(model_files: list[Path], backend: str, preset: str) -> str:
        parts = []
        for p in model_files:
            try:
                size = p.stat().st_size
            except OSError:
                size = -1
            parts.append(f"{p.name}:{size}")
        return "|".join([*parts, backend, preset])

    def _load(self) -> dict[str, int]:
        try:
            data = json.loads(self.path.read_text())
            return {str(k): int(v) for k, v in data.items()}
        except (OSError, ValueError, AttributeError):
            return {}

    def get(self, key: str) -> int | None:
        return self._load().get(key)

    def put(self, key: str, footprint_bytes: int) -> None:
        data = self._load()
        data[key] = math.ceil(footprint_bytes)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        tmp.replace(self.path)


def footprint_key(config: Config, backend: str) -> str:
    """The :class:`FootprintCache` key of an engine built from ``config`` on ``backend``."""
    from ocrmill.models import resolve_models

    files = resolve_models(config.models)
    sizing = f"{config.read.det.limit_side_len}/{config.read.rec.max_batch_size}"
    return FootprintCache.key([files.det, files.rec, files.cls], backend, sizing)


def plan_for(
    config: Config,
    device: str = "auto",
    workers: str | int = "auto",
    *,
    cpu_workers: int = 0,
    inventory: Inventory | None = None,
    footprints: FootprintCache | None = None,
) -> WorkerPlan:
    """The worker plan for ``device`` / ``workers`` on this machine (or ``inventory``).

    GPUs count only when a CUDA-capable backend is installed; GPU workers are sized by the
    footprint an earlier run measured for the same models and sizing, else by the estimate.
    """
    from ocrmill.runtime.devices import probe

    inv = inventory or probe()
    gpu_backend = None
    footprint = GPU_FOOTPRINT_ESTIMATE
    # Only where a GPU could be used: finding the backend imports numpy and may import
    # onnxruntime (~140 ms and ~40 MiB in this process, before any worker is started).
    if inv.gpus and parse_device(device)[0] != "cpu":
        from ocrmill.backends.factory import cuda_backend_name

        gpu_backend = cuda_backend_name(config.backend)
    if gpu_backend is not None:
        cache = footprints or FootprintCache()
        footprint = cache.get(footprint_key(config, gpu_backend)) or footprint
    return plan_workers(
        inv,
        device=device,
        workers=workers,
        gpu_backend=gpu_backend,
        footprint_bytes=footprint,
        cpu_workers=cpu_workers,
    )


def record_footprints(
    config: Config, workers: Iterable[dict[str, Any]], footprints: FootprintCache | None = None
) -> None:
    """Remember the largest GPU memory a worker measured after warm-up (``workers``: the
    pool's metrics rows), so the next :func:`plan_for` sizes GPU workers by it."""
    from ocrmill.backends.factory import cuda_backend_name

    measured = [w["gpu_bytes"] for w in workers if w.get("gpu_bytes")]
    if not measured:  # CPU workers: finding the GPU backend would import onnxruntime here
        return
    backend = cuda_backend_name(config.backend)
    if backend is None:
        return
    try:
        (footprints or FootprintCache()).put(footprint_key(config, backend), max(measured))
    except OSError:
        pass  # a read-only home only costs the estimate next time
