"""Ray Data plumbing on the driver: importing Ray, connecting, turning tasks into dataset
rows, and mapping :class:`~ocrmill.distributed.stage.OcrStage` over a dataset.

Nothing here reads an image; the driver never loads a model.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ocrmill.config import Config, ReadOptions
from ocrmill.distributed.plan import ActorPlan
from ocrmill.errors import ConfigError
from ocrmill.runtime.worker import DEFAULT_ENGINE_FACTORY
from ocrmill.tasks import DEFAULT_PDF_DPI, DEFAULT_RETRIES, DEFAULT_TASK_TIMEOUT_S

if TYPE_CHECKING:
    import pyarrow as pa
    import ray.data

    from ocrmill.tasks import Task

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'ocrmill[ray]'"
DEFAULT_BATCH_SIZE = 4  # rows per call: the local pool hands a worker up to 4 tasks at once
# Input blocks hold one batch each at first, so work spreads over every actor at once; after
# this many blocks they grow (BIG_BLOCK_BATCHES batches each) to keep the number of objects
# the driver owns small on long runs.
SMALL_BLOCKS = 1024
BIG_BLOCK_BATCHES = 16


def import_ray() -> Any:
    """Import and return ``ray`` (with Ray Data); a usage error saying how to install it."""
    try:
        import ray
        import ray.data  # Ray Data is a separate part of the ray package
    except ImportError as exc:
        raise ConfigError(
            f"Ray Data is not installed ({exc}); install it with: {INSTALL_HINT}"
        ) from None
    return ray


class RaySession:
    """Connects to Ray for a run: ``address`` (``auto``, ``ray://...``, ``HOST:PORT``) or a
    new local instance; one already initialized in this process is used as it is. Only a
    connection this object made is closed on exit."""

    def __init__(self, address: str | None = None) -> None:
        self.address = address
        self._started = False

    def __enter__(self) -> RaySession:
        ray = import_ray()
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"logging_level": logging.WARNING}
            if self.address is None:
                kwargs["include_dashboard"] = False
            try:
                ray.init(address=self.address, **kwargs)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                where = f"the Ray cluster at {self.address}" if self.address else "a local Ray"
                raise ConfigError(f"cannot start or reach {where}: {exc}") from None
            self._started = True
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # ocrmill's own progress reports on stderr
        # Ray Data's per-run INFO lines go to its log file in the Ray session, not stderr.
        for handler in logging.getLogger("ray.data").handlers:
            if isinstance(handler, logging.StreamHandler) and not isinstance(
                handler, logging.FileHandler
            ):
                handler.setLevel(logging.WARNING)
        return self

    def cluster_resources(self) -> dict[str, float]:
        return dict(import_ray().cluster_resources())

    def __exit__(self, *exc: object) -> None:
        if self._started:
            import_ray().shutdown()


@dataclass
class TaskListing:
    """What :func:`task_dataset` listed: the dataset (None when there was nothing), its row
    count, and the read options the tasks share."""

    dataset: ray.data.Dataset | None
    rows: int
    options: ReadOptions | None
    pdf_dpi: int


def _blocks(tasks: Iterable[Task], batch_size: int, listing: TaskListing) -> Iterator[pa.Table]:
    import pyarrow as pa

    Row = tuple[
        bytes, bytes | None, bytes | None, int | None, str, int | None, str | None, str | None
    ]

    def table(rows: list[Row]) -> pa.Table:
        names, paths, datas, pages, kinds, counts, codes, messages = zip(*rows)
        return pa.table(
            {
                # File-system bytes, so names no UTF-8 can hold reach the actors intact.
                "input": pa.array(names, pa.binary()),
                "path": pa.array(paths, pa.binary()),
                "bytes": pa.array(datas, pa.binary()),
                "page": pa.array(pages, pa.int64()),
                # The task's kind and its document's page count come back with its record:
                # document outputs wait for every page of a document.
                "kind": pa.array(kinds, pa.string()),
                "pages": pa.array(counts, pa.int64()),
                "error_code": pa.array(codes, pa.string()),
                "error_message": pa.array(messages, pa.string()),
            }
        )

    rows: list[Row] = []
    blocks = 0
    options: set[ReadOptions | None] = set()
    dpis: set[int] = set()
    for task in tasks:
        name = os.fsencode(task.name)
        if task.failure is not None:  # an error row: the stage returns its record as it is
            message = task.failure.message.encode("utf-8", "backslashreplace").decode("utf-8")
            rows.append(
                (name, None, None, task.page, task.kind, task.pages, task.failure.code, message)
            )
        else:
            options.add(task.options)
            if task.kind == "pdf":
                dpis.add(task.pdf_dpi)
            if len(options) > 1 or len(dpis) > 1:
                raise ConfigError("a Ray run reads every input with the same options and dpi")
            listing.options = task.options
            listing.pdf_dpi = next(iter(dpis), listing.pdf_dpi)
            if isinstance(task.source, str):
                path = os.fsencode(task.source)
                rows.append((name, path, None, task.page, task.kind, task.pages, None, None))
            elif isinstance(task.source, bytes):
                rows.append((name, None, task.source, task.page, task.kind, task.pages, None, None))
            else:
                raise ConfigError(
                    f"{task.name}: Ray runs read files or encoded bytes, not in-memory arrays"
                )
        listing.rows += 1
        if len(rows) >= batch_size * (1 if blocks < SMALL_BLOCKS else BIG_BLOCK_BATCHES):
            yield table(rows)
            rows, blocks = [], blocks + 1
    if rows:
        yield table(rows)


def task_dataset(tasks: Iterable[Task], *, batch_size: int = DEFAULT_BATCH_SIZE) -> TaskListing:
    """The tasks as dataset rows (``input``, ``path`` or ``bytes``, ``page``, ``kind``,
    ``pages``).

    Listing finishes before reading starts; blocks are put into Ray's object store as they
    are made, so the driver holds one block at a time plus a reference per block.
    """
    ray = import_ray()
    listing = TaskListing(None, 0, None, DEFAULT_PDF_DPI)
    refs = [ray.put(t) for t in _blocks(tasks, batch_size, listing)]
    listing.dataset = ray.data.from_arrow_refs(refs) if refs else None
    return listing


def ocr_dataset(
    dataset: ray.data.Dataset,
    actors: ActorPlan,
    *,
    config: Config | None = None,
    engine_factory: str = DEFAULT_ENGINE_FACTORY,
    pdf_dpi: int = DEFAULT_PDF_DPI,
    options: ReadOptions | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    timeout_s: float | None = DEFAULT_TASK_TIMEOUT_S,
    retries: int = DEFAULT_RETRIES,
    keep_columns: bool = True,
    stage: type | None = None,
    stage_kwargs: Mapping[str, Any] | None = None,
) -> ray.data.Dataset:
    """``dataset`` with :class:`~ocrmill.distributed.stage.OcrStage` (or ``stage``, a
    subclass taking ``stage_kwargs`` besides) mapped over it by an actor pool sized by
    ``actors``.

    Lazy, like every Ray Data transform: write it (``write_parquet``) or iterate it to run it.
    ``dataset`` may be :func:`task_dataset`'s, or any dataset with ``path`` or ``bytes``
    rows, e.g. ``ray.data.read_binary_files(paths, include_paths=True)``.
    """
    from ocrmill.distributed.stage import OcrStage

    ray = import_ray()
    constructor_kwargs = {
        **(stage_kwargs or {}),
        "config": config or Config(),
        "engine_factory": engine_factory,
        "device": actors.device,
        "threads": actors.threads,
        "pdf_dpi": pdf_dpi,
        "options": options,
        "timeout_s": timeout_s,
        "retries": retries,
        "keep_columns": keep_columns,
    }
    return dataset.map_batches(
        stage or OcrStage,
        fn_constructor_kwargs=constructor_kwargs,
        batch_size=batch_size,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(min_size=actors.min_actors, max_size=actors.max_actors),
        num_cpus=actors.num_cpus,
        num_gpus=actors.num_gpus,
    )
