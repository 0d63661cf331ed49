"""Asynchronous jobs: creation from uploaded files, the feeder that hands their pages to the
pool with backpressure, the recorder that stores results, resume after restart, TTL expiry.

Everything here runs on the event loop except what it sends elsewhere: SQLite calls go
to the store's thread, file-system work (PDF page counts, deleting a job's files) to
``asyncio.to_thread``, and reading happens in the pool's worker processes. Pool futures
complete on the pool's manager thread; their callbacks only hop back to the loop.

Restart behaviour: results are committed as they arrive. A job that was unfinished when
the server stopped (or was killed) is resumed on the next start on the same data
directory: items without a result are read again (the ones that were in a worker at the
time are read twice; each is recorded once). Its uploaded files are kept until it
finishes, then deleted; its results are deleted ``job_ttl_s`` after it finished.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import functools
import logging
import os
import shutil
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from ocrmill.config import ReadOptions
from ocrmill.errors import InputError, InternalError, OcrmillError
from ocrmill.results import PageFailure, Result, result_to_json
from ocrmill.runtime.pool import PoolClosedError, PoolStartError, QueueFullError, WorkerPool
from ocrmill.runtime.tasks import Task
from ocrmill.server.api_errors import overloaded, too_large
from ocrmill.server.metrics import ServerMetrics
from ocrmill.server.schemas import ReadQuery
from ocrmill.server.settings import ServerSettings
from ocrmill.server.store import (
    AsyncJobStore,
    Completion,
    ItemRow,
    JobRow,
    JobStatus,
    Progress,
    ResultRow,
)
from ocrmill.server.uploads import SavedFile

log = logging.getLogger(__name__)

FEED_CHUNK = 32  # items read from the store at a time, per job
RECORD_BATCH = 512  # results committed in one transaction at most


@dataclass
class ActiveJob:
    """In-memory state of an unfinished job (the store holds the truth)."""

    id: str
    total: int
    done: int
    failed: int
    status: JobStatus
    options: ReadOptions | None
    pdf_dpi: int
    directory: Path
    seq: int = 0  # last completion number recorded
    cursor: int = -1  # highest item index taken from the store
    exhausted: bool = False  # every unread item has been taken
    buffer: collections.deque[ItemRow] = field(default_factory=collections.deque)
    running: dict[int, tuple[ItemRow, Future[Result]]] = field(default_factory=dict)

    @property
    def has_work(self) -> bool:
        return bool(self.buffer) or not self.exhausted


def _plan_items(
    files: list[SavedFile], max_pages: int
) -> tuple[list[ItemRow], list[tuple[ItemRow, PageFailure]]]:
    """One item per image file and per PDF page (runs in a thread: PDFs are opened)."""
    from ocrmill.pipeline.pdf import is_pdf, pdf_page_count

    items: list[ItemRow] = []
    failures: list[tuple[ItemRow, PageFailure]] = []

    def check() -> None:
        if len(items) + len(failures) > max_pages:
            raise too_large(f"a job may hold at most {max_pages:,} images and PDF pages")

    for saved in files:
        index = len(items) + len(failures)
        if not is_pdf(saved.path):
            items.append(ItemRow(index, saved.name, saved.path.name, "image", None))
            check()
            continue
        try:
            pages = pdf_page_count(saved.path)
            if pages == 0:
                raise InputError(f"{saved.name}: the PDF has no pages")
        except OcrmillError as err:
            message = err.message.replace(str(saved.path), saved.name)
            record = PageFailure(saved.name, err.code, message)
            failures.append((ItemRow(index, saved.name, saved.path.name, "pdf", None), record))
            check()
            continue
        if index + pages > max_pages:
            raise too_large(f"a job may hold at most {max_pages:,} images and PDF pages")
        items.extend(
            ItemRow(index + page, saved.name, saved.path.name, "pdf", page) for page in range(pages)
        )
    return items, failures


class JobManager:
    """Creates, feeds, records, resumes and expires jobs (event loop side)."""

    def __init__(
        self,
        settings: ServerSettings,
        store: AsyncJobStore,
        pool: WorkerPool,
        metrics: ServerMetrics,
    ) -> None:
        self.settings = settings
        self.store = store
        self.pool = pool
        self.metrics = metrics
        self.jobs_dir = settings.data_dir / "jobs"
        self.window = settings.feed_window
        self.active: dict[str, ActiveJob] = {}
        self.pending_pages = 0  # items of active jobs without a result
        self.in_pool = 0  # items handed to the pool and not yet back
        self._rotation: collections.deque[str] = collections.deque()
        self._watchers: dict[str, asyncio.Event] = {}
        self._wake = asyncio.Event()
        self._completed: asyncio.Queue[tuple[str, int, Future[Result]]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._submit_failed = False

    # -- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await asyncio.to_thread(self.jobs_dir.mkdir, parents=True, exist_ok=True)
        await self._expire()
        await self._remove_stray_directories()
        for row in await self.store.run(self.store.sync.unfinished_jobs):
            await self._activate(row)
        if self.active:
            log.info(
                "resuming %d unfinished job(s), %d page(s) to read",
                len(self.active),
                self.pending_pages,
            )
        self._tasks = [
            asyncio.create_task(self._feed(), name="ocrmill-feeder"),
            asyncio.create_task(self._record(), name="ocrmill-recorder"),
            asyncio.create_task(self._sweep(), name="ocrmill-expiry"),
        ]

    async def stop(self) -> None:
        """Stop feeding and recording; unfinished jobs resume on the next start."""
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for job in self.active.values():
            for _, future in job.running.values():
                future.cancel()

    def job_dir(self, job_id: str) -> Path:
        return self.jobs_dir / job_id

    async def _activate(self, row: JobRow) -> None:
        try:
            options = ReadQuery(**row.options).to_options(self.settings.config.read)
        except (ValueError, OcrmillError):
            options = None
        job = ActiveJob(
            id=row.id,
            total=row.total,
            done=row.done,
            failed=row.failed,
            status=row.status,
            options=options,
            pdf_dpi=row.pdf_dpi,
            directory=self.job_dir(row.id),
            seq=await self.store.run(self.store.sync.last_seq, row.id),
        )
        self.active[job.id] = job
        self._rotation.append(job.id)
        self.pending_pages += job.total - job.done
        self._wake.set()

    async def _remove_stray_directories(self) -> None:
        """Files of jobs the store does not know (killed mid-upload) or that are finished."""
        known = await self.store.run(self.store.sync.unfinished_jobs)
        keep = {row.id for row in known}
        names = await asyncio.to_thread(os.listdir, self.jobs_dir)
        for name in names:
            if name not in keep:
                await asyncio.to_thread(shutil.rmtree, self.jobs_dir / name, True)

    # -- creating and deleting ------------------------------------------------------

    def admit(self) -> None:
        """Refuse a new job before its upload is read when the backlog is full."""
        if self.pending_pages >= self.settings.limits.max_pending_pages:
            raise overloaded(
                f"{self.pending_pages:,} job pages are waiting (limit "
                f"{self.settings.limits.max_pending_pages:,}); retry later",
                self._retry_after(),
            )

    def _retry_after(self) -> int:
        return 30 if self.pending_pages > self.window else 5

    async def create(
        self, job_id: str, files: list[SavedFile], query: ReadQuery, pdf_dpi: int
    ) -> JobRow:
        """Record a job for ``files`` (already in :meth:`job_dir`) and start feeding it."""
        options = query.to_options(self.settings.config.read)  # validated before storing
        items, failures = await asyncio.to_thread(
            _plan_items, files, self.settings.limits.max_job_pages
        )
        total = len(items) + len(failures)
        limit = self.settings.limits.max_pending_pages
        if self.pending_pages + len(items) > limit and self.pending_pages > 0:
            raise overloaded(
                f"this job's {len(items):,} pages would pass the limit of {limit:,} waiting "
                f"job pages ({self.pending_pages:,} wait now); retry later",
                self._retry_after(),
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
            self._count_result(record)
        if finished:
            await self._remove_files(job_id)
        else:
            job = ActiveJob(
                id=job_id,
                total=total,
                done=len(failures),
                failed=len(failures),
                status="queued",
                options=options,
                pdf_dpi=pdf_dpi,
                directory=self.job_dir(job_id),
                seq=len(failures),
            )
            self.active[job_id] = job
            self._rotation.append(job_id)
            self.pending_pages += len(items)
            self._wake.set()
        return row

    async def delete(self, job_id: str) -> bool:
        """Cancel a job's queued pages, forget its results and remove its files."""
        job = self.active.pop(job_id, None)
        if job is not None:
            self.pending_pages -= job.total - job.done
            for _, future in job.running.values():
                future.cancel()  # queued ones never run; running ones are dropped
        existed = await self.store.run(self.store.sync.delete_job, job_id)
        await self._remove_files(job_id)
        self._notify(job_id)
        return existed or job is not None

    async def _remove_files(self, job_id: str) -> None:
        await asyncio.to_thread(shutil.rmtree, self.job_dir(job_id), True)

    # -- reading state ----------------------------------------------------------------

    async def get(self, job_id: str) -> JobRow | None:
        return await self.store.run(self.store.sync.get_job, job_id)

    async def results(self, job_id: str, since: int, limit: int) -> list[ResultRow]:
        return await self.store.run(self.store.sync.results, job_id, since, limit)

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

    # -- feeder -------------------------------------------------------------------------

    async def _feed(self) -> None:
        """Keep up to ``window`` job pages in the pool, taking jobs in turn."""
        while True:
            try:
                wait = self._fill()
            except _NeedItems as need:
                await self._load(need.job)
                continue
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)
            self._wake.clear()

    def _next_job(self) -> ActiveJob | None:
        for _ in range(len(self._rotation)):
            job = self.active.get(self._rotation[0])
            if job is None:
                self._rotation.popleft()
                continue
            self._rotation.rotate(-1)
            if job.has_work:
                return job
        return None

    def _fill(self) -> float:
        """Submit pages until the window is full; returns how long to wait before more."""
        while self.in_pool < self.window and not self._stopping:
            job = self._next_job()
            if job is None:
                return 5.0
            if not job.buffer:
                raise _NeedItems(job)
            item = job.buffer.popleft()
            task = Task(
                id=self.pool.new_task_id(),
                source=str(job.directory / item.file),
                name=item.name,
                kind=item.kind,
                page=item.page,
                pdf_dpi=job.pdf_dpi,
                options=job.options,
            )
            try:
                future = self.pool.submit(task, block=False)
            except (QueueFullError, PoolClosedError):
                job.buffer.appendleft(item)
                return 0.1  # the pool queue is full (single images use it too): soon
            except OcrmillError as err:  # the pool failed for good; jobs resume after restart
                job.buffer.appendleft(item)
                if not self._submit_failed:
                    log.error("jobs wait: the worker pool cannot take work: %s", err.message)
                self._submit_failed = True
                return 5.0
            self._submit_failed = False
            self.in_pool += 1
            job.running[item.idx] = (item, future)
            future.add_done_callback(functools.partial(self._on_done, job.id, item.idx))
        return 5.0

    async def _load(self, job: ActiveJob) -> None:
        rows = await self.store.run(self.store.sync.unread_items, job.id, job.cursor, FEED_CHUNK)
        if job.id not in self.active:
            return
        if not rows:
            job.exhausted = True
            return
        job.cursor = rows[-1].idx
        job.buffer.extend(rows)

    def _on_done(self, job_id: str, idx: int, future: Future[Result]) -> None:
        """Runs on the pool's manager thread (or wherever the future completed)."""
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: we are shutting down
            loop.call_soon_threadsafe(self._completed.put_nowait, (job_id, idx, future))

    # -- recorder -----------------------------------------------------------------------

    async def _record(self) -> None:
        while True:
            batch = [await self._completed.get()]
            while not self._completed.empty() and len(batch) < RECORD_BATCH:
                batch.append(self._completed.get_nowait())
            try:
                await self._record_batch(batch)
            except Exception:  # never let the recorder die: log, keep serving
                log.exception("recording job results failed")
            self._wake.set()

    async def _record_batch(self, batch: list[tuple[str, int, Future[Result]]]) -> None:
        completions: list[Completion] = []
        touched: dict[str, ActiveJob] = {}
        for job_id, idx, future in batch:
            self.in_pool -= 1
            job = self.active.get(job_id)
            entry = job.running.pop(idx, None) if job is not None else None
            if job is None or entry is None:
                continue  # the job was deleted
            result = self._outcome(job, entry[0], future)
            if result is None:
                continue  # not read (shutdown): stays unread, resumed on the next start
            job.seq += 1
            job.done += 1
            job.failed += 0 if result.ok else 1
            self.pending_pages -= 1
            self._count_result(result)
            completions.append(Completion(job_id, idx, job.seq, result.ok, result_to_json(result)))
            touched[job_id] = job
        if not completions:
            return
        now = time.time()
        progress = []
        finished = []
        for job in touched.values():
            finished_at = None
            if job.done >= job.total:
                job.status, finished_at = "done", now
                finished.append(job)
            else:
                job.status = "running"
            progress.append(Progress(job.id, job.status, job.done, job.failed, finished_at))
        await self.store.run(self.store.sync.record, completions, progress)
        for job in finished:
            self.active.pop(job.id, None)
            await self._remove_files(job.id)
        for job_id in touched:
            self._notify(job_id)

    def _outcome(self, job: ActiveJob, item: ItemRow, future: Future[Result]) -> Result | None:
        if future.cancelled():
            return None
        exc = future.exception()
        if isinstance(exc, (PoolClosedError, PoolStartError)):
            return None
        if exc is not None:
            err = exc if isinstance(exc, OcrmillError) else InternalError(repr(exc))
            return PageFailure.from_error(item.name, err, item.page)
        result = future.result()
        # Name the upload as the client sent it, never the server's path (a PDF page
        # rendered in a worker carries the stored file's path as its input name).
        stored = str(job.directory / item.file)
        if isinstance(result, PageFailure):
            message = result.message.replace(stored, item.name)
            return dataclasses.replace(result, input=item.name, message=message)
        if result.input != item.name:
            return dataclasses.replace(result, input=item.name)
        return result

    def _count_result(self, result: Result) -> None:
        self.metrics.results.labels("job", "true" if result.ok else "false").inc()
        if isinstance(result, PageFailure):
            self.metrics.errors.labels(result.code).inc()

    # -- expiry ---------------------------------------------------------------------------

    async def _sweep(self) -> None:
        interval = min(60.0, max(0.5, self.settings.limits.job_ttl_s / 4))
        while True:
            await asyncio.sleep(interval)
            try:
                await self._expire()
            except Exception:
                log.exception("removing expired jobs failed")

    async def _expire(self) -> None:
        cutoff = time.time() - self.settings.limits.job_ttl_s
        for job_id in await self.store.run(self.store.sync.expired_jobs, cutoff):
            await self.store.run(self.store.sync.delete_job, job_id)
            await self._remove_files(job_id)
            self._notify(job_id)


class _NeedItems(Exception):
    """The feeder must load more items of ``job`` from the store (an await) first."""

    def __init__(self, job: ActiveJob) -> None:
        self.job = job
