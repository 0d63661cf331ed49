"""Jobs through the run layer: one :func:`ocrmill.batch.run` for the server's lifetime, in its
own thread, reading every active job's pages with the shared worker pool.

* :class:`JobQueue` is its source: it takes the jobs in turn, a page at a time, loading
  unread pages from the store in small chunks, and waits when there is nothing to read. A
  job becomes ``running`` as soon as its first page is in the pool.
* :class:`JobSink` records each result in the store as it arrives (one transaction each,
  so a killed server loses nothing recorded), finishes jobs and tells the event loop.
* :class:`JobMetrics` is its progress reporter (Prometheus counters).

The pool holds at most ``feed_window`` job pages at once (the run's executor bounds it), so
single images (``POST /v1/ocr``) always find room in its queue. Store calls from this thread
go to the store's own thread (:meth:`~ocrmill.server.store.AsyncJobStore.call`).
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ocrmill.batch import run
from ocrmill.batch.executors import PoolExecutor
from ocrmill.config import ReadOptions
from ocrmill.errors import OcrmillError
from ocrmill.results import PageFailure, Result, result_to_json
from ocrmill.runtime.pool import WorkerPool
from ocrmill.server.metrics import ServerMetrics
from ocrmill.server.store import AsyncJobStore, Completion, ItemRow, JobCounters, JobStatus
from ocrmill.tasks import Task

log = logging.getLogger(__name__)

FEED_CHUNK = 32  # unread pages loaded from the store at a time, per job
IDLE_WAIT_S = 0.5  # how long the source waits for work before looking at the stop flag


@dataclass
class ActiveJob:
    """An unfinished job as the feeder sees it (the store holds the truth)."""

    id: str
    total: int
    done: int
    failed: int
    status: JobStatus
    options: ReadOptions | None
    pdf_dpi: int
    directory: Path
    seq: int = 0  # last completion number recorded
    cursor: int = -1  # highest page index taken from the store
    exhausted: bool = False  # every unread page has been taken
    buffer: collections.deque[ItemRow] = field(default_factory=collections.deque)
    formats: tuple[str, ...] = ()  # documents to make per uploaded file
    file_pages: dict[str, int] = field(default_factory=dict)  # pages per file (with formats)
    started: bool = False  # a page is in the pool: the store says "running" (feeding thread)

    @property
    def has_work(self) -> bool:
        return bool(self.buffer) or not self.exhausted


class JobQueue:
    """The active jobs and the pages in flight. Thread-safe: the event loop adds and removes
    jobs, the run's feeding thread takes pages, its consuming thread returns results."""

    def __init__(self, store: AsyncJobStore, notify: Callable[[str], None]) -> None:
        self.store = store
        self.notify = notify  # a job's state changed (thread-safe; wakes its watchers)
        self._jobs: dict[str, ActiveJob] = {}
        self._rotation: collections.deque[str] = collections.deque()
        self._taken: dict[int, tuple[ActiveJob, ItemRow]] = {}  # by id() of the page's task
        self._changed = threading.Condition()

    # -- the event loop's side -----------------------------------------------------------

    def add(self, job: ActiveJob) -> None:
        with self._changed:
            self._jobs[job.id] = job
            self._rotation.append(job.id)
            self._changed.notify_all()

    def remove(self, job_id: str) -> ActiveJob | None:
        """Forget a job: pages not taken yet are never read; results of pages in flight
        are dropped when they come back."""
        with self._changed:
            return self._jobs.pop(job_id, None)

    @property
    def active(self) -> int:
        return len(self._jobs)

    @property
    def pending_pages(self) -> int:
        """Pages of active jobs without a result."""
        with self._changed:
            return sum(job.total - job.done for job in self._jobs.values())

    # -- the run's source (feeding thread) ----------------------------------------------------

    def tasks(self, stop: threading.Event) -> Iterator[Task]:
        """Pages to read, the jobs taken in turn, until ``stop`` is set."""
        while not stop.is_set():
            job = self._next_job()
            if job is None:
                with self._changed:
                    self._changed.wait(IDLE_WAIT_S)
                continue
            if not job.buffer:
                self._load(job)
                continue
            item = job.buffer.popleft()
            task = Task(
                id=0,
                source=str(job.directory / item.file),
                name=item.name,
                kind=item.kind,
                page=item.page,
                pdf_dpi=job.pdf_dpi,
                options=job.options,
            )
            with self._changed:
                self._taken[id(task)] = (job, item)
            yield task
            # The run's executor asks for the next page only once it has handed this one to
            # the pool: from now on the job is being read.
            if not job.started:
                self._started(job)

    def _next_job(self) -> ActiveJob | None:
        with self._changed:
            for _ in range(len(self._rotation)):
                job = self._jobs.get(self._rotation[0])
                if job is None:
                    self._rotation.popleft()
                    continue
                self._rotation.rotate(-1)
                if job.has_work:
                    return job
        return None

    def _started(self, job: ActiveJob) -> None:
        """Say ``running`` (with the counters recorded so far) before the first result."""
        job.started = True
        self.store.call(self.store.sync.start_job, job.id)
        self.notify(job.id)

    def _load(self, job: ActiveJob) -> None:
        rows = self.store.call(self.store.sync.unread_items, job.id, job.cursor, FEED_CHUNK)
        if not rows:
            job.exhausted = True
            return
        job.cursor = rows[-1].idx
        job.buffer.extend(rows)

    # -- the run's sink (consuming thread) ----------------------------------------------------

    def returned(self, task: Task) -> tuple[ActiveJob, ItemRow] | None:
        """The job page a result belongs to (None when its job was deleted meanwhile)."""
        with self._changed:
            taken = self._taken.pop(id(task), None)
            if taken is None:
                return None
            return taken if taken[0].id in self._jobs else None

    def finish(self, job: ActiveJob) -> None:
        with self._changed:
            self._jobs.pop(job.id, None)


