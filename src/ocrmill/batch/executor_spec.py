"""The one executor factory: an :class:`ExecutorSpec` says where a run's tasks are read
(workers, device, the pool's limits, Ray), :func:`start_executor` starts it (Ray, a layer
above, starts the same spec with ``ocrmill.distributed.executor.start_ray``). ``run()``,
every command and the video filter build their executor here (runs in the parent).

Front ends ask the run layer, never the runtime below it, for a plan or the machine's
inventory (:meth:`ExecutorSpec.plan`, :func:`inventory`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ocrmill.config import Config
from ocrmill.errors import ConfigError
from ocrmill.tasks import DEFAULT_RETRIES, DEFAULT_TASK_TIMEOUT_S

if TYPE_CHECKING:
    from ocrmill.batch.executors import Executor
    from ocrmill.runtime.devices import Inventory
    from ocrmill.runtime.plan import WorkerPlan
    from ocrmill.runtime.pool import PoolConfig

log = logging.getLogger("ocrmill")


@dataclass(frozen=True)
class ExecutorSpec:
    """Where and how a run's tasks are read.

    ``workers``: ``auto``, a count, or ``0`` to read in the caller's process (no isolation,
    no timeout). ``device``: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``; ``cpu_workers``: CPU
    workers beside GPU workers, for tasks out of GPU memory. ``timeout_s``, ``retries``,
    ``max_tasks_per_worker``, ``max_worker_rss_bytes`` and ``engine_factory`` configure the
    worker pool (``engine_factory`` None: the real engine). ``max_in_flight`` bounds the
    tasks the executor keeps in the pool; ``wait_ready`` false returns before the workers
    have loaded their models (tasks wait in the queue). ``ray`` reads on Ray Data actors, on
    the cluster at ``ray_address`` (None: a local Ray).
    """

    workers: str | int = "auto"
    device: str = "auto"
    cpu_workers: int = 0
    timeout_s: float | None = DEFAULT_TASK_TIMEOUT_S
    retries: int = DEFAULT_RETRIES
    max_tasks_per_worker: int | None = None
    max_worker_rss_bytes: int | None = None
    engine_factory: str | None = None
    max_in_flight: int | None = None
    wait_ready: bool = True
    ray: bool = False
    ray_address: str | None = None

    @property
    def serial(self) -> bool:
        """Read in the caller's own process (``workers=0``)?"""
        return str(self.workers).strip() == "0" and not self.uses_ray

    @property
    def uses_ray(self) -> bool:
        return self.ray or self.ray_address is not None

    def plan(self, config: Config) -> WorkerPlan:
        """The worker plan for this spec on this machine (see
        :func:`~ocrmill.runtime.plan.plan_for`)."""
        from ocrmill.runtime.plan import plan_for

        return plan_for(config, self.device, self.workers, cpu_workers=self.cpu_workers)

    def pool_config(self) -> PoolConfig:
        """The worker pool's settings."""
        from ocrmill.runtime.pool import PoolConfig
        from ocrmill.runtime.worker import DEFAULT_ENGINE_FACTORY

        return PoolConfig(
            task_timeout_s=self.timeout_s,
            max_retries=self.retries,
            max_tasks_per_worker=self.max_tasks_per_worker,
            max_worker_rss_bytes=self.max_worker_rss_bytes,
            engine_factory=self.engine_factory or DEFAULT_ENGINE_FACTORY,
        )


def start_executor(spec: ExecutorSpec, config: Config) -> Executor:
    """Start the local executor ``spec`` asks for (the worker pool, or this process for
    ``workers=0``); the caller closes it. The plan is logged in one line (its reasons at
    debug level: ``-v``, or ``ocrmill doctor``). A spec for Ray is started by
    :func:`ocrmill.distributed.executor.start_ray`, which takes the same spec."""
    from ocrmill.batch.executors import PoolExecutor, SerialExecutor

    if spec.uses_ray:  # Ray sits above the run layer: it starts its own executor
        raise ConfigError("a Ray spec is started by ocrmill.distributed.executor.start_ray")
    if spec.serial:
        log.debug("workers: 0 (reading in this process)")
        return SerialExecutor(config, engine_factory=spec.engine_factory)
    plan = spec.plan(config)
    log_plan(plan)
    return PoolExecutor.start(
        plan,
        config,
        spec.pool_config(),
        max_in_flight=spec.max_in_flight,
        wait_ready=spec.wait_ready,
    )


def log_plan(plan: WorkerPlan) -> None:
    """The plan in one line at info level, why it is so at debug level; a GPU that was
    asked for and not used is a warning."""
    for warning in plan.warnings:
        log.warning("%s", warning)
    log.info("%s", plan.summary())
    log.debug("%s", plan.describe())


def inventory() -> Inventory:
    """What this machine offers the planner: CPUs, memory, GPUs (or why none)."""
    from ocrmill.runtime.devices import probe

    return probe()
