"""``run``: the one way to read many inputs, behind ``ocrmill run``, the server's jobs, the
video filter and Python users (runs in the parent process).

Inputs become tasks lazily (:mod:`ocrmill.batch.sources`), an executor reads them
(:mod:`ocrmill.batch.executors`), and every record goes to every sink
(:mod:`ocrmill.batch.sinks`) as soon as it is read, so memory stays flat however many
inputs there are. SIGINT/SIGTERM once (when called from the main thread): stop taking
tasks, let running ones finish, flush, report ``interrupted``; twice: stop at once.
With ``resume``, inputs every sink already holds are skipped.
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

from ocrmill.batch.executors import Executor, PoolExecutor, SerialExecutor
from ocrmill.batch.progress import NullProgress, ProgressReporter, Tally
from ocrmill.batch.sinks import ResumableSink, Sink, as_sink
from ocrmill.batch.sources import iter_tasks
from ocrmill.config import Config, ReadOptions, load_config
from ocrmill.errors import ExitCode
from ocrmill.results import Result
from ocrmill.tasks import Task

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

    @property
    def exit_code(self) -> ExitCode:
        """130 when interrupted, 3 when some input failed, else 0."""
        if self.interrupted:
            return ExitCode.INTERRUPTED
        return ExitCode.SOME_INPUTS_FAILED if self.failed else ExitCode.OK

    @classmethod
    def of(cls, tally: Tally, interrupted: bool) -> RunSummary:
        line = f"{tally.line()}, {tally.elapsed_s:.1f} s"
        if tally.failed:
            line += "; failures: " + ", ".join(f"{c}={n}" for c, n in tally.failed.most_common())
        return cls(
            read=tally.done,
            failed=tally.failures,
            skipped=tally.skipped,
            interrupted=interrupted,
            elapsed_s=tally.elapsed_s,
            failures=dict(tally.failed),
            line=line,
        )


class _Signals:
    """In the main thread: the first SIGINT/SIGTERM sets ``stop``; a second raises
    KeyboardInterrupt. Elsewhere (a server thread, a notebook's worker) it does nothing."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
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


def run(
    inputs: str | os.PathLike[str] | Iterable[Any],
    outputs: Output | Iterable[Output] | None = None,
    *,
    config: Config | None = None,
    executor: Executor | None = None,
    workers: str | int = "auto",
    device: str = "auto",
    cpu_workers: int = 0,
    timeout_s: float | None = 600.0,
    retries: int = 1,
    engine_factory: str | None = None,
    progress: ProgressReporter | None = None,
    resume: bool = False,
    pdf_dpi: int = 200,
    options: ReadOptions | None = None,
    stdin: TextIO | None = None,
    stop: threading.Event | None = None,
) -> RunSummary:
    """Read every input into every output; one record per input (per PDF page).

    ``inputs``: paths, directories (recursive), globs, ``@list.txt``, ``-`` (stdin), PDFs
    (one record per page), encoded bytes, numpy arrays, PIL images or
    :class:`~ocrmill.tasks.Task` s. ``outputs``: a path (JSONL; ``-`` for stdout),
    a :class:`~ocrmill.batch.sinks.Sink`, a callable taking each record, or a list of them.

    Without an ``executor`` a worker pool is planned for ``workers``/``device`` (see
    :func:`~ocrmill.runtime.plan.plan_for`), started, and stopped at the end; ``workers=0``
    reads in this process instead (:class:`~ocrmill.batch.executors.SerialExecutor`).
    ``timeout_s`` and ``retries`` apply to that pool. ``options`` are read options for every
    task (``None``: the config's). Returns a :class:`RunSummary`; ``summary.exit_code`` is
    what ``ocrmill run`` exits with. Call it under ``if __name__ == "__main__":`` in scripts
    (workers are started with ``spawn``).
    """
    config = config or load_config()
    stop = stop or threading.Event()
    progress = progress or NullProgress()
    sinks = _sinks(outputs, append=resume)
    recorder = _Recorder(sinks, progress, resume=resume)
    interrupted = False
    own_executor = executor is None
    try:
        skip = _held_by_every(sinks) if resume else None
        if own_executor:
            executor = default_executor(
                config,
                workers=workers,
                device=device,
                cpu_workers=cpu_workers,
                timeout_s=timeout_s,
                retries=retries,
                engine_factory=engine_factory,
            )
        assert executor is not None
        with _Signals(stop):
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
        if own_executor and executor is not None:
            executor.close()
        for sink in sinks:
            with contextlib.suppress(Exception):
                sink.close()
        progress.close(recorder.tally)
    return RunSummary.of(recorder.tally, interrupted)


def iter_results(
    inputs: str | os.PathLike[str] | Iterable[Any],
    *,
    executor: Executor,
    pdf_dpi: int = 200,
    options: ReadOptions | None = None,
    stdin: TextIO | None = None,
    stop: threading.Event | None = None,
    skip: Callable[[Task], bool] | None = None,
    on_skip: Callable[[], None] | None = None,
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
                on_skip()

    yield from executor.map(pending(), stop)


def default_executor(
    config: Config,
    *,
    workers: str | int = "auto",
    device: str = "auto",
    cpu_workers: int = 0,
    timeout_s: float | None = 600.0,
    retries: int = 1,
    engine_factory: str | None = None,
    max_in_flight: int | None = None,
) -> Executor:
    """The executor :func:`run` makes when given none: a started worker pool planned by
    :func:`~ocrmill.runtime.plan.plan_for` (the plan is logged; at most ``max_in_flight``
    tasks in it at a time), or the serial executor for ``workers=0``. The caller closes it."""
    from ocrmill.runtime.plan import plan_for
    from ocrmill.runtime.pool import PoolConfig
    from ocrmill.runtime.worker import DEFAULT_ENGINE_FACTORY

    if str(workers).strip() == "0":
        return SerialExecutor(config, engine_factory=engine_factory)
    plan = plan_for(config, device, workers, cpu_workers=cpu_workers)
    log.info("%s", plan.describe())
    pool_config = PoolConfig(
        task_timeout_s=timeout_s,
        max_retries=retries,
        engine_factory=engine_factory or DEFAULT_ENGINE_FACTORY,
    )
    return PoolExecutor.start(plan, config, pool_config, max_in_flight=max_in_flight)


def _sinks(outputs: Output | Iterable[Output] | None, *, append: bool) -> list[Sink]:
    if outputs is None:
        return []
    if isinstance(outputs, (str, os.PathLike, Sink)) or callable(outputs):
        return [as_sink(outputs, append=append)]
    return [as_sink(o, append=append) for o in outputs]


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

    def write(self, result: Result, task: Task | None) -> None:
        with self._lock:
            for sink in self.sinks:
                # Resuming, a task is read again when some output lacks it: the outputs
                # that hold it already do not get it twice.
                held = task is not None and isinstance(sink, ResumableSink) and sink.holds(task)
                if self.resume and held:
                    continue
                sink.write(result, task)
            self.tally.count(result)
            self.progress.update(result)

    def skip(self) -> None:
        with self._lock:
            self.tally.skipped += 1
            self.progress.skipped(1)
