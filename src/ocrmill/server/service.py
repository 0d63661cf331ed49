"""The server's long-lived state: ONE worker pool shared by every request, the job store
and manager, admission control and metrics; started and stopped by the app's lifespan.

Runs on the event loop. Blocking steps (starting and stopping worker processes, waiting
for warm-up, locking the data directory) go to threads; reading goes to the workers; a
request waits on ``asyncio.wrap_future`` of its pool future, never on the future itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from ocrmill.config import ReadOptions
from ocrmill.errors import ConfigError, OcrmillError
from ocrmill.results import Result
from ocrmill.runtime.pool import PoolClosedError, QueueFullError, WorkerPool
from ocrmill.server.admission import Admission
from ocrmill.server.api_errors import ApiError, overloaded
from ocrmill.server.expiry import JobExpiry
from ocrmill.server.jobs import JobManager
from ocrmill.server.metrics import ServerMetrics, Snapshot, gpu_memory_by_device
from ocrmill.server.settings import ServerSettings
from ocrmill.server.store import AsyncJobStore
from ocrmill.tasks import Task

log = logging.getLogger(__name__)


def _lock_data_dir(path: Path) -> IO[str]:
    """An exclusive lock on ``path`` (two servers must not resume the same jobs)."""
    handle = open(path, "a+")  # noqa: SIM115 (held until the server stops)
    try:
        import fcntl

        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except ImportError:  # not POSIX: no lock
        pass
    except OSError:
        handle.close()
        raise ConfigError(
            f"another `ocrmill serve` is using the data directory {path.parent}; "
            "stop it or pass a different --data-dir"
        ) from None
    return handle


class Service:
    """What the routes use: the pool, jobs, admission and metrics."""

    def __init__(self, settings: ServerSettings, metrics: ServerMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        queue_size = settings.limits.max_queue + settings.feed_window
        self.pool = WorkerPool(
            settings.plan,
            settings.config,
            dataclasses.replace(settings.pool, queue_size=queue_size),
        )
        self.store = AsyncJobStore(settings.data_dir / "jobs.sqlite3")
        self.jobs = JobManager(settings, self.store, self.pool, metrics)
        self.expiry = JobExpiry(self.jobs, settings.limits.job_ttl_s)
        self.admission = Admission(settings.limits.max_queue)
        self.tmp_dir = settings.data_dir / "tmp"
        self.fatal: OcrmillError | None = None
        self.warmed = False  # every worker has been ready once
        self.on_fatal: Callable[[OcrmillError], None] | None = None
        self._lock: IO[str] | None = None
        self._watcher: asyncio.Task[None] | None = None
        metrics.watch(self.snapshot)

    # -- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        await asyncio.to_thread(self.prepare)
        await self.store.open()
        await asyncio.to_thread(self.pool.start, False)
        self._watcher = asyncio.create_task(self._wait_ready(), name="ocrmill-warmup")
        await self.expiry.start()
        await self.jobs.start()

    def prepare(self) -> None:
        """Create and lock the data directory (idempotent; blocking: call from a thread)."""
        if self._lock is not None:
            return
        try:
            self.settings.data_dir.mkdir(parents=True, exist_ok=True)
            self._lock = _lock_data_dir(self.settings.data_dir / "lock")
            shutil.rmtree(self.tmp_dir, ignore_errors=True)  # single-image uploads of a past run
            self.tmp_dir.mkdir()
        except OSError as exc:
            raise ConfigError(
                f"cannot use the data directory {self.settings.data_dir}: {exc.strerror or exc}"
            ) from None

    async def _wait_ready(self) -> None:
        started = time.monotonic()
        try:
            await asyncio.to_thread(self.pool.wait_ready, self.settings.pool.start_timeout_s)
        except OcrmillError as err:
            self.fatal = err
            log.error("the worker pool cannot start: %s", err.message)
            if self.on_fatal is not None:
                self.on_fatal(err)
            return
        self.warmed = True
        log.info(
            "%d worker(s) ready after %.1f s",
            len(self.settings.plan.slots),
            time.monotonic() - started,
        )

    async def stop(self) -> None:
        """Stop feeding jobs and kill the workers; unfinished jobs resume on the next start."""
        self.jobs.stop_feeding()
        await self.expiry.stop()
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        await asyncio.to_thread(self.pool.shutdown, wait=False, kill=True)
        await self.jobs.wait_stopped()
        await self.store.close()
        await asyncio.to_thread(shutil.rmtree, self.tmp_dir, True)
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    # -- state ------------------------------------------------------------------------

    def readiness(self) -> dict[str, Any]:
        """Ready once every worker has warmed up (a worker being replaced later does not
        make the server unready: its tasks wait in the queue); never after a fatal error."""
        workers = self.pool.metrics()["workers"]
        ready = sum(w["state"] in ("idle", "busy") for w in workers)
        return {
            "ready": self.fatal is None and self.warmed and ready > 0,
            "workers": len(self.settings.plan.slots),
            "workers_ready": ready,
            "error": self.fatal.message if self.fatal else None,
        }

    def snapshot(self) -> Snapshot:
        """For the metrics collector (called on a scrape thread)."""
        pool = self.pool.metrics()
        gpu: dict[str, int] = {}
        if self.settings.plan.device_kind == "cuda":
            gpu = gpu_memory_by_device({w["pid"]: w["device"] for w in pool["workers"] if w["pid"]})
        return Snapshot(
            pool=pool,
            jobs_active=self.jobs.queue.active,
            job_pages_pending=self.jobs.queue.pending_pages,
            job_pages_in_pool=self.jobs.feeder.in_flight,
            ocr_in_use=self.admission.in_use,
            ocr_capacity=self.admission.capacity,
            gpu_memory=gpu,
        )

    def check_serving(self) -> None:
        """503 while the workers cannot take work (failed, or still loading models)."""
        if self.fatal is not None:
            raise ApiError(503, "unavailable", f"the OCR workers failed: {self.fatal.message}")
        if not self.warmed:
            raise overloaded("the OCR workers are still starting", 2)

    def new_upload_path(self) -> Path:
        return self.tmp_dir / f"{os.urandom(12).hex()}.upload"

    # -- reading one image ------------------------------------------------------------

    async def read_one(
        self, path: Path, name: str, options: ReadOptions | None, timeout_s: float, started: float
    ) -> Result:
        """Read ``path`` in a worker; ``504`` when ``timeout_s`` after ``started`` passes."""
        task = Task(id=self.pool.new_task_id(), source=str(path), name=name, options=options)
        try:
            future = self.pool.submit(task, block=False)
        except QueueFullError:
            raise overloaded(
                "the OCR queue is full; retry later", self.admission.retry_after()
            ) from None
        except OcrmillError as err:
            raise self._unavailable(err) from None
        left = started + timeout_s - time.monotonic()
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), max(0.001, left))
        except asyncio.TimeoutError:
            future.cancel()  # still queued: never runs; already running: result dropped
            raise ApiError(
                504, "timeout", f"{name}: no result within the request deadline of {timeout_s:g} s"
            ) from None
        except OcrmillError as err:  # the pool stopped or failed while we waited
            raise self._unavailable(err) from None

    def _unavailable(self, err: OcrmillError) -> ApiError:
        if isinstance(err, PoolClosedError):
            return ApiError(503, "unavailable", "the server is shutting down")
        self.fatal = self.fatal or err  # the pool gave up: /readyz says so from now on
        return ApiError(503, "unavailable", f"the OCR workers failed: {err.message}")
