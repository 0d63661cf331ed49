"""``run``: the one way to read many inputs, behind ``ocrmill run``, the server's jobs, the
video filter and Python users (runs in the parent process).

Inputs become tasks lazily (:mod:`ocrmill.batch.sources`), an executor reads them
(:mod:`ocrmill.batch.executors`), and every record goes to every sink
(:mod:`ocrmill.batch.sinks`) as soon as it is read, so memory stays flat however many
inputs there are. SIGINT/SIGTERM once (when called from the main thread): stop taking
tasks, let running ones finish, flush, report ``interrupted``; twice: stop at once.
With ``resume``, inputs every sink already holds are skipped; a failure that may not happen
again (a timeout, a crash, a missing file; any failure with ``retry_failed``) is read again
and its new record replaces the old one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

from ocrmill.batch.executor_spec import ExecutorSpec, start_executor
from ocrmill.batch.executors import Executor
from ocrmill.batch.progress import NullProgress, ProgressReporter, Tally
from ocrmill.batch.sinks import DocumentSink, ResumableSink, Sink, as_sink
from ocrmill.batch.sources import count_tasks, iter_tasks
from ocrmill.config import Config, ReadOptions, load_config
from ocrmill.errors import ExitCode
from ocrmill.results import PageFailure, Result
from ocrmill.tasks import DEFAULT_PDF_DPI, DEFAULT_RETRIES, DEFAULT_TASK_TIMEOUT_S, Task

log = logging.getLogger("ocrmill")

Output = Sink | str | os.PathLike[str] | Callable[[Result], Any]


@dataclass(frozen=True)
class RunSummary:
    """How a run ended: counts, failures by error code, and the exit code it maps to."""

    read: int
    failed: int
    skipped: int
    interrupted: bool
    elapsed_s: float
    failures: dict[str, int] = field(default_factory=dict)
    line: str = ""
    # Resumed: skipped inputs whose failure the output keeps, by error code.
    kept_failed: dict[str, int] = field(default_factory=dict)

    @property
    def kept_failures(self) -> int:
        """Skipped inputs whose failure the output keeps (resume)."""
        return sum(self.kept_failed.values())

    @property
    def exit_code(self) -> ExitCode:
        """130 when interrupted; 3 when some input failed, in this run or (resumed) in the
        output it kept; else 0."""
        if self.interrupted:
            return ExitCode.INTERRUPTED
        failed = self.failed or self.kept_failures
        return ExitCode.SOME_INPUTS_FAILED if failed else ExitCode.OK

    @classmethod
    def of(cls, tally: Tally, interrupted: bool) -> RunSummary:
        line = f"{tally.line()}, {tally.elapsed_s:.1f} s"
        every = tally.failed + tally.kept_failed
        if every:
            line += "; failures: " + ", ".join(f"{c}={n}" for c, n in every.most_common())
        return cls(
            read=tally.done,
            failed=tally.failures,
            skipped=tally.skipped,
            interrupted=interrupted,
            elapsed_s=tally.elapsed_s,
            failures=dict(tally.failed),
            line=line,
            kept_failed=dict(tally.kept_failed),
        )


class StopSignals:
    """In the main thread: the first SIGINT/SIGTERM sets ``stop``; a second raises
    KeyboardInterrupt. Elsewhere (a server thread, a notebook's worker) it does nothing."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
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


def run(
    inputs: str | os.PathLike[str] | Iterable[Any],
    outputs: Output | Iterable[Output] | None = None,
    *,
    config: Config | None = None,
    executor: Executor | None = None,
    workers: str | int = "auto",
    device: str = "auto",
    cpu_workers: int = 0,
    timeout_s: float | None = DEFAULT_TASK_TIMEOUT_S,
    retries: int = DEFAULT_RETRIES,
    engine_factory: str | None = None,
    progress: ProgressReporter | None = None,
    resume: bool = False,
    retry_failed: bool = False,
    pdf_dpi: int = DEFAULT_PDF_DPI,
    options: ReadOptions | None = None,
    stdin: TextIO | None = None,
    stop: threading.Event | None = None,
    signals: bool = True,
) -> RunSummary:
    """Read every input into every output; one record per input (per PDF page).

    ``inputs``: paths, directories (recursive), globs, ``@list.txt``, ``-`` (stdin), PDFs
    (one record per page), encoded bytes, numpy arrays, PIL images or
    :class:`~ocrmill.tasks.Task` s. ``outputs``: a path (JSONL; ``-`` for stdout),
    a :class:`~ocrmill.batch.sinks.Sink`, a callable taking each record, or a list of them.

    Without an ``executor`` a worker pool is planned for ``workers``/``device`` (see
    :func:`~ocrmill.runtime.plan.plan_for`), started, and stopped at the end; ``workers=0``
    reads in this process instead (:class:`~ocrmill.batch.executors.SerialExecutor`).
    ``timeout_s`` and ``retries`` apply to that pool. ``resume``: skip the inputs every output
    already holds, read again those whose record is a transient failure (every failure with
    ``retry_failed``), each new record replacing the old; failures kept count in the
    summary's exit code. ``options`` are read options for every
    task (``None``: the config's). ``signals`` false leaves SIGINT/SIGTERM alone (a run
    inside a Ray actor, whose signals are Ray's). Returns a :class:`RunSummary`; ``summary.exit_code`` is
    what ``ocrmill run`` exits with. Call it under ``if __name__ == "__main__":`` in scripts
    (workers are started with ``spawn``).
    """
    config = config or load_config()
    stop = stop or threading.Event()
    progress = progress or NullProgress()
    sinks = _sinks(outputs, append=resume, retry_failed=retry_failed)
    recorder = _Recorder(sinks, progress, resume=resume)
    interrupted = False
    own_executor = executor is None
    end_count: Callable[[], None] = lambda: None  # noqa: E731
    try:
        skip = _held_by_every(sinks) if resume else None
        if own_executor:
            spec = ExecutorSpec(
                workers=workers,
                device=device,
                cpu_workers=cpu_workers,
                timeout_s=timeout_s,
                retries=retries,
                engine_factory=engine_factory,
            )
            executor = start_executor(spec, config)
        assert executor is not None
        if not isinstance(progress, NullProgress):
            end_count = _count_in_background(inputs, progress, pdf_dpi, stop)
        with StopSignals(stop) if signals else contextlib.nullcontext():
            try:
                for task, result in iter_results(
                    inputs,
                    executor=executor,
                    pdf_dpi=pdf_dpi,
                    options=options,
                    stdin=stdin,
                    stop=stop,
                    skip=skip,
                    on_skip=recorder.skip,
                ):
                    recorder.write(result, task)
            except KeyboardInterrupt:
                interrupted = True
                stop.set()
        interrupted = interrupted or stop.is_set()
    finally:
        end_count()
        if own_executor and executor is not None:
            executor.close()
        for sink in sinks:
            with contextlib.suppress(Exception):
                sink.close()
        progress.close(recorder.tally)
    return RunSummary.of(recorder.tally, interrupted)


def _count_in_background(
    inputs: Any, progress: ProgressReporter, pdf_dpi: int, stop: threading.Event
) -> Callable[[], None]:
    """Count the run's records in a thread of its own and tell ``progress`` the total (a
    folder's files are counted long before they are read). Returns what to call when the
    run ends: a count that finishes later is dropped."""
    lock = threading.Lock()
    ended = threading.Event()

    def count() -> None:
        total = count_tasks(inputs, pdf_dpi=pdf_dpi, stop=ended)
        with lock:
            if total is not None and not ended.is_set() and not stop.is_set():
                progress.total(total)

    def end() -> None:
        with lock:
            ended.set()

    threading.Thread(target=count, name="ocrmill-count", daemon=True).start()
    return end


def iter_results(
    inputs: str | os.PathLike[str] | Iterable[Any],
    *,
    executor: Executor,
    pdf_dpi: int = DEFAULT_PDF_DPI,
    options: ReadOptions | None = None,
    stdin: TextIO | None = None,
    stop: threading.Event | None = None,
    skip: Callable[[Task], bool] | None = None,
    on_skip: Callable[[Task], None] | None = None,
) -> Iterator[tuple[Task, Result]]:
    """The records of ``inputs`` as ``executor`` reads them (completion order), each with its
    task. The pull-shaped twin of :func:`run`, for front ends that consume records as they
    come (the video filter).

    Tasks for which ``skip(task)`` is true are left out (``on_skip`` is called for each). Setting
    ``stop`` ends it early, as for :func:`run`.
    """
    stop = stop or threading.Event()

    def pending() -> Iterator[Task]:  # runs in the executor's feeding thread
        for task in iter_tasks(inputs, pdf_dpi=pdf_dpi, options=options, stdin=stdin):
            if skip is None or not skip(task):
                yield task
            elif on_skip is not None:
                on_skip(task)

    yield from executor.map(pending(), stop)


def _sinks(
    outputs: Output | Iterable[Output] | None, *, append: bool, retry_failed: bool = False
) -> list[Sink]:
    """The outputs as sinks, those that write whole documents first (:class:`DocumentSink`):
    a document that cannot be written becomes its input's failure record before
    the record outputs (JSONL, callbacks) get it, so they hold one record per input."""
    if outputs is None:
        return []
    if isinstance(outputs, (str, os.PathLike, Sink)) or callable(outputs):
        return [as_sink(outputs, append=append, retry_failed=retry_failed)]
    sinks = [as_sink(o, append=append, retry_failed=retry_failed) for o in outputs]
    return sorted(sinks, key=lambda sink: not isinstance(sink, DocumentSink))


def _held_by_every(sinks: list[Sink]) -> Callable[[Task], bool]:
    """For resume: does every output already hold a task's record? (An output that cannot
    tell holds nothing, so everything is read again.)"""
    if not sinks or not all(isinstance(sink, ResumableSink) for sink in sinks):
        return lambda task: False
    resumable = [sink for sink in sinks if isinstance(sink, ResumableSink)]
    return lambda task: all(sink.holds(task) for sink in resumable)


class _Recorder:
    """Writes each record to every sink and counts it (skips are counted from the executor's
    feeding thread, hence the lock)."""

    def __init__(self, sinks: list[Sink], progress: ProgressReporter, *, resume: bool) -> None:
        self.sinks = sinks
        self.progress = progress
        self.resume = resume
        self.tally = Tally()
        self._lock = threading.Lock()
        # Resuming, the sinks that may hold a record already (checking a runtime protocol
        # per record per sink cost ~10 % of a run's parent-side time with a fast engine).
        self._holders: list[ResumableSink | None] = [
            sink if resume and isinstance(sink, ResumableSink) else None for sink in sinks
        ]

    def write(self, result: Result, task: Task | None) -> None:
        """Give the record to every sink. A sink that fails on it (a document that cannot
        be written) turns it into that input's failure record, which the sinks after it
        get instead (document sinks come first, see :func:`_sinks`); the run goes on."""
        with self._lock:
            for sink, holder in zip(self.sinks, self._holders):
                # Resuming, a task is read again when some output lacks it: the outputs
                # that hold it already do not get it twice.
                if holder is not None and task is not None and holder.holds(task):
                    continue
                try:
                    sink.write(result, task)
                except Exception as exc:
                    failure = PageFailure.from_exception(result.input, exc, result.page)
                    log.error("%s: %s", failure.code, failure.message)
                    result = failure
            self.tally.count(result)
            self.progress.update(result)

    def skip(self, task: Task) -> None:
        """``task`` is held by every output: counted, with the failure an output keeps."""
        codes = [sink.held_failure(task) for sink in self.sinks if isinstance(sink, ResumableSink)]
        with self._lock:
            self.tally.skip(next((code for code in codes if code is not None), None))
            self.progress.skipped(1)
