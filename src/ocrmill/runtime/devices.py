"""Find CPUs and NVIDIA GPUs without initializing CUDA (runs in the parent process).

GPUs are listed through NVML (``nvidia-ml-py``), which talks to the driver, not to the CUDA
runtime: the parent never creates a CUDA context, so workers started afterwards (with
``spawn``) each open their own (a process that forks after initializing CUDA gives its
children a CUDA that fails with ``cudaErrorInitializationError``).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class GpuInfo:
    index: int
    name: str
    total_bytes: int
    free_bytes: int
    uuid: str = ""


@dataclass(frozen=True)
class Inventory:
    """What this machine offers to the planner."""

    cpus: int
    memory_available_bytes: int
    gpus: tuple[GpuInfo, ...] = ()
    # Why no GPU is listed (NVML missing, no driver, ...); empty when GPUs were found.
    gpu_note: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)


def _cgroup_cpu_limit(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs allowed by a cgroup quota (v2 ``cpu.max`` or v1 ``cfs_quota``), if any."""
    try:
        text = (root / "cpu.max").read_text().split()
        if text and text[0] != "max":
            return int(text[0]) / int(text[1])
    except (OSError, ValueError, IndexError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        if quota > 0 and period > 0:
            return quota / period
    except (OSError, ValueError):
        pass
    return None


def usable_cpus(cgroup_root: Path = Path("/sys/fs/cgroup")) -> int:
    """CPUs this process may use: affinity mask, narrowed by a cgroup quota."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
    quota = _cgroup_cpu_limit(cgroup_root)
    if quota is not None:
        count = min(count, max(1, math.floor(quota)))
    return max(1, count)


def available_memory() -> int:
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:  # pragma: no cover - psutil is a dependency; be safe anyway
        pages = os.sysconf("SC_AVPHYS_PAGES") if hasattr(os, "sysconf") else 0
        return int(pages * os.sysconf("SC_PAGE_SIZE")) if pages else 0


def probe_gpus() -> tuple[tuple[GpuInfo, ...], str]:
    """NVIDIA GPUs visible through NVML, honouring ``CUDA_VISIBLE_DEVICES`` indices.

    Returns ``(gpus, note)``; ``note`` says why the list is empty.
    """
    try:
        import pynvml
    except ImportError:
        return (), "nvidia-ml-py is not installed (pip install nvidia-ml-py)"
    try:
        pynvml.nvmlInit()
    except Exception as exc:
        return (), f"NVML unavailable (no NVIDIA driver?): {exc}"
    try:
        gpus = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
            name = pynvml.nvmlDeviceGetName(handle)
            uuid = pynvml.nvmlDeviceGetUUID(handle)
            gpus.append(
                GpuInfo(
                    index=i,
                    name=name.decode() if isinstance(name, bytes) else str(name),
                    total_bytes=int(mem.total),
                    free_bytes=int(mem.free),
                    uuid=uuid.decode() if isinstance(uuid, bytes) else str(uuid),
                )
            )
    except Exception as exc:
        return (), f"NVML query failed: {exc}"
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        wanted = [v.strip() for v in visible.split(",") if v.strip()]
        by_index = {str(g.index): g for g in gpus}
        by_uuid = {g.uuid: g for g in gpus}
        gpus = [by_index.get(w) or by_uuid.get(w) for w in wanted]  # type: ignore[misc]
        gpus = [g for g in gpus if g is not None]
        if not gpus:
            return (), f"CUDA_VISIBLE_DEVICES={visible!r} hides every GPU"
    if not gpus:
        return (), "NVML reports no GPU"
    return tuple(gpus), ""


def process_gpu_bytes(nvml_index: int, pid: int | None = None) -> int | None:
    """GPU memory NVML charges to process ``pid`` (default: this one) on GPU ``nvml_index``.

    None when NVML cannot tell (no driver, or a PID namespace hides the process).
    """
    pid = os.getpid() if pid is None else pid
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:
        return None
    try:
        handle = pynvml.nvmlDeviceGetHandleByIndex(nvml_index)
        for proc in pynvml.nvmlDeviceGetComputeRunningProcesses(handle):
            if proc.pid == pid and proc.usedGpuMemory is not None:
                return int(proc.usedGpuMemory)
        return None
    except Exception:
        return None
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass


def probe() -> Inventory:
    """Everything the planner needs, gathered without touching CUDA."""
    gpus, note = probe_gpus()
    return Inventory(
        cpus=usable_cpus(), memory_available_bytes=available_memory(), gpus=gpus, gpu_note=note
    )
