"""Asynchronous jobs on the event loop: creation from uploaded files, deletion, reading their
state, resume after a restart. Reading is the job feeder's (:mod:`ocrmill.server.feeder`, the
run layer in a thread) and expiry the sweeper's (:mod:`ocrmill.server.expiry`).

SQLite calls go to the store's thread, file-system work (PDF page counts, deleting a job's
files) to ``asyncio.to_thread``. Restart behaviour: results are committed as they arrive. A
job that was unfinished when the server stopped (or was killed) is resumed on the next start
on the same data directory: pages without a result are read again (the ones that were in a
worker at the time are read twice; each is recorded once). A job that cannot be resumed (its
stored options are no longer valid, or its uploaded files are gone) is marked ``failed``
with the reason. Its uploaded files are kept until it finishes, then deleted; its results
are deleted ``job_ttl_s`` after it finished.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from pathlib import Path

from ocrmill.batch.sources import document_tasks
from ocrmill.errors import OcrmillError
from ocrmill.results import PageFailure, result_to_json
from ocrmill.runtime.pool import WorkerPool
from ocrmill.server.api_errors import overloaded, too_large
from ocrmill.server.documents import remove_documents
from ocrmill.server.feeder import ActiveJob, JobFeeder, JobQueue, JobSink, count_result
from ocrmill.server.metrics import ServerMetrics
from ocrmill.server.schemas import JobQuery
from ocrmill.server.settings import ServerSettings
from ocrmill.server.store import AsyncJobStore, Completion, ItemRow, JobRow, ResultRow
from ocrmill.server.uploads import SavedFile

log = logging.getLogger(__name__)


def _plan_items(
    files: list[SavedFile], max_pages: int
) -> tuple[list[ItemRow], list[tuple[ItemRow, PageFailure]]]:
    """One item per page of every file: an image, each page of a PDF or multi-page TIFF
    (:func:`~ocrmill.batch.sources.document_tasks`; runs in a thread: files are opened)."""
    items: list[ItemRow] = []
    failures: list[tuple[ItemRow, PageFailure]] = []
    for saved in files:
        for task in document_tasks(str(saved.path), saved.name):
            row = ItemRow(
                len(items) + len(failures), saved.name, saved.path.name, task.kind, task.page
            )
            if task.failure is not None:
                failures.append((row, task.failure))
            else:
                items.append(row)
            if len(items) + len(failures) > max_pages:
                raise too_large(f"a job may hold at most {max_pages:,} images and PDF pages")
    return items, failures


class JobManager:
    """Creates, deletes, resumes and reports jobs (event loop side)."""

    def __init__(
        self,
        settings: ServerSettings,
        store: AsyncJobStore,
        pool: WorkerPool,
        metrics: ServerMetrics,
    ) -> None:
        self.settings = settings
        self.store = store
        self.metrics = metrics
        self.jobs_dir = settings.data_dir / "jobs"
        self.queue = JobQueue(store, self._notify_threadsafe)
        self._watchers: dict[str, asyncio.Event] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        from ocrmill import __version__

        self.sink = sink = JobSink(
            self.queue,
            store,
            self._notify_threadsafe,
            settings.data_dir,
            software=f"ocrmill {__version__}",
            max_pixels=settings.config.decode.max_pixels,
        )
        self.feeder = JobFeeder(self.queue, sink, pool, metrics, settings.feed_window)

    # -- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Resume unfinished jobs, then start feeding."""
        self._loop = asyncio.get_running_loop()
        await asyncio.to_thread(self.jobs_dir.mkdir, parents=True, exist_ok=True)
        await self._remove_stray_directories()
        for row in await self.store.run(self.store.sync.unfinished_jobs):
            await self._resume(row)
        if self.queue.active:
            log.info(
                "resuming %d unfinished job(s), %d page(s) to read",
                self.queue.active,
                self.queue.pending_pages,
            )
        self.feeder.start()

    def stop_feeding(self) -> None:
        """Take no more pages (call before the pool is stopped)."""
        self.feeder.stop()

    async def wait_stopped(self) -> None:
        """Wait for the feeder to end (after the pool is stopped); unfinished jobs resume on
        the next start."""
        await asyncio.to_thread(self.feeder.join, 30)

    def job_dir(self, job_id: str) -> Path:
        return self.jobs_dir / job_id

    async def _resume(self, row: JobRow) -> None:
        try:
            query = JobQuery(**row.options)
            options = query.to_options(self.settings.config.read)
            if not await asyncio.to_thread(self.job_dir(row.id).is_dir):
                raise FileNotFoundError("its uploaded files are gone")
        except (ValueError, OcrmillError, OSError) as exc:
            reason = getattr(exc, "message", None) or str(exc)
            log.error("job %s cannot be resumed: %s", row.id, reason)
            await self.store.run(
                self.store.sync.fail_job, row.id, f"cannot be resumed: {reason}", time.time()
            )
            await self._remove_files(row.id)
            return
        seq = await self.store.run(self.store.sync.last_seq, row.id)
        formats = query.formats()
        file_pages = await self.store.run(self.store.sync.file_pages, row.id) if formats else {}
        job = ActiveJob(
            id=row.id,
            total=row.total,
            done=row.done,
            failed=row.failed,
            status=row.status,
            options=options,
            pdf_dpi=row.pdf_dpi,
            directory=self.job_dir(row.id),
            seq=seq,
            formats=formats,
            file_pages=file_pages,
        )
        self.queue.add(job)
        if row.done >= row.total:  # stopped between its last result and being done
            await asyncio.to_thread(self.sink.complete, job)

    async def _remove_stray_directories(self) -> None:
        """Files of jobs the store does not know (killed mid-upload) or that are finished."""
        known = await self.store.run(self.store.sync.unfinished_jobs)
        keep = {row.id for row in known}
        names = await asyncio.to_thread(os.listdir, self.jobs_dir)
        for name in names:
            if name not in keep:
                await asyncio.to_thread(shutil.rmtree, self.jobs_dir / name, True)

    # -- creating and deleting ------------------------------------------------------

    @property
    def pending_pages(self) -> int:
        return self.queue.pending_pages

    def admit(self) -> None:
        """Refuse a new job before its upload is read when the backlog is full."""
        pending = self.pending_pages
        if pending >= self.settings.limits.max_pending_pages:
            raise overloaded(
                f"{pending:,} job pages are waiting (limit "
                f"{self.settings.limits.max_pending_pages:,}); retry later",
                self._retry_after(pending),
            )

    def _retry_after(self, pending: int) -> int:
        return 30 if pending > self.settings.feed_window else 5

    async def create(
        self, job_id: str, files: list[SavedFile], query: JobQuery, pdf_dpi: int
    ) -> JobRow:
        """Record a job for ``files`` (already in :meth:`job_dir`) and start feeding it."""
        options = query.to_options(self.settings.config.read)  # validated before storing
        items, failures = await asyncio.to_thread(
            _plan_items, files, self.settings.limits.max_job_pages
        )
        total = len(items) + len(failures)
        limit = self.settings.limits.max_pending_pages
        pending = self.pending_pages
        if pending + len(items) > limit and pending > 0:
            raise overloaded(
                f"this job's {len(items):,} pages would pass the limit of {limit:,} waiting "
                f"job pages ({pending:,} wait now); retry later",
                self._retry_after(pending),
            )
        completions = [
            Completion(job_id, item.idx, seq, False, result_to_json(record))
            for seq, (item, record) in enumerate(failures, start=1)
        ]
        finished = not items
        now = time.time()
        row = JobRow(
            id=job_id,
            status="done" if finished else "queued",
            created_at=now,
            finished_at=now if finished else None,
            total=total,
            done=len(failures),
            failed=len(failures),
            options=query.stored(),
            pdf_dpi=pdf_dpi,
        )
        every_item = sorted([*items, *(item for item, _ in failures)], key=lambda i: i.idx)
        await self.store.run(self.store.sync.create_job, row, every_item, completions)
        for _, record in failures:
            count_result(self.metrics, record)
        if finished:
            await self._remove_files(job_id)
        else:
            file_pages: dict[str, int] = {}
            for item in every_item:
                file_pages[item.file] = file_pages.get(item.file, 0) + 1
            self.queue.add(
                ActiveJob(
                    id=job_id,
                    total=total,
                    done=len(failures),
                    failed=len(failures),
                    status="queued",
                    options=options,
                    pdf_dpi=pdf_dpi,
                    directory=self.job_dir(job_id),
                    seq=len(failures),
                    formats=query.formats(),
                    file_pages=file_pages,
                )
            )
        return row

    async def delete(self, job_id: str) -> bool:
        """Stop reading a job's pages, forget its results and remove its files."""
        job = self.queue.remove(job_id)
        existed = await self.store.run(self.store.sync.delete_job, job_id)
        await self._remove_files(job_id)
        await asyncio.to_thread(remove_documents, self.settings.data_dir, job_id)
        self._notify(job_id)
        return existed or job is not None

    async def _remove_files(self, job_id: str) -> None:
        await asyncio.to_thread(shutil.rmtree, self.job_dir(job_id), True)

    # -- reading state ----------------------------------------------------------------

    async def get(self, job_id: str) -> JobRow | None:
        return await self.store.run(self.store.sync.get_job, job_id)

    async def results(self, job_id: str, since: int, limit: int) -> list[ResultRow]:
        return await self.store.run(self.store.sync.results, job_id, since, limit)

    async def file_names(self, job_id: str) -> dict[str, str]:
        """The uploaded files of a job: stored file id -> the name the client sent."""
        return await self.store.run(self.store.sync.file_names, job_id)

    def watch(self, job_id: str) -> asyncio.Event:
        """An event set at the next change of ``job_id`` (take it before reading state)."""
        event = self._watchers.get(job_id)
        if event is None:
            event = self._watchers[job_id] = asyncio.Event()
        return event

    def _notify(self, job_id: str) -> None:
        event = self._watchers.pop(job_id, None)
        if event is not None:
            event.set()

    def _notify_threadsafe(self, job_id: str) -> None:
        """From the feeder's thread: wake the watchers of ``job_id`` on the event loop."""
        loop = self._loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._notify, job_id)
            except RuntimeError:  # the loop is closed: the server is stopping
                pass
