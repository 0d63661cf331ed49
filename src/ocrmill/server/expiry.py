"""Expiry of finished jobs: their results and files are deleted ``job_ttl_s`` after they
finished (runs on the event loop; store calls go to the store's thread)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from ocrmill.server.jobs import JobManager

log = logging.getLogger(__name__)


class JobExpiry:
    """Deletes expired jobs at start and then every ``min(60, ttl / 4)`` seconds."""

    def __init__(self, jobs: JobManager, ttl_s: float) -> None:
        self.jobs = jobs
        self.ttl_s = ttl_s
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.expire()
        self._task = asyncio.create_task(self._sweep(), name="ocrmill-expiry")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _sweep(self) -> None:
        interval = min(60.0, max(0.5, self.ttl_s / 4))
        while True:
            await asyncio.sleep(interval)
            try:
                await self.expire()
            except Exception:
                log.exception("removing expired jobs failed")

    async def expire(self) -> None:
        store = self.jobs.store
        cutoff = time.time() - self.ttl_s
        for job_id in await store.run(store.sync.expired_jobs, cutoff):
            await self.jobs.delete(job_id)
