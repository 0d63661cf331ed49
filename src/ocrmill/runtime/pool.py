"""The worker pool (parent side): spawn-started workers, a bounded queue, timeouts, crash
recovery, recycling and metrics.

Everything here runs in the parent. One manager thread owns the workers: it waits on
their pipes and process sentinels, hands queued tasks to idle workers (a worker takes up
to ``max_batch`` tasks at once so recognition is batched across them), kills a worker whose
batch passes its deadline, and replaces any worker that dies. Tasks lost with a dead
worker are retried as the :class:`~ocrmill.runtime.retry.RetryLedger` says (alone, then a
``timeout`` or ``worker_crashed`` record). A batch's deadline is ``task_timeout_s``, scaled
up for pages over 36 megapixels once the worker has told their size (see
:func:`~ocrmill.runtime.tasks.scaled_timeout`). Callers get a ``Future`` per task.

The file is long (~560 lines) on purpose: the pool is one state machine under one lock, and
keeping every transition (dispatch, results, deaths, deadlines, recycling) in one place is
what makes that lock discipline checkable.

Why not ``concurrent.futures.ProcessPoolExecutor``: one dead worker breaks it for good,
it cannot time out a running task, and it does not recycle leaking workers.
"""

from __future__ import annotations

import collections
import enum
import itertools
import logging
import multiprocessing as mp
import signal
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from ocrmill.config import Config
from ocrmill.errors import (
    OcrmillError,
    PoolClosedError,
    PoolStartError,
    QueueFullError,
    error_from_code,
)
from ocrmill.results import PageFailure, Result
from ocrmill.runtime.messages import (
    Fatal,
    Ready,
    Rested,
    Results,
    RunTasks,
    Sized,
    Stop,
    WorkerMessage,
    WorkerState,
)
from ocrmill.runtime.plan import WorkerPlan
from ocrmill.runtime.retry import LossCause, RetryLedger
from ocrmill.runtime.tasks import scaled_timeout
from ocrmill.runtime.worker import DEFAULT_ENGINE_FACTORY, WorkerSpec, worker_main
from ocrmill.tasks import DEFAULT_RETRIES, DEFAULT_TASK_TIMEOUT_S, Task

log = logging.getLogger(__name__)


class KillReason(enum.Enum):
    """Why the parent ended a worker (the pool's restart counters use the values)."""

    CRASH = "crash"  # it sent a garbled message or its pipe broke: treated as a crash
    TIMEOUT = "timeout"  # its batch ran past the batch's deadline
    START_TIMEOUT = "start_timeout"  # it was not ready within ``start_timeout_s``
    SHUTDOWN = "shutdown"  # the pool is stopping

    @property
    def loss(self) -> LossCause:
        """What the retry ledger makes of the batch the worker held."""
        return LossCause.TIMEOUT if self is KillReason.TIMEOUT else LossCause.CRASH


@dataclass(frozen=True)
class PoolConfig:
    # A worker's batch must finish within this (scaled up for pages over 36 megapixels).
    task_timeout_s: float | None = DEFAULT_TASK_TIMEOUT_S
    max_retries: int = DEFAULT_RETRIES
    max_tasks_per_worker: int | None = None
    max_worker_rss_bytes: int | None = None
    queue_size: int = 64  # tasks accepted but not yet handed to a worker
    # Tasks handed to one worker at once (its engine batches recognition across them); a
    # CPU worker gets the pages of documents one at a time.
    max_batch: int = 4
    # The same for GPU workers: a GPU needs big batches to be busy (detection is batched by
    # shape bucket there too).
    max_batch_gpu: int = 16
    # A worker (the first or a replacement) must load its engine within this.
    start_timeout_s: float = 600.0
    engine_factory: str = DEFAULT_ENGINE_FACTORY
    warmup: bool = True
    # A worker left this long without work after a batch hands back the buffers its
    # engine keeps (a CPU worker: ~760 -> ~420 MiB after 300-dpi pages; see
    # ``Engine.release_memory``); its next page allocates them again. None: never.
    release_after_idle_s: float | None = 5.0
    # Consecutive worker deaths before becoming ready, after which the pool gives up.
    max_start_failures: int = 3


