"""Prometheus metrics of the server: an ASGI middleware timing requests on the event loop,
and a collector that reads the pool, jobs and GPU memory when ``/metrics`` is scraped (in
a thread: FastAPI runs that route in its thread pool)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


@dataclass(frozen=True)
class Snapshot:
    """What the collector reports at scrape time."""

    pool: dict[str, Any]
    jobs_active: int = 0
    job_pages_pending: int = 0
    job_pages_in_pool: int = 0
    ocr_in_use: int = 0
    ocr_capacity: int = 0
    gpu_memory: dict[str, int] = field(default_factory=dict)  # device -> bytes used by workers


class _SnapshotCollector(Collector):
    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        snap = self._snapshot()
        pool = snap.pool
        yield GaugeMetricFamily(
            "ocrmill_queue_depth", "Tasks waiting in the worker pool queue", pool["queue_depth"]
        )
        yield GaugeMetricFamily(
            "ocrmill_in_flight", "Tasks being read by workers", pool["in_flight"]
        )
        workers = pool["workers"]
        ready = sum(w["state"] in ("idle", "busy") for w in workers)
        yield GaugeMetricFamily("ocrmill_workers_ready", "Workers ready to read", ready)
        rss = GaugeMetricFamily(
            "ocrmill_worker_rss_bytes",
            "Resident memory of each worker",
            labels=["worker", "device"],
        )
        done = CounterMetricFamily(
            "ocrmill_worker_tasks", "Tasks read by each worker process", labels=["worker"]
        )
        for w in workers:
            rss.add_metric([str(w["id"]), w["device"]], w["rss_bytes"])
            done.add_metric([str(w["id"])], w["tasks_done"])
        yield rss
        yield done
        restarts = CounterMetricFamily(
            "ocrmill_worker_restarts", "Workers replaced, by cause", labels=["cause"]
        )
        for cause in ("crash", "timeout", "start_timeout", "recycle_tasks", "recycle_rss"):
            restarts.add_metric([cause], pool["restarts"].get(cause, 0))
        yield restarts
        gpu = GaugeMetricFamily(
            "ocrmill_gpu_memory_used_bytes", "GPU memory used by workers", labels=["device"]
        )
        for device, used in sorted(snap.gpu_memory.items()):
            gpu.add_metric([device], used)
        yield gpu
        yield GaugeMetricFamily("ocrmill_jobs_active", "Unfinished jobs", snap.jobs_active)
        yield GaugeMetricFamily(
            "ocrmill_job_pages_pending", "Job pages not read yet", snap.job_pages_pending
        )
        yield GaugeMetricFamily(
            "ocrmill_job_pages_in_pool", "Job pages handed to the pool", snap.job_pages_in_pool
        )
        yield GaugeMetricFamily(
            "ocrmill_ocr_requests_in_progress",
            "Single-image requests admitted and not yet answered",
            snap.ocr_in_use,
        )
        yield GaugeMetricFamily(
            "ocrmill_ocr_requests_capacity",
            "Single-image requests admitted at once",
            snap.ocr_capacity,
        )


class ServerMetrics:
    """The server's own registry (several apps in one process never collide)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ["route", "method", "status"]
        self.requests = Counter(
            "ocrmill_http_requests", "HTTP requests", labels, registry=self.registry
        )
        self.latency = Histogram(
            "ocrmill_http_request_duration_seconds",
            "HTTP request latency",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "ocrmill_errors",
            "Failed results and refused requests, by error code",
            ["code"],
            registry=self.registry,
        )
        self.results = Counter(
            "ocrmill_results", "Results produced", ["source", "ok"], registry=self.registry
        )

    def watch(self, snapshot: Callable[[], Snapshot]) -> None:
        self.registry.register(_SnapshotCollector(snapshot))

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        labels = (route, method, str(status))
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """Counts and times every HTTP request by route template (never the raw path)."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.observe(route, scope["method"], status, time.perf_counter() - started)


def gpu_memory_by_device(pids: dict[int, str]) -> dict[str, int]:
    """GPU memory used by the given worker pids (pid -> "cuda:N"), read through NVML.

    Where NVML cannot tell (no nvidia-ml-py, no NVIDIA driver, a GPU that does not answer),
    that memory is left out and the reason is logged at debug level: a machine without an
    NVIDIA driver is normal. Any other exception is a bug and propagates.
    """
    if not pids:
        return {}
    try:
        import pynvml
    except ImportError:
        log.debug("GPU memory unknown: nvidia-ml-py (pynvml) is not installed")
        return {}
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        log.debug("GPU memory unknown: NVML cannot start (no NVIDIA driver?): %s", exc)
        return {}
    used: dict[str, int] = {}
    try:
        for i in range(pynvml.nvmlDeviceGetCount()):
            try:
                handle = pynvml.nvmlDeviceGetHandleByIndex(i)
                processes = pynvml.nvmlDeviceGetComputeRunningProcesses(handle)
            except pynvml.NVMLError as exc:
                log.debug("GPU memory of NVML device %d unknown: %s", i, exc)
                continue
            for proc in processes:
                device = pids.get(int(proc.pid))
                if device is not None and proc.usedGpuMemory:
                    used[device] = used.get(device, 0) + int(proc.usedGpuMemory)
    except pynvml.NVMLError as exc:  # the device count
        log.debug("GPU memory unknown: NVML query failed: %s", exc)
    finally:
        try:
            pynvml.nvmlShutdown()
        except pynvml.NVMLError as exc:
            log.debug("NVML shutdown failed: %s", exc)
    return used
