"""The Ray executor: the run layer's tasks read by Ray Data actors (driver side).

``map`` lists every task into a dataset (listing ends before reading starts), maps
:class:`~ocrmill.distributed.stage.OcrStage` over it, and yields each record as its block
comes back, with a task rebuilt from the row (name, source, page, kind, page count).
Timeouts, crashes and retries are the actors' worker pools' (the same retry ledger as the
local pool); Ray restarts an actor that dies itself and runs its batch again. That path
suits runs whose records the driver should write (one JSONL file, callbacks);
:meth:`RayExecutor.write_shards` is the one for any number of inputs: listed and written on
the cluster (:mod:`ocrmill.distributed.sharded`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ocrmill.config import Config
from ocrmill.distributed.dataset import (
    DEFAULT_BATCH_SIZE,
    RaySession,
    import_ray,
    ocr_dataset,
    task_dataset,
)
from ocrmill.distributed.plan import ActorPlan, plan_actors
from ocrmill.results import Result, result_from_json
from ocrmill.tasks import Task, TaskKind

if TYPE_CHECKING:
    import pyarrow as pa

    from ocrmill.batch.api import RunSummary
    from ocrmill.batch.executor_spec import ExecutorSpec
    from ocrmill.runtime.plan import WorkerPlan
    from ocrmill.runtime.pool import PoolConfig


class RayExecutor:
    """Reads tasks on Ray. :meth:`start` connects (``address`` or a local Ray) and sizes the
    actor pool from the local worker plan; :meth:`close` disconnects what it connected."""

    def __init__(
        self,
        actors: ActorPlan,
        config: Config,
        pool_config: PoolConfig,
        *,
        session: RaySession | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        self.actors = actors
        self.config = config
        self.pool_config = pool_config
        self.batch_size = batch_size
        self._session = session

    @classmethod
    def start(
        cls,
        plan: WorkerPlan,
        config: Config,
        pool_config: PoolConfig,
        *,
        address: str | None = None,
        fixed: bool = False,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> RayExecutor:
        import logging

        import_ray()  # missing: a usage error (exit 2) that says how to install it
        session = RaySession(address).__enter__()
        try:
            actors = plan_actors(plan, fixed=fixed, cluster_resources=session.cluster_resources())
        except BaseException:
            session.__exit__(None, None, None)
            raise
        logging.getLogger("ocrmill").info("%s", actors.describe())  # one line
        return cls(actors, config, pool_config, session=session, batch_size=batch_size)

    def map(self, tasks: Iterable[Task], stop: threading.Event) -> Iterator[tuple[Task, Result]]:
        listing = task_dataset(_until(tasks, stop), batch_size=self.batch_size)
        if listing.dataset is None or stop.is_set():
            return
        results = ocr_dataset(
            listing.dataset,
            self.actors,
            config=self.config,
            engine_factory=self.pool_config.engine_factory,
            pdf_dpi=listing.pdf_dpi,
            options=listing.options,
            batch_size=self.batch_size,
            timeout_s=self.pool_config.task_timeout_s,
            retries=self.pool_config.max_retries,
            keep_columns=True,
        )
        block: pa.Table
        for block in results.iter_batches(batch_size=None, batch_format="pyarrow"):
            columns = block.select(["result", "path", "kind", "pages"]).to_pydict()
            for line, path, kind, pages in zip(
                columns["result"], columns["path"], columns["kind"], columns["pages"]
            ):
                result = result_from_json(line)
                yield _task_of(result, path, kind, pages, listing.pdf_dpi), result
            if stop.is_set():
                return

    def write_shards(self, specs: Sequence[str], out_dir: str, **options: Any) -> RunSummary:
        """A sharded run on this executor's Ray and actors: the actors list ``specs``,
        read them and write shards into ``out_dir`` (see
        :func:`~ocrmill.distributed.sharded.run_sharded`, which takes ``options``)."""
        from ocrmill.distributed.sharded import run_sharded

        return run_sharded(
            specs,
            out_dir,
            actors=self.actors,
            config=self.config,
            pool_config=self.pool_config,
            **options,
        )

    def close(self) -> None:
        if self._session is not None:
            self._session.__exit__(None, None, None)
            self._session = None


def start_ray(spec: ExecutorSpec, config: Config) -> RayExecutor:
    """The Ray executor for ``spec`` (see :class:`~ocrmill.batch.executor_spec.ExecutorSpec`):
    actors sized from the local worker plan, on the cluster at ``spec.ray_address`` (None: a
    local Ray); ``workers`` other than auto fixes the actor count."""
    from ocrmill.errors import ConfigError

    for flag, value in (
        ("--max-tasks-per-worker", spec.max_tasks_per_worker),
        ("--max-worker-rss", spec.max_worker_rss_bytes),
    ):
        if value:
            raise ConfigError(f"{flag} is not supported with --ray (Ray replaces actors itself)")
    return RayExecutor.start(
        spec.plan(config),
        config,
        spec.pool_config(),
        address=spec.ray_address,
        fixed=str(spec.workers).strip().lower() != "auto",
    )


def _until(tasks: Iterable[Task], stop: threading.Event) -> Iterator[Task]:
    for task in tasks:
        if stop.is_set():
            return
        yield task


def _task_of(
    result: Result, path: bytes | None, kind: str | None, pages: int | None, pdf_dpi: int
) -> Task:
    """The task a result row came from (its source is the path, when it had one), with its
    kind and its document's page count, so document outputs get every page."""
    source: str | bytes = os.fsdecode(path) if path is not None else b""
    task_kind: TaskKind = "pdf" if kind == "pdf" else "image"
    return Task(0, source, result.input, task_kind, result.page, pdf_dpi, pages=pages)
