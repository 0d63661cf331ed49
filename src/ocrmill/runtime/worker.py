"""Worker process side of the pool (this module's ``worker_main`` runs in the child).

A worker is started with ``spawn``, so it begins as a fresh interpreter: thread limits and
``CUDA_VISIBLE_DEVICES`` are set here *before* numpy or any inference library is imported.
It builds its engine once, warms it up, reports ready with its RSS, then serves task
batches from its pipe until told to stop (or the parent goes away). Left without work for
``release_after_idle_s`` after a batch, it hands back its engine's buffers and reports its
RSS again. It ignores SIGINT: the parent decides when work stops.

Keep module-level imports light: the parent imports this module for the message types.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ocrmill.config import Config
from ocrmill.runtime import heap
from ocrmill.runtime.messages import Fatal, Ready, Rested, Results, RunTasks, Sized, Stop
from ocrmill.runtime.tasks import (
    TIMEOUT_REFERENCE_PIXELS,
    EngineLike,
    run_tasks,
    task_pixels,
)
from ocrmill.tasks import Task

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

DEFAULT_ENGINE_FACTORY = "ocrmill.runtime.worker:build_engine"

log = logging.getLogger(__name__)

THREAD_ENV_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker needs; pickled to the child by ``spawn``."""

    worker_id: int
    device: str  # "cpu" or "cuda:N"
    threads: int
    config: Config
    engine_factory: str = DEFAULT_ENGINE_FACTORY
    warmup: bool = True
    # Without work for this long after a batch, hand back the engine's buffers (None: never).
    release_after_idle_s: float | None = None


def build_engine(config: Config, device: str, threads: int) -> EngineLike:
    """The default engine factory: an :class:`~ocrmill.engine.Engine` on ``device``.

    A GPU worker sees only its own GPU (``CUDA_VISIBLE_DEVICES`` is set before any import),
    so inside the worker that GPU is ``cuda:0``.
    """
    from ocrmill.engine import Engine

    backend = replace(
        config.backend, threads=threads, device="cuda:0" if device.startswith("cuda") else "cpu"
    )
    return Engine(replace(config, backend=backend))


def load_factory(path: str) -> Any:
    """Import ``module:callable``."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ValueError(f"engine factory must look like 'package.module:function', got {path!r}")
    return getattr(importlib.import_module(module_name), attr)


def current_rss() -> int:
    """Resident set size of this process in bytes (cheap: one /proc read on Linux)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import psutil

        return int(psutil.Process().memory_info().rss)


def _die_with_parent() -> None:
    """Make sure this worker never outlives the parent (e.g. while hung in native code).

    On Linux the kernel sends SIGKILL when the parent dies (``PR_SET_PDEATHSIG``); a
    watchdog thread polling the parent pid covers other systems.
    """
    parent = os.getppid()
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="ocrmill-parent-watch", daemon=True).start()


def _prepare_environment(spec: WorkerSpec) -> None:
    for var in THREAD_ENV_VARS:
        os.environ[var] = str(spec.threads)
    if spec.device.startswith("cuda:"):
        # Slot indices are NVML's, which count GPUs in PCI bus order; make CUDA count alike.
        os.environ["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
        os.environ["CUDA_VISIBLE_DEVICES"] = spec.device.split(":", 1)[1]
    else:
        # A CPU worker must never create a CUDA context, whatever libraries it loads.
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _gpu_footprint(spec: WorkerSpec) -> int | None:
    """GPU memory this worker holds after warm-up (NVML), or None on the CPU."""
    if not spec.device.startswith("cuda:"):
        return None
    from ocrmill.runtime.devices import process_gpu_bytes

    return process_gpu_bytes(int(spec.device.split(":", 1)[1]))


def _batch_pixels(tasks: list[Task]) -> int:
    """Pixels of a batch, from headers (unknown sizes count as nothing)."""
    return sum(task_pixels(t) or 0 for t in tasks)


def _idle_for(conn: Connection, seconds: float | None) -> bool:
    """Whether no message comes within ``seconds`` (never idle where it is None)."""
    return seconds is not None and not conn.poll(seconds)


def _rest(engine: EngineLike, release_free_memory: Callable[[], object]) -> None:
    """Hand back what the engine keeps between pages (an engine without
    ``release_memory`` keeps it), then the freed pages to the system. A failure only
    costs the memory: the worker goes on serving."""
    release = getattr(engine, "release_memory", None)
    try:
        if release is not None:
            release()
    except Exception:
        log.warning("could not hand back the engine's buffers", exc_info=True)
    release_free_memory()


def worker_main(conn: Connection, spec: WorkerSpec) -> None:
    """Entry point of a worker process."""
    heap.one_arena()  # before any other thread of this process starts
    heap.map_big_blocks()  # before the engine's first allocations
    _die_with_parent()
    _prepare_environment(spec)
    from ocrmill.backends.openvino import leave_out_conversion_api

    leave_out_conversion_api()  # a worker only compiles models: ~0.15 s less to start
    try:
        factory = load_factory(spec.engine_factory)
        engine = factory(spec.config, spec.device, spec.threads)
        if spec.warmup:
            engine.warmup()
    except BaseException as exc:  # report why we cannot serve, then exit non-zero
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        code = getattr(exc, "code", "internal")
        try:
            conn.send(Fatal(spec.worker_id, str(code), detail))
        finally:
            os._exit(3)
    # Between batches, hand the pages glibc keeps from freed page buffers back to the
    # system: without it a worker's resting RSS grows with every large page it has read
    # (30 document images, 2 threads: 751 -> 595 MiB after the last one, peak 750 -> 715;
    # benchmarks/results/worker_memory_20261201.md).
    release_free_memory = heap.trimmer()
    conn.send(Ready(spec.worker_id, os.getpid(), current_rss(), _gpu_footprint(spec)))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the parent is gone: nothing left to serve
            break
        if isinstance(message, Stop):
            break
        if isinstance(message, RunTasks):
            started = time.perf_counter()
            try:
                pixels = _batch_pixels(message.tasks)
                if pixels > TIMEOUT_REFERENCE_PIXELS:
                    conn.send(Sized(spec.worker_id, pixels))
                results = run_tasks(engine, message.tasks, spec.config)
                release_free_memory()
                busy = time.perf_counter() - started
                conn.send(Results(spec.worker_id, results, busy, current_rss()))
                if _idle_for(conn, spec.release_after_idle_s):
                    _rest(engine, release_free_memory)
                    conn.send(Rested(spec.worker_id, current_rss()))
            except (BrokenPipeError, OSError):
                break
    conn.close()
