"""The SQLite job store: jobs, their items (one per image or PDF page) and results.

:class:`JobStore` is synchronous and owns one connection; :class:`AsyncJobStore` runs every
call on one dedicated thread, so the event loop never waits on the disk and the connection
is never used by two threads. WAL mode: readers never block the writer, and a committed
result survives the server being killed.
"""

from __future__ import annotations

import asyncio
import functools
import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, ParamSpec, TypeVar

JobStatus = Literal["queued", "running", "done", "failed"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    finished_at REAL,
    total INTEGER NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    options TEXT NOT NULL DEFAULT '{}',
    pdf_dpi INTEGER NOT NULL,
    error TEXT
);
CREATE TABLE IF NOT EXISTS items (
    job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    name TEXT NOT NULL,
    file TEXT NOT NULL,
    kind TEXT NOT NULL,
    page INTEGER,
    seq INTEGER,
    ok INTEGER,
    result TEXT,
    PRIMARY KEY (job_id, idx)
);
CREATE INDEX IF NOT EXISTS items_by_seq ON items (job_id, seq);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, finished_at);
"""


@dataclass(frozen=True)
class JobRow:
    id: str
    status: JobStatus
    created_at: float
    finished_at: float | None
    total: int
    done: int
    failed: int
    options: dict[str, Any]
    pdf_dpi: int
    error: str | None = None


@dataclass(frozen=True)
class ItemRow:
    """One unit of work of a job: an image file, or one page of a PDF file."""

    idx: int
    name: str  # the file name the client sent
    file: str  # the stored file, relative to the job's directory
    kind: Literal["image", "pdf"]
    page: int | None


@dataclass(frozen=True)
class ResultRow:
    idx: int
    seq: int
    name: str
    file_index: int  # position of the file in the upload (items of a PDF share it)
    page: int | None
    result: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.idx,
            "seq": self.seq,
            "file": self.name,
            "file_index": self.file_index,
            "page": self.page,
            "result": self.result,
        }


@dataclass(frozen=True)
class Completion:
    """A result to record for item ``idx`` of ``job_id`` (``seq``: completion order)."""

    job_id: str
    idx: int
    seq: int
    ok: bool
    result_json: str


@dataclass(frozen=True)
class JobCounters:
    """A job's status and counters after some of its results were recorded."""

    job_id: str
    status: JobStatus
    done: int
    failed: int
    finished_at: float | None


def _job(row: sqlite3.Row) -> JobRow:
    return JobRow(
        id=row["id"],
        status=row["status"],
        created_at=row["created_at"],
        finished_at=row["finished_at"],
        total=row["total"],
        done=row["done"],
        failed=row["failed"],
        options=json.loads(row["options"]),
        pdf_dpi=row["pdf_dpi"],
        error=row["error"],
    )


