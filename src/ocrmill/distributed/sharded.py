"""A sharded Ray run (driver side): ``ocrmill run --ray INPUTS -o DIR/``.

Inputs are listed on the cluster as they are read (:mod:`ocrmill.distributed.listing`,
:class:`~ocrmill.distributed.input_source.InputListing`), the actors write each chunk's
records to a shard and its documents to their folders
(:class:`~ocrmill.distributed.shard_stage.ShardStage`), and resume reads the shards'
manifests on the actors. The driver holds the run's units (one per spec, or per 8 MiB of a
list file) and a tally; per chunk it gets one summary row, and per input nothing. It writes
``DIR/run.json`` at the end.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ocrmill.batch.api import RunSummary, StopSignals
from ocrmill.batch.progress import Tally
from ocrmill.config import Config, ReadOptions
from ocrmill.distributed.dataset import import_ray, ocr_dataset
from ocrmill.distributed.listing import plan_units
from ocrmill.distributed.plan import ActorPlan
from ocrmill.distributed.shards import (
    DEFAULT_CHUNK_SIZE,
    check_plan,
    drop_units_except,
    has_shards,
    write_run_summary,
)
from ocrmill.errors import ConfigError
from ocrmill.tasks import DEFAULT_PDF_DPI

if TYPE_CHECKING:
    from ocrmill.batch.files import FileFormat
    from ocrmill.runtime.pool import PoolConfig

log = logging.getLogger("ocrmill")

PROGRESS_INTERVAL_S = 10.0
LISTERS = 4  # list units read at once


def run_sharded(
    specs: Sequence[str],
    out_dir: str | os.PathLike[str],
    *,
    actors: ActorPlan,
    config: Config,
    pool_config: PoolConfig,
    documents: Mapping[FileFormat, str] | None = None,
    resume: bool = False,
    retry_failed: bool = False,
    pdf_dpi: int = DEFAULT_PDF_DPI,
    options: ReadOptions | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    software: str = "ocrmill",
    quiet: bool = False,
    stop: threading.Event | None = None,
    base: str | None = None,
) -> RunSummary:
    """Read ``specs`` (paths, directories, globs, ``@list`` files; not stdin) on the Ray
    that is connected, into shards in ``out_dir`` and document files in ``documents``
    (format -> folder). Paths must mean the same on every node (shared storage); relative
    ones start at ``base`` (default: the current directory). ``resume``: skip the chunks
    whose shards are complete and read the rest; without it ``out_dir`` must hold no
    shards. Progress goes to the log every 10 s unless ``quiet``."""
    ray = import_ray()
    from ocrmill.distributed.input_source import InputListing
    from ocrmill.distributed.shard_stage import ShardStage

    stop = stop or threading.Event()
    resume = resume or retry_failed
    base = os.path.abspath(base or os.getcwd())
    out = os.path.join(base, os.fspath(out_dir))
    if not resume and has_shards(out):
        raise ConfigError(
            f"{os.fspath(out_dir)} holds the shards of an earlier run: add --resume to go on "
            "with it, or give an empty folder"
        )
    units = plan_units(specs, base)
    os.makedirs(out, exist_ok=True)
    check_plan(out, {"inputs": list(specs), "shard_size": chunk_size}, resume)
    drop_units_except(out, [unit.label for unit in units])  # a list file that shrank
    started = time.monotonic()
    tally = Tally()
    first_shard_s: float | None = None
    interrupted = False
    if units:
        # Listing is light I/O: its tasks reserve no CPU (the actors may hold every one),
        # and a few run at once. (No override_num_blocks: set to the unit count, it made
        # Ray Data send every chunk of a one-unit run to one actor.)
        listing = ray.data.read_datasource(
            InputListing(units, base, chunk_size, out),
            num_cpus=0,
            concurrency=min(len(units), LISTERS),
        )
        summaries = ocr_dataset(
            listing,
            actors,
            config=config,
            engine_factory=pool_config.engine_factory,
            pdf_dpi=pdf_dpi,
            options=options,
            batch_size=1,  # one chunk a call
            timeout_s=pool_config.task_timeout_s,
            retries=pool_config.max_retries,
            keep_columns=False,
            stage=ShardStage,
            stage_kwargs={
                "out_dir": out,
                "base": base,
                "documents": {fmt: os.path.join(base, d) for fmt, d in (documents or {}).items()},
                "resume": resume,
                "retry_failed": retry_failed,
                "software": software,
            },
        )
        last_report = time.monotonic()
        with StopSignals(stop):
            try:
                for row in summaries.iter_rows():  # one per chunk
                    _count(tally, row)
                    if first_shard_s is None:
                        first_shard_s = time.monotonic() - started
                    if not quiet and time.monotonic() - last_report >= PROGRESS_INTERVAL_S:
                        last_report = time.monotonic()
                        log.info("ocrmill: %s", tally.line())
                    if stop.is_set():
                        break
            except KeyboardInterrupt:
                stop.set()
        interrupted = stop.is_set()
    summary = RunSummary.of(tally, interrupted)
    write_run_summary(
        out,
        {
            "records_read": summary.read,
            "records_skipped": summary.skipped,
            "failed": summary.failures,
            "kept_failed": summary.kept_failed,
            "interrupted": interrupted,
            "elapsed_s": round(summary.elapsed_s, 3),
            "first_shard_s": None if first_shard_s is None else round(first_shard_s, 3),
            "inputs": list(specs),
            "resumed": resume,
        },
    )
    return summary


def _count(tally: Tally, row: Mapping[str, Any]) -> None:
    """One chunk's summary row into the run's tally."""
    tally.done += row["read"]
    tally.failed.update(json.loads(row["failed"]))
    tally.skipped += row["skipped"]
    tally.kept_failed.update(json.loads(row["kept"]))