def _alone(pending: _Pending, on_gpu: bool) -> bool:
    """Whether a task goes to a CPU worker alone: a page of a document (a PDF page, a frame
    of a multi-page TIFF) is big (a letter page at 300 dpi is 8.4 megapixels), and on a CPU
    a batch of pages reads no faster than its pages one by one: ``ocrmill pdf`` on 20 dense
    pages at 300 dpi peaked at 858 against 978 MiB with 4 pages a batch, in the same time
    (``benchmarks/results/searchable_pdf_20261206-real20-pages-alone.md``, ``-real20-turns.md``)."""
    return not on_gpu and pending.task.page is not None


@dataclass
class _Pending:
    task: Task
    future: Future[Result]
    cpu_only: bool = False  # ran out of GPU memory: only a CPU worker may take it


@dataclass
class _Worker:
    slot_index: int
    spec: WorkerSpec
    process: Any
    conn: Connection
    state: WorkerState = WorkerState.STARTING
    batch: list[_Pending] = field(default_factory=list)
    deadline: float | None = None
    batch_started: float = 0.0
    batch_timeout: float | None = None  # the deadline's length, as told in a timeout record
    pid: int | None = None
    started_at: float = field(default_factory=time.time)
    tasks_done: int = 0
    tasks_failed: int = 0
    busy_s: float = 0.0
    rss: int = 0
    gpu_bytes: int | None = None  # GPU memory after warm-up (NVML), GPU workers only
    kill_reason: KillReason | None = None  # why the parent killed it (None: it died itself)


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by signal {-code} ({signal.Signals(-code).name})"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