class JobStore:
    """Jobs and results in one SQLite file. Not thread-safe: use from one thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def _tx(self) -> sqlite3.Connection:
        self._db.execute("BEGIN IMMEDIATE")
        return self._db

    def create_job(
        self, job: JobRow, items: Sequence[ItemRow], failed: Sequence[Completion]
    ) -> None:
        """Insert a job with its items; ``failed`` items already have their result."""
        db = self._tx()
        try:
            db.execute(
                "INSERT INTO jobs (id, status, created_at, finished_at, total, done, failed,"
                " options, pdf_dpi, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    job.id,
                    job.status,
                    job.created_at,
                    job.finished_at,
                    job.total,
                    job.done,
                    job.failed,
                    json.dumps(job.options),
                    job.pdf_dpi,
                    job.error,
                ),
            )
            db.executemany(
                "INSERT INTO items (job_id, idx, name, file, kind, page) VALUES (?, ?, ?, ?, ?, ?)",
                [(job.id, i.idx, i.name, i.file, i.kind, i.page) for i in items],
            )
            self._set_results(failed)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _set_results(self, completions: Iterable[Completion]) -> None:
        self._db.executemany(
            "UPDATE items SET seq = ?, ok = ?, result = ? WHERE job_id = ? AND idx = ?",
            [(c.seq, int(c.ok), c.result_json, c.job_id, c.idx) for c in completions],
        )

    def record(self, completions: Sequence[Completion], progress: Sequence[JobCounters]) -> None:
        """Store results and the new counters of their jobs in one transaction."""
        db = self._tx()
        try:
            self._set_results(completions)
            db.executemany(
                "UPDATE jobs SET status = ?, done = ?, failed = ?, finished_at = ? WHERE id = ?",
                [(p.status, p.done, p.failed, p.finished_at, p.job_id) for p in progress],
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def start_job(self, job_id: str) -> None:
        """Its first page is being read: a ``queued`` job becomes ``running`` (a job already
        further on keeps its status)."""
        self._db.execute(
            "UPDATE jobs SET status = 'running' WHERE id = ? AND status = 'queued'", (job_id,)
        )

    def finish_job(self, job_id: str, finished_at: float) -> None:
        """Every page is recorded (and the documents made): status ``done``."""
        self._db.execute(
            "UPDATE jobs SET status = 'done', finished_at = ? WHERE id = ?", (finished_at, job_id)
        )

    def fail_job(self, job_id: str, error: str, finished_at: float) -> None:
        """The whole job failed (it cannot be read at all): status ``failed`` with why."""
        self._db.execute(
            "UPDATE jobs SET status = 'failed', error = ?, finished_at = ? WHERE id = ?",
            (error, finished_at, job_id),
        )

    def get_job(self, job_id: str) -> JobRow | None:
        row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job(row) if row else None

    def unfinished_jobs(self) -> list[JobRow]:
        rows = self._db.execute(
            "SELECT * FROM jobs WHERE status IN ('queued', 'running') ORDER BY created_at"
        ).fetchall()
        return [_job(r) for r in rows]

    def last_seq(self, job_id: str) -> int:
        row = self._db.execute(
            "SELECT COALESCE(MAX(seq), 0) FROM items WHERE job_id = ?", (job_id,)
        ).fetchone()
        return int(row[0])

    def unread_items(self, job_id: str, after_idx: int, limit: int) -> list[ItemRow]:
        """Items without a result, in upload order, after index ``after_idx``."""
        rows = self._db.execute(
            "SELECT idx, name, file, kind, page FROM items"
            " WHERE job_id = ? AND idx > ? AND result IS NULL ORDER BY idx LIMIT ?",
            (job_id, after_idx, limit),
        ).fetchall()
        return [ItemRow(r["idx"], r["name"], r["file"], r["kind"], r["page"]) for r in rows]

    def results(self, job_id: str, since_seq: int, limit: int) -> list[ResultRow]:
        """Results recorded after ``since_seq``, in completion order."""
        rows = self._db.execute(
            "SELECT idx, seq, name, file, page, result FROM items"
            " WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?",
            (job_id, since_seq, limit),
        ).fetchall()
        return [
            ResultRow(
                r["idx"],
                r["seq"],
                r["name"],
                int(r["file"]) if r["file"].isdigit() else 0,
                r["page"],
                json.loads(r["result"]),
            )
            for r in rows
        ]

    def file_pages(self, job_id: str) -> dict[str, int]:
        """Pages (items) per uploaded file of a job."""
        rows = self._db.execute(
            "SELECT file, COUNT(*) AS n FROM items WHERE job_id = ? GROUP BY file", (job_id,)
        ).fetchall()
        return {r["file"]: int(r["n"]) for r in rows}

    def file_names(self, job_id: str) -> dict[str, str]:
        rows = self._db.execute(
            "SELECT DISTINCT file, name FROM items WHERE job_id = ?", (job_id,)
        ).fetchall()
        return {r["file"]: r["name"] for r in rows}

    def recorded_pages(self, job_id: str, file: str) -> int:
        row = self._db.execute(
            "SELECT COUNT(*) FROM items WHERE job_id = ? AND file = ? AND result IS NOT NULL",
            (job_id, file),
        ).fetchone()
        return int(row[0])

    def file_results(self, job_id: str, file: str) -> list[tuple[ItemRow, dict[str, Any]]]:
        """The recorded results of one uploaded file's pages, in page order."""
        rows = self._db.execute(
            "SELECT idx, name, file, kind, page, result FROM items"
            " WHERE job_id = ? AND file = ? AND result IS NOT NULL ORDER BY idx",
            (job_id, file),
        ).fetchall()
        return [
            (ItemRow(r["idx"], r["name"], r["file"], r["kind"], r["page"]), json.loads(r["result"]))
            for r in rows
        ]

    def delete_job(self, job_id: str) -> bool:
        db = self._tx()
        try:
            db.execute("DELETE FROM items WHERE job_id = ?", (job_id,))
            deleted = db.execute("DELETE FROM jobs WHERE id = ?", (job_id,)).rowcount
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return deleted > 0

    def expired_jobs(self, finished_before: float) -> list[str]:
        rows = self._db.execute(
            "SELECT id FROM jobs WHERE status IN ('done', 'failed') AND finished_at < ?",
            (finished_before,),
        ).fetchall()
        return [r["id"] for r in rows]


P = ParamSpec("P")
T = TypeVar("T")


class AsyncJobStore:
    """:class:`JobStore` for the event loop: every call runs on the store's own thread."""

    def __init__(self, path: Path) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ocrmill-store")
        self._store: JobStore | None = None
        self._path = path

    async def open(self) -> None:
        self._store = await self._call(JobStore, self._path)

    async def close(self) -> None:
        if self._store is not None:
            await self._call(self._store.close)
        self._executor.shutdown(wait=True)

    async def _call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    @property
    def sync(self) -> JobStore:
        if self._store is None:
            raise RuntimeError("the job store is not open")
        return self._store

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn`` (usually a bound :class:`JobStore` method) on the store thread."""
        return await self._call(fn, *args, **kwargs)

    def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """The same from a thread that is not the event loop's (the job feeder): blocks."""
        return self._executor.submit(functools.partial(fn, *args, **kwargs)).result()


def now() -> float:
    return time.time()
