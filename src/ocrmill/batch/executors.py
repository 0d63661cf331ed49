"""Executors: where a run's tasks are read. One protocol, three implementations.

* :class:`PoolExecutor` - the local worker pool (spawned processes; timeouts, crash
  recovery and retries by the pool's retry ledger). The default.
* :class:`SerialExecutor` - in the caller's own process, one batch at a time (debugging,
  notebooks, tests; ``--workers 0``). No isolation: an input that crashes or hangs the
  engine crashes or hangs the caller, and there is no timeout.
* the Ray executor, :class:`ocrmill.distributed.executor.RayExecutor` (the same tasks on
  Ray Data actors, each reading through a one-worker pool).

``map(tasks, stop)`` yields ``(task, result)`` pairs in completion order, one per task. Once
``stop`` is set it takes no more tasks; tasks not started are dropped (neither read nor
yielded, so ``resume`` reads them later) and running ones finish and are yielded.
Runs in the parent.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import queue
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ocrmill.config import Config
from ocrmill.errors import PoolClosedError, QueueFullError
from ocrmill.results import Result
from ocrmill.runtime.tasks import EngineLike, run_tasks
from ocrmill.tasks import Task

if TYPE_CHECKING:
    from ocrmill.runtime.plan import WorkerPlan
    from ocrmill.runtime.pool import PoolConfig
    from ocrmill.runtime.pool import WorkerPool as WorkerPool  # the pool a front end may share

log = logging.getLogger(__name__)

POLL_S = 0.2  # how often waiting loops look at the stop flag


@runtime_checkable
class Executor(Protocol):
    """Reads tasks somewhere; see the module docstring for the contract of ``map``."""

    def map(
        self, tasks: Iterable[Task], stop: threading.Event
    ) -> Iterator[tuple[Task, Result]]: ...

    def close(self) -> None:
        """Release what the executor owns (workers, actors, an engine)."""
        ...


class PoolExecutor:
    """Tasks through a :class:`~ocrmill.runtime.pool.WorkerPool`.

    ``max_in_flight`` (a count, or a semaphore shared by several executors on one pool)
    bounds the tasks this executor keeps in the pool, so others sharing the pool (the
    server's single images) still find room in its queue. Tasks are fed from a thread, so
    results are yielded while a slow source (a huge directory, a server job waiting for
    work) is still being listed.
    """

    def __init__(
        self,
        pool: WorkerPool,
        *,
        max_in_flight: int | threading.Semaphore | None = None,
        owns_pool: bool = False,
    ) -> None:
        self.pool = pool
        if isinstance(max_in_flight, int):
            max_in_flight = threading.BoundedSemaphore(max_in_flight)
        self._slots = max_in_flight
        self._owns_pool = owns_pool
        self._feeders: set[_Feeder] = set()
        self._recorded = False
        self._closed = False

    @property
    def in_flight(self) -> int:
        """This executor's tasks in the pool now (queued or being read)."""
        return sum(feeder.in_flight for feeder in list(self._feeders))

    @classmethod
    def start(
        cls,
        plan: WorkerPlan,
        config: Config,
        pool_config: PoolConfig | None = None,
        *,
        max_in_flight: int | None = None,
        wait_ready: bool = True,
    ) -> PoolExecutor:
        """Start a pool of its own, closed with it. ``wait_ready``: return once every worker
        is ready (a pool that cannot start raises here); otherwise at once, so the caller
        prepares its work while the workers load their models: tasks wait in the queue
        until a worker is ready, and a pool that cannot start fails them."""
        from ocrmill.runtime.pool import WorkerPool

        pool = WorkerPool(plan, config, pool_config).start(wait_ready=wait_ready)
        executor = cls(pool, max_in_flight=max_in_flight, owns_pool=True)
        if wait_ready:
            executor._record_footprints()
        return executor

    def _record_footprints(self) -> None:
        """Remember the GPU memory the ready workers of a pool it started measured (for the
        next plan)."""
        from ocrmill.runtime.plan import record_footprints

        if self._owns_pool and not self._recorded and self.pool.ready:
            record_footprints(self.pool.config, self.pool.metrics()["workers"])
            self._recorded = True

    def map(self, tasks: Iterable[Task], stop: threading.Event) -> Iterator[tuple[Task, Result]]:
        done: queue.Queue[tuple[Task, Future[Result]]] = queue.Queue()
        feeder = _Feeder(self.pool, tasks, stop, done, self._slots)
        self._feeders.add(feeder)
        feeder.start()
        received = 0
        cancelled = False
        try:
            while True:
                if stop.is_set() and not cancelled:
                    feeder.cancel_waiting()
                    cancelled = True
                if feeder.finished.is_set() and received == feeder.submitted:
                    break
                try:
                    task, future = done.get(timeout=POLL_S)
                except queue.Empty:
                    continue
                received += 1
                if future.cancelled() or isinstance(future.exception(), PoolClosedError):
                    continue  # never started: a resumed run reads it
                yield task, future.result()  # raises if the pool failed as a whole
            if feeder.error is not None:
                raise feeder.error
        finally:
            self._feeders.discard(feeder)
            if not feeder.finished.is_set():  # the caller stopped early: leave nothing queued
                feeder.abandon()

    def close(self) -> None:
        if self._owns_pool and not self._closed:
            self._closed = True
            self._record_footprints()
            self.pool.shutdown(wait=False, kill=True)


class _Feeder(threading.Thread):
    """Submits a run's tasks to the pool with backpressure (in its own thread)."""

    def __init__(
        self,
        pool: WorkerPool,
        tasks: Iterable[Task],
        stop: threading.Event,
        done: queue.Queue[tuple[Task, Future[Result]]],
        slots: threading.Semaphore | None,
    ) -> None:
        super().__init__(name="ocrmill-feeder", daemon=True)
        self.pool = pool
        self.tasks = tasks
        self.stop = stop
        self.done = done
        self.slots = slots
        self.submitted = 0
        self.error: BaseException | None = None
        self.finished = threading.Event()
        self._lock = threading.Lock()
        self._waiting: set[Future[Result]] = set()
        self._abandoned = threading.Event()

    @property
    def in_flight(self) -> int:
        return len(self._waiting)

    def _stopped(self) -> bool:
        return self.stop.is_set() or self._abandoned.is_set()

    def run(self) -> None:
        try:
            for task in self.tasks:
                if self._stopped() or not self._submit(task):
                    break
        except BaseException as exc:  # a source or the pool failed: the consumer raises it
            self.error = exc
        finally:
            self.finished.set()

    def _submit(self, task: Task) -> bool:
        if task.failure is not None:  # nothing to read: its record goes straight back
            known: Future[Result] = Future()
            known.set_result(task.failure)
            with self._lock:
                self.submitted += 1
            self.done.put((task, known))
            return True
        if self.slots is not None:
            while not self.slots.acquire(timeout=POLL_S):
                if self._stopped():
                    return False
        pooled = dataclasses.replace(task, id=self.pool.new_task_id())
        while True:
            if self._stopped():
                self._release()
                return False
            try:
                future = self.pool.submit(pooled, block=True, timeout=POLL_S)
                break
            except QueueFullError:
                continue
            except BaseException:
                self._release()
                raise
        with self._lock:
            self.submitted += 1
            self._waiting.add(future)
        future.add_done_callback(functools.partial(self._on_done, task))
        return True

    def _release(self) -> None:
        if self.slots is not None:
            self.slots.release()

    def _on_done(self, task: Task, future: Future[Result]) -> None:
        with self._lock:
            self._waiting.discard(future)
        self._release()
        self.done.put((task, future))

    def cancel_waiting(self) -> None:
        """Cancel this run's tasks that no worker has taken yet (others' stay)."""
        with self._lock:
            waiting = list(self._waiting)
        for future in waiting:
            future.cancel()

    def abandon(self) -> None:
        self._abandoned.set()
        self.cancel_waiting()


class SerialExecutor:
    """Tasks read in this process by one engine, ``batch`` at a time (recognition batched
    across them as a pool worker does). The engine is built at the first task.

    No isolation and no timeout: use it to debug, in notebooks and in tests; use the pool
    for inputs you do not trust.
    """

    def __init__(
        self,
        config: Config | None = None,
        *,
        engine: EngineLike | None = None,
        engine_factory: str | None = None,
        device: str = "cpu",
        threads: int = 0,
        batch: int = 4,
    ) -> None:
        self.config = config or Config()
        self._engine = engine
        self._factory = engine_factory
        self.device = device
        self.threads = threads
        self.batch = max(1, batch)

    @property
    def engine(self) -> EngineLike:
        if self._engine is None:
            from ocrmill.runtime.worker import DEFAULT_ENGINE_FACTORY, load_factory

            factory = load_factory(self._factory or DEFAULT_ENGINE_FACTORY)
            self._engine = factory(self.config, self.device, self.threads)
        return self._engine

    def map(self, tasks: Iterable[Task], stop: threading.Event) -> Iterator[tuple[Task, Result]]:
        chunk: list[Task] = []
        for task in tasks:
            if stop.is_set():
                return
            chunk.append(task)
            if len(chunk) >= self.batch:
                yield from self._read(chunk)
                chunk = []
        if chunk and not stop.is_set():
            yield from self._read(chunk)

    def _read(self, chunk: list[Task]) -> Iterator[tuple[Task, Result]]:
        """Read a chunk; each result comes back with the task object it was given."""
        numbered = [dataclasses.replace(task, id=i) for i, task in enumerate(chunk)]
        for task_id, result in run_tasks(self.engine, numbered, self.config):
            yield chunk[task_id], result

    def close(self) -> None:
        self._engine = None