class WorkerPool:
    """A pool of OCR worker processes, one engine each, sized by a :class:`WorkerPlan`.

    >>> with WorkerPool(plan, config) as pool:            # doctest: +SKIP
    ...     result = pool.submit(Task(pool.new_task_id(), "scan.png", "scan.png")).result()
    """

    def __init__(
        self, plan: WorkerPlan, config: Config, pool_config: PoolConfig | None = None
    ) -> None:
        if not plan.slots:
            raise ValueError("the plan has no workers")
        self.plan = plan
        self.config = config
        self.pool_config = pool_config or PoolConfig()
        self._ctx = mp.get_context("spawn")
        self._lock = threading.Condition()
        self._pending: collections.deque[_Pending] = collections.deque()
        self._ledger = RetryLedger(self.pool_config.max_retries)
        self._workers: dict[int, _Worker] = {}
        self._ids = itertools.count(1)
        self._worker_ids = itertools.count(0)
        self._restarts: collections.Counter[str] = collections.Counter()
        self._start_failures = 0
        self._fatal: OcrmillError | None = None
        self._closing = False
        self._stopped = threading.Event()
        self._wake_r, self._wake_w = self._ctx.Pipe(duplex=False)
        self._thread: threading.Thread | None = None
        self._ready_count = 0

    # -- lifecycle ------------------------------------------------------------------

    def start(self, wait_ready: bool = True) -> WorkerPool:
        """Start every worker (they load models in parallel); optionally wait until ready."""
        for index in range(len(self.plan.slots)):
            self._spawn(index)
        self._thread = threading.Thread(target=self._manage, name="ocrmill-pool", daemon=True)
        self._thread.start()
        if wait_ready:
            try:
                self.wait_ready(self.pool_config.start_timeout_s)
            except BaseException:
                self.shutdown(wait=False, kill=True)
                raise
        return self

    def wait_ready(self, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while not self.ready:
                if self._fatal is not None:
                    raise self._fatal
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise PoolStartError(f"workers not ready after {timeout:.0f} s")
                self._lock.wait(0.2 if left is None else min(left, 0.2))

    @property
    def ready(self) -> bool:
        """True when every planned worker has built and warmed up its engine."""
        serving = (WorkerState.IDLE, WorkerState.BUSY)
        return sum(w.state in serving for w in self._workers.values()) >= len(self.plan.slots)

    def __enter__(self) -> WorkerPool:
        if self._thread is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def shutdown(self, wait: bool = True, cancel_pending: bool = False, kill: bool = False) -> None:
        """Stop the pool. ``wait``: let queued and running tasks finish first.

        ``cancel_pending`` cancels tasks not yet handed to a worker (their futures are
        cancelled); ``kill`` stops workers at once (running tasks are cancelled too).
        """
        with self._lock:
            self._closing = True
            if cancel_pending or kill:
                for p in self._pending:
                    if not p.future.cancel() and not p.future.done():
                        p.future.set_exception(PoolClosedError("the pool was stopped"))
                self._pending.clear()
            self._lock.notify_all()
        self._wake()
        if kill:
            with self._lock:
                for w in list(self._workers.values()):
                    for p in w.batch:
                        if not p.future.done():
                            p.future.set_exception(PoolClosedError("the pool was stopped"))
                    w.batch = []
                    w.kill_reason = KillReason.SHUTDOWN
                    self._terminate(w)
        if wait and self._thread is not None and not kill:
            with self._lock:
                while (
                    self._pending or any(w.batch for w in self._workers.values())
                ) and self._fatal is None:
                    self._lock.wait(0.2)
        self._stopped.set()
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout=30)
        for w in list(self._workers.values()):
            self._stop_worker(w)
        self._workers.clear()

    def cancel_pending(self) -> int:
        """Cancel queued tasks not yet handed to a worker; running tasks go on."""
        with self._lock:
            # A retried task is already running (its first worker died): keep it queued.
            keep = collections.deque(p for p in self._pending if not p.future.cancel())
            count = len(self._pending) - len(keep)
            self._pending = keep
            self._lock.notify_all()
            return count

    # -- submitting -----------------------------------------------------------------

    def submit(
        self, task: Task, *, block: bool = True, timeout: float | None = None
    ) -> Future[Result]:
        """Queue a task. When the queue is full, wait (``block``) or raise ``QueueFullError``."""
        future: Future[Result] = Future()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while True:
                if self._fatal is not None:
                    raise self._fatal
                if self._closing:
                    raise PoolClosedError("the pool is shut down")
                if len(self._pending) < self.pool_config.queue_size:
                    break
                if not block:
                    raise QueueFullError(
                        f"queue full ({self.pool_config.queue_size} tasks waiting)"
                    )
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise QueueFullError(f"queue still full after {timeout} s")
                self._lock.wait(0.5 if left is None else min(left, 0.5))
            self._pending.append(_Pending(task, future))
        self._wake()
        return future

    def new_task_id(self) -> int:
        return next(self._ids)

    @property
    def queue_depth(self) -> int:
        return len(self._pending)

    def metrics(self) -> dict[str, Any]:
        """A snapshot: per-worker counters, queue depth, in-flight tasks, restarts by cause."""
        with self._lock:
            workers = [
                {
                    "id": w.spec.worker_id,
                    "pid": w.pid,
                    "device": w.spec.device,
                    "threads": w.spec.threads,
                    "state": w.state.value,
                    "tasks_done": w.tasks_done,
                    "tasks_failed": w.tasks_failed,
                    "busy_s": round(w.busy_s, 3),
                    "rss_bytes": w.rss,
                    "gpu_bytes": w.gpu_bytes,
                    "uptime_s": round(time.time() - w.started_at, 1),
                }
                for w in sorted(self._workers.values(), key=lambda w: w.spec.worker_id)
            ]
            return {
                "workers": workers,
                "queue_depth": len(self._pending),
                "in_flight": sum(len(w.batch) for w in self._workers.values()),
                "restarts": dict(self._restarts),
                "ready": self.ready,
            }

    # -- manager thread ---------------------------------------------------------------

    def _wake(self) -> None:
        try:
            self._wake_w.send_bytes(b"x")
        except OSError:
            pass

    def _spawn(self, slot_index: int) -> None:
        slot = self.plan.slots[slot_index]
        spec = WorkerSpec(
            worker_id=next(self._worker_ids),
            device=slot.device,
            threads=slot.threads,
            config=self.config,
            engine_factory=self.pool_config.engine_factory,
            warmup=self.pool_config.warmup,
            release_after_idle_s=self.pool_config.release_after_idle_s,
        )
        parent_conn, child_conn = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(
            target=worker_main,
            args=(child_conn, spec),
            name=f"ocrmill-worker-{spec.worker_id}",
            daemon=True,
        )
        process.start()
        child_conn.close()
        # Every worker, the first or a replacement, must be ready in time: one that hangs
        # while loading its models is killed and counted as a start failure.
        self._workers[spec.worker_id] = _Worker(
            slot_index,
            spec,
            process,
            parent_conn,
            pid=process.pid,
            deadline=time.monotonic() + self.pool_config.start_timeout_s,
        )

    def _manage(self) -> None:
        try:
            while not self._stopped.is_set():
                self._manage_once()
        except Exception as exc:  # a bug here must fail loudly, never leave callers hanging
            log.exception("ocrmill pool manager failed")
            with self._lock:
                self._fail_all(PoolStartError(f"worker pool manager failed: {exc!r}"))
                self._lock.notify_all()

    def _manage_once(self) -> None:
        with self._lock:
            waitables: list[Any] = [self._wake_r]
            for w in self._workers.values():
                waitables += [w.conn, w.process.sentinel]
            deadlines = [w.deadline for w in self._workers.values() if w.deadline is not None]
        timeout = 1.0
        if deadlines:
            timeout = max(0.0, min(timeout, min(deadlines) - time.monotonic()))
        try:
            ready = wait(waitables, timeout=timeout)
        except OSError:
            ready = []
        with self._lock:
            if self._wake_r in ready:
                while self._wake_r.poll():
                    self._wake_r.recv_bytes()
            for w in list(self._workers.values()):
                if w.conn in ready:
                    self._receive(w)
            for w in list(self._workers.values()):
                if w.spec.worker_id in self._workers and not w.process.is_alive():
                    self._on_exit(w)
            self._check_deadlines()
            self._dispatch()
            self._lock.notify_all()

    def _receive(self, w: _Worker) -> None:
        try:
            while w.conn.poll():
                self._handle(w, w.conn.recv())
        except (EOFError, OSError):
            pass  # the sentinel reports the death
        except Exception as exc:  # an unpicklable/garbled message: treat the worker as broken
            log.error("worker %s sent a bad message: %s", w.spec.worker_id, exc)
            w.kill_reason = KillReason.CRASH
            self._terminate(w)

    def _handle(self, w: _Worker, message: WorkerMessage) -> None:
        if isinstance(message, Ready):
            w.state, w.pid, w.rss, w.deadline = WorkerState.IDLE, message.pid, message.rss, None
            w.gpu_bytes = message.gpu_bytes
            self._start_failures = 0
        elif isinstance(message, Fatal):
            err = error_from_code(
                message.code, f"worker could not start its engine: {message.detail}"
            )
            self._fail_all(err if message.code != "internal" else PoolStartError(err.message))
        elif isinstance(message, Sized):
            timeout = self.pool_config.task_timeout_s
            if w.state is WorkerState.BUSY and timeout is not None:
                w.batch_timeout = scaled_timeout(timeout, message.pixels)
                w.deadline = w.batch_started + w.batch_timeout
        elif isinstance(message, Results):
            by_id = {p.task.id: p for p in w.batch}
            for task_id, result in message.results:
                p = by_id.pop(task_id, None)
                if p is None:
                    continue
                if self._send_to_cpu(w, p, result):
                    continue
                self._ledger.forget(task_id)
                w.tasks_done += 1
                if not result.ok:
                    w.tasks_failed += 1
                if not p.future.done():
                    p.future.set_result(result)
            for p in by_id.values():  # a result missing from the batch: retry it
                self._pending.appendleft(p)
            w.batch, w.deadline, w.busy_s, w.rss = [], None, w.busy_s + message.busy_s, message.rss
            w.state = WorkerState.IDLE
            self._maybe_recycle(w)
        elif isinstance(message, Rested):
            w.rss = message.rss
        else:
            raise TypeError(f"unexpected message {type(message).__name__}")

    def _send_to_cpu(self, w: _Worker, p: _Pending, result: Result) -> bool:
        """Requeue a task that ran out of GPU memory for a CPU worker, when the plan has one."""
        if (
            not isinstance(result, PageFailure)
            or result.code != "resource_limit"
            or not w.spec.device.startswith("cuda")
            or p.cpu_only
            or not any(s.device == "cpu" for s in self.plan.slots)
        ):
            return False
        p.cpu_only = True
        self._restarts["gpu_oom_to_cpu"] += 1
        self._pending.appendleft(p)
        return True

    def _maybe_recycle(self, w: _Worker) -> None:
        cfg = self.pool_config
        cause = None
        if cfg.max_tasks_per_worker and w.tasks_done >= cfg.max_tasks_per_worker:
            cause = "recycle_tasks"
        elif cfg.max_worker_rss_bytes and w.rss > cfg.max_worker_rss_bytes:
            cause = "recycle_rss"
        if cause and not self._closing:
            self._restarts[cause] += 1
            w.state = WorkerState.RETIRING
            try:
                w.conn.send(Stop())
            except OSError:
                pass
            self._spawn(w.slot_index)

    def _on_exit(self, w: _Worker) -> None:
        self._workers.pop(w.spec.worker_id, None)
        w.process.join(timeout=1)
        exit_text = _describe_exit(w.process.exitcode)
        try:
            w.conn.close()
        except OSError:
            pass
        if self._fatal is not None or w.state is WorkerState.RETIRING:
            return
        if self._closing and not w.batch and w.kill_reason is None:
            return
        reason = w.kill_reason or KillReason.CRASH
        if w.state is WorkerState.STARTING and reason in (
            KillReason.CRASH,
            KillReason.START_TIMEOUT,
        ):
            self._start_failures += 1
            if self._start_failures >= self.pool_config.max_start_failures:
                why = "not ready in time" if reason is KillReason.START_TIMEOUT else exit_text
                self._fail_all(PoolStartError(f"workers keep dying before they are ready ({why})"))
                return
        if reason is not KillReason.SHUTDOWN:
            self._restarts[reason.value] += 1
        self._requeue(w, reason.loss, f"worker {w.spec.worker_id} (pid {w.pid}) {exit_text}")
        if not (self._closing and reason is KillReason.SHUTDOWN):
            self._spawn(w.slot_index)

    def _requeue(self, w: _Worker, loss: LossCause, detail: str) -> None:
        """Hand a dead worker's batch to the retry ledger: retry alone, or record failed."""
        lost = [p for p in w.batch if not p.future.done()]
        if not lost:
            return
        by_id = {p.task.id: p for p in lost}
        retry, failed = self._ledger.lost(
            [p.task for p in lost], loss, detail, w.batch_timeout or self.pool_config.task_timeout_s
        )
        for task, record in failed:
            by_id[task.id].future.set_result(record)
        for task in reversed(retry):
            self._pending.appendleft(by_id[task.id])

    def _check_deadlines(self) -> None:
        now = time.monotonic()
        for w in list(self._workers.values()):
            if w.deadline is not None and now >= w.deadline and w.kill_reason is None:
                starting = w.state is WorkerState.STARTING
                w.kill_reason = KillReason.START_TIMEOUT if starting else KillReason.TIMEOUT
                self._terminate(w)

    def _terminate(self, w: _Worker) -> None:
        try:
            if w.process.is_alive():
                w.process.kill()  # SIGKILL: a hung native call ignores anything gentler
        except (OSError, ValueError):
            pass

    def _dispatch(self) -> None:
        if self._fatal is not None:
            return
        idle = sum(w.state is WorkerState.IDLE for w in self._workers.values())
        for w in self._workers.values():
            if not self._pending:
                return
            if w.state is not WorkerState.IDLE:
                continue
            on_gpu = w.spec.device.startswith("cuda")
            first = next((p for p in self._pending if not (on_gpu and p.cpu_only)), None)
            if first is None:
                continue
            self._pending.remove(first)
            batch = [first]
            limit = self.pool_config.max_batch_gpu if on_gpu else self.pool_config.max_batch
            # Share the queue among the idle workers: 4 pages and 2 idle workers make two
            # batches of 2, not one of 4 and an idle worker (batches fill up under load).
            limit = max(1, min(limit, -(-(len(self._pending) + 1) // max(1, idle))))
            idle -= 1
            solo = self._ledger.is_solo
            if not (solo(first.task.id) or first.cpu_only or _alone(first, on_gpu)):
                while (
                    self._pending
                    and len(batch) < limit
                    and not solo(self._pending[0].task.id)
                    and not self._pending[0].cpu_only
                    and not _alone(self._pending[0], on_gpu)
                ):
                    batch.append(self._pending.popleft())
            batch = [
                p for p in batch if p.future.running() or p.future.set_running_or_notify_cancel()
            ]
            if not batch:
                continue
            try:
                w.conn.send(RunTasks([p.task for p in batch]))
            except (OSError, ValueError):
                w.kill_reason = KillReason.CRASH
                w.batch = batch
                self._terminate(w)
                continue
            w.batch, w.state = batch, WorkerState.BUSY
            w.batch_started = time.monotonic()
            w.batch_timeout = self.pool_config.task_timeout_s
            w.deadline = None if w.batch_timeout is None else w.batch_started + w.batch_timeout

    def _fail_all(self, err: OcrmillError) -> None:
        self._fatal = err
        while self._pending:
            p = self._pending.popleft()
            if not p.future.done():
                p.future.set_exception(err)
        for w in self._workers.values():
            for p in w.batch:
                if not p.future.done():
                    p.future.set_exception(err)
            w.batch = []

    def _stop_worker(self, w: _Worker) -> None:
        try:
            w.conn.send(Stop())
        except OSError:
            pass
        w.process.join(timeout=5)
        if w.process.is_alive():
            w.process.kill()
            w.process.join(timeout=5)
        try:
            w.conn.close()
        except OSError:
            pass