class JobSink:
    """Records job results in the store as they come (see the module docstring)."""

    def __init__(
        self,
        queue: JobQueue,
        store: AsyncJobStore,
        notify: Callable[[str], None],
        data_dir: Path,
        software: str = "ocrmill",
        *,
        max_pixels: int,
    ) -> None:
        self.queue = queue
        self.store = store
        self.notify = notify
        self.data_dir = data_dir
        self.software = software
        self.max_pixels = max_pixels  # images embedded in searchable PDFs, as images read

    def write(self, result: Result, task: Task | None = None) -> None:
        taken = self.queue.returned(task) if task is not None else None
        if taken is None:
            return  # its job was deleted
        job, item = taken
        result = _as_uploaded(result, str(job.directory / item.file), item.name)
        job.seq += 1
        job.done += 1
        job.failed += 0 if result.ok else 1
        finished = job.done >= job.total
        # A job with documents is done once they are written, not when its last result is
        # (a client that sees "done" finds every document).
        job.status = "done" if finished and not job.formats else "running"
        counters = JobCounters(
            job.id, job.status, job.done, job.failed, time.time() if job.status == "done" else None
        )
        completion = Completion(job.id, item.idx, job.seq, result.ok, result_to_json(result))
        self.store.call(self.store.sync.record, [completion], [counters])
        if job.formats:
            self._documents(job, item)
        if finished:
            self.finish(job)
        self.notify(job.id)

    def complete(self, job: ActiveJob) -> None:
        """Finish a job found with every page recorded but not done (the server stopped
        between its last result and its documents): make them all, then finish it."""
        for file in job.file_pages if job.formats else ():
            self._make_documents(job, file)
        self.finish(job)
        self.notify(job.id)

    def finish(self, job: ActiveJob) -> None:
        """Mark a job whose every page is recorded done (documents made), drop its uploads."""
        if job.status != "done":
            job.status = "done"
            self.store.call(self.store.sync.finish_job, job.id, time.time())
        self.queue.finish(job)
        shutil.rmtree(job.directory, ignore_errors=True)

    def _documents(self, job: ActiveJob, item: ItemRow) -> None:
        """Make the documents of ``item``'s file once all its pages are recorded."""
        recorded = self.store.call(self.store.sync.recorded_pages, job.id, item.file)
        if recorded >= job.file_pages.get(item.file, 1):
            self._make_documents(job, item.file)

    def _make_documents(self, job: ActiveJob, file: str) -> None:
        from ocrmill.server.documents import make_documents

        upload = job.directory / file
        make_documents(
            self.store,
            self.data_dir,
            job.id,
            upload,
            job.formats,
            self.software,
            max_pixels=self.max_pixels,
        )

    def close(self) -> None:
        pass


def _as_uploaded(result: Result, stored: str, name: str) -> Result:
    """Name the upload as the client sent it, never the server's path (a PDF page rendered
    in a worker, or its error message, carries the stored file's path)."""
    if isinstance(result, PageFailure):
        message = result.message.replace(stored, name)
        return dataclasses.replace(result, input=name, message=message)
    if result.input != name:
        return dataclasses.replace(result, input=name)
    return result


class JobMetrics:
    """The run's progress reporter: job results and errors by code, for ``/metrics``."""

    def __init__(self, metrics: ServerMetrics) -> None:
        self.metrics = metrics

    def skipped(self, count: int) -> None:
        pass

    def total(self, count: int) -> None:
        pass  # a server's run never ends: jobs report their own page counts

    def update(self, result: Result) -> None:
        count_result(self.metrics, result)

    def close(self, tally: object) -> None:
        pass


def count_result(metrics: ServerMetrics, result: Result) -> None:
    metrics.results.labels("job", "true" if result.ok else "false").inc()
    if isinstance(result, PageFailure):
        metrics.errors.labels(result.code).inc()


class JobFeeder:
    """Runs the jobs' one :func:`~ocrmill.batch.run` in a thread until :meth:`stop`."""

    def __init__(
        self,
        queue: JobQueue,
        sink: JobSink,
        pool: WorkerPool,
        metrics: ServerMetrics,
        window: int,
    ) -> None:
        self.queue = queue
        self.sink = sink
        self.pool = pool
        self.metrics = metrics
        self.window = window
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ocrmill-jobs", daemon=True)
        self.executor = PoolExecutor(pool, max_in_flight=window)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Take no more pages; pages in the pool finish (or die with it) and stay unread
        when they do not come back: the next start reads them."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    @property
    def in_flight(self) -> int:
        """Job pages in the pool now (at most the window)."""
        return self.executor.in_flight

    def _run(self) -> None:
        try:
            run(
                self.queue.tasks(self._stop),
                self.sink,
                executor=self.executor,
                progress=JobMetrics(self.metrics),
                stop=self._stop,
            )
        except OcrmillError as err:  # the pool failed for good; jobs resume after a restart
            log.error("jobs wait: the worker pool cannot take work: %s", err.message)
        except Exception:
            log.exception("the job feeder failed; unfinished jobs resume after a restart")
