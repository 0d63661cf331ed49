"""The batch runner behind ``ocrmill run`` (parent process).

Inputs are enumerated lazily and fed to the worker pool with backpressure; each result is
written to the JSONL sink as soon as it completes, so memory stays flat however many inputs
there are. SIGINT/SIGTERM once: stop feeding, let running tasks finish, flush, report
interrupted; twice: stop at once. A rerun with ``--resume`` skips what the output holds.
"""

from __future__ import annotations

import queue
import signal
import threading
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from ocrmill.batch.progress import Progress
from ocrmill.batch.sinks import JsonlSink, record_key
from ocrmill.batch.sources import InputItem, iter_inputs
from ocrmill.config import ReadOptions
from ocrmill.errors import InternalError
from ocrmill.results import PageFailure, Result
from ocrmill.runtime.pool import PoolClosedError, QueueFullError, WorkerPool
from ocrmill.runtime.worker import Task


@dataclass
class RunSummary:
    read: int
    failed: int
    skipped: int
    interrupted: bool
    summary_line: str


class _Signals:
    """First SIGINT/SIGTERM sets ``stop``; a second raises KeyboardInterrupt."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _Signals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: object) -> None:
        if self.stop.is_set():
            raise KeyboardInterrupt
        self.stop.set()

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _put_done(
    completed: queue.Queue[tuple[Future[Result], InputItem]],
    item: InputItem,
    future: Future[Result],
) -> None:
    completed.put((future, item))


def _task_for(item: InputItem, pool: WorkerPool, pdf_dpi: int, options: ReadOptions | None) -> Task:
    return Task(
        id=pool.new_task_id(),
        source=item.path,
        name=item.name,
        kind="pdf" if item.kind == "pdf" else "image",
        page=item.page,
        pdf_dpi=pdf_dpi,
        options=options,
    )


def run_batch(
    specs: Iterable[str],
    pool: WorkerPool,
    sink: JsonlSink,
    *,
    done_keys: set[tuple[str, int | None]] | None = None,
    pdf_dpi: int = 200,
    options: ReadOptions | None = None,
    progress: Progress | None = None,
    stdin: Any = None,
) -> RunSummary:
    """Read every input of ``specs`` through ``pool`` into ``sink``; one record per input."""
    progress = progress or Progress(enabled=False)
    done_keys = done_keys or set()
    completed: queue.Queue[Future[Result]] = queue.Queue()
    outstanding = 0
    interrupted = False

    def write(result: Result) -> None:
        sink.write(result)
        progress.update(result.ok, None if result.ok else result.code)  # type: ignore[union-attr]

    def drain(block: bool) -> None:
        nonlocal outstanding
        while outstanding:
            try:
                future = completed.get(timeout=0.2) if block else completed.get_nowait()
            except queue.Empty:
                return
            outstanding -= 1
            if future.cancelled() or isinstance(future.exception(), PoolClosedError):
                continue  # stopped before it ran; --resume will read it
            write(future.result())  # raises if the pool failed as a whole
            if block:
                block = False  # got one; now take whatever else is ready without waiting

    with _Signals() as signals:
        try:
            for item in iter_inputs(specs, stdin=stdin):
                if signals.stop.is_set():
                    interrupted = True
                    break
                if record_key(item.name, item.page) in done_keys:
                    progress.skip()
                    continue
                if item.kind == "error":
                    err = item.error or InternalError(f"{item.name}: cannot be read")
                    write(PageFailure.from_error(item.name, err, item.page))
                    continue
                task = _task_for(item, pool, pdf_dpi, options)
                future: Future[Result] | None = None
                while future is None and not signals.stop.is_set():
                    try:
                        future = pool.submit(task, block=True, timeout=0.2)
                    except QueueFullError:
                        drain(block=False)
                if future is None:
                    break
                outstanding += 1
                future.add_done_callback(completed.put)
                drain(block=False)
            cancelled = False
            while outstanding:
                if signals.stop.is_set() and not cancelled:
                    # Stop feeding; tasks already running finish and are written.
                    interrupted = cancelled = True
                    pool.cancel_pending()
                drain(block=True)
            interrupted = interrupted or signals.stop.is_set()
        except KeyboardInterrupt:
            interrupted = True
            pool.shutdown(wait=False, kill=True)
            drain(block=False)
    line = progress.close()
    failed = sum(progress.failed.values())
    return RunSummary(progress.done, failed, progress.skipped, interrupted, line)
