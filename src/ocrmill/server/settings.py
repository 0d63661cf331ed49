"""Server settings: limits, auth, data directory and the worker pool it owns (plain values)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ocrmill.config import Config
from ocrmill.runtime.plan import WorkerPlan
from ocrmill.runtime.pool import PoolConfig

MIB = 1024**2


def default_data_dir() -> Path:
    """``$OCRMILL_DATA_DIR``, else ``$XDG_DATA_HOME/ocrmill``, else ``~/.local/share/ocrmill``."""
    if os.environ.get("OCRMILL_DATA_DIR"):
        return Path(os.environ["OCRMILL_DATA_DIR"]).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "ocrmill"


@dataclass(frozen=True)
class Limits:
    """Admission control and resource limits; every number here bounds memory or disk.

    * ``max_queue``: single images (``POST /v1/ocr``) accepted and not yet answered; one
      more gets ``503`` with ``Retry-After``. Their uploads wait on disk, not in memory.
    * ``feed_window``: job pages handed to the worker pool at once (None: two batches per
      worker). The rest of a job waits on disk; the pool queue holds at most
      ``max_queue + feed_window`` tasks.
    * ``max_pending_pages``: job pages (files + PDF pages) waiting across all unfinished
      jobs; a new job that would pass it gets ``503``.
    * ``max_job_pages`` / ``max_job_bytes`` / ``max_upload_bytes``: one job's pages, one
      request's bytes, one file's bytes; more is ``413``.
    * ``request_timeout_s``: deadline of ``POST /v1/ocr`` (upload + queue + reading): ``504``.
    * ``job_ttl_s``: finished jobs and their results are deleted this long after finishing.
    """

    max_queue: int = 32
    feed_window: int | None = None
    max_pending_pages: int = 100_000
    max_job_pages: int = 10_000
    max_job_bytes: int = 4096 * MIB
    max_upload_bytes: int = 64 * MIB
    request_timeout_s: float = 60.0
    job_ttl_s: float = 24 * 3600.0
    max_connections: int = 1024


@dataclass(frozen=True)
class ServerSettings:
    """Everything :func:`ocrmill.server.app.create_app` needs."""

    config: Config
    plan: WorkerPlan
    pool: PoolConfig = field(default_factory=PoolConfig)
    data_dir: Path = field(default_factory=default_data_dir)
    limits: Limits = field(default_factory=Limits)
    api_key: str | None = None
    cors_origins: tuple[str, ...] = ()
    pdf_dpi: int = 200

    @property
    def feed_window(self) -> int:
        if self.limits.feed_window is not None:
            return max(1, self.limits.feed_window)
        per_worker = (
            self.pool.max_batch_gpu if self.plan.device_kind == "cuda" else self.pool.max_batch
        )
        return 2 * len(self.plan.slots) * max(1, per_worker)
