"""The OCR stage of a Ray Data pipeline (runs in each Ray actor).

:class:`OcrStage` is a callable class for ``Dataset.map_batches``. Each actor starts a
one-worker :class:`~ocrmill.runtime.pool.WorkerPool` (the engine lives in that worker
process, started with ``spawn``) and reads every batch through it with the run layer's
:class:`~ocrmill.batch.executors.PoolExecutor`: the same tasks, records, timeouts and retry
ledger as ``ocrmill run`` on one machine. An input that crashes or hangs the engine kills
only the actor's worker, which the pool replaces (the input is retried alone, then gets a
``worker_crashed`` or ``timeout`` record); an actor that dies itself (the OOM killer,
``ray.kill``, a lost node) is restarted by Ray, which runs its batch again.

Input rows have ``path`` (a file: image or PDF) or ``bytes`` (an encoded image or PDF, as
``ray.data.read_binary_files`` gives them), and optionally ``input`` (the record's name;
default the path), ``page`` (0-based page of a PDF or multi-page TIFF; such a row without
one is read page by page, one output row each) and ``error_code`` / ``error_message`` (an
input that could not be listed; it becomes that error row). ``path`` and ``input`` may be strings or file-system
bytes. Output rows have the columns :data:`RESULT_COLUMNS`:

======================== ===================================================================
``input``, ``page``      the record's name and 0-based page (null for one-page images)
``ok``                   true when read (possibly with no text), false for an error row
``text``                 the text in reading order (null when ``ok`` is false)
``error_code``, ``error_message``  why it failed (null when ``ok``)
``result``               the whole record as one JSON line, exactly as ``ocrmill run`` writes
======================== ===================================================================

plus, with ``keep_columns``, the other input columns except ``bytes``.
"""

from __future__ import annotations

import math
import os
import tempfile
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ocrmill.batch.executors import PoolExecutor
from ocrmill.batch.sources import TIFF_MAGIC, document_tasks
from ocrmill.config import Config, ReadOptions
from ocrmill.errors import ConfigError, InputError
from ocrmill.results import PageFailure, Result, result_to_json
from ocrmill.runtime.worker import DEFAULT_ENGINE_FACTORY
from ocrmill.tasks import (
    DEFAULT_PDF_DPI,
    DEFAULT_RETRIES,
    DEFAULT_TASK_TIMEOUT_S,
    Task,
    TaskKind,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from ocrmill.runtime.pool import PoolConfig, WorkerPool

RESULT_COLUMNS = ("input", "page", "ok", "text", "error_code", "error_message", "result")


@dataclass
class _Row:
    """One record to produce from an input row: a task to read, or a known result."""

    row: int  # index of the input row it came from
    task: Task | None = None
    result: Result | None = None


def _fs_text(value: Any) -> str | None:
    """A name from a string or file-system bytes column (bytes keep undecodable names)."""
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return os.fsdecode(bytes(value))
    return str(value)


def _page_value(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):  # a null from a pandas column
        return None
    return int(value)


def utf8(text: str) -> str:
    """Valid UTF-8 for Arrow: a lone surrogate (an undecodable file-name byte) becomes the
    JSON escape ``\\udcXX``, as :class:`~ocrmill.batch.sinks.JsonlSink` writes it."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _is_pdf_bytes(data: bytes) -> bool:
    from ocrmill.pipeline.pdf import PDF_MAGIC

    return data[:1024].lstrip().startswith(PDF_MAGIC)


def _is_pdf_path(path: str) -> bool:
    from ocrmill.batch.sources import IMAGE_EXTENSIONS
    from ocrmill.pipeline.pdf import is_pdf

    ext = os.path.splitext(path)[1].lower()
    if ext == ".pdf":
        return True
    return ext not in IMAGE_EXTENSIONS and is_pdf(path)


def _actor_gpu() -> str:
    """The GPU Ray assigned to this actor, as a pool slot device (``cuda:N``).

    Raises :class:`~ocrmill.errors.ConfigError` when Ray assigned none (the actor reserves no
    GPU, or the stage runs outside a Ray actor) or names it by something other than an
    index: a CUDA stage never guesses a GPU, which could be another actor's.
    """
    import ray

    # Outside Ray (not started in this process) there is no actor and so no GPU; asking
    # get_gpu_ids() there would start a local Ray as a side effect.
    ids = ray.get_gpu_ids() if ray.is_initialized() else []
    if not ids:
        raise ConfigError(
            "OcrStage(device='cuda') runs in a Ray actor that reserves a GPU (num_gpus > 0, "
            "as ocr_dataset asks for on a GPU plan), but Ray assigned this one none; "
            "reserve a GPU or use device='cpu'"
        )
    names = sorted(str(i) for i in ids)
    if not all(name.isdigit() for name in names):
        raise ConfigError(
            f"Ray assigned this actor GPU {', '.join(names)}, not GPU indices; "
            "give CUDA_VISIBLE_DEVICES on the Ray nodes as indices"
        )
    return f"cuda:{min(int(name) for name in names)}"


class OcrStage:
    """OCR as a Ray Data stage: ``ds.map_batches(OcrStage, batch_format="pyarrow", ...)``.

    The constructor runs once per actor: it starts a one-worker pool whose worker builds the
    engine with ``engine_factory`` (``module:callable`` taking ``(config, device, threads)``)
    and waits until it is ready. Each call reads one batch (a ``pyarrow.Table``) and returns
    a table of result rows (see the module docstring). Calls are serialized.
    :func:`ocrmill.distributed.dataset.ocr_dataset` wires it up with the right resources.
    """

    def __init__(
        self,
        config: Config | None = None,
        *,
        engine_factory: str = DEFAULT_ENGINE_FACTORY,
        device: str = "cpu",
        threads: int = 1,
        pdf_dpi: int = DEFAULT_PDF_DPI,
        options: ReadOptions | None = None,
        timeout_s: float | None = DEFAULT_TASK_TIMEOUT_S,
        retries: int = DEFAULT_RETRIES,
        keep_columns: bool = True,
        warmup: bool = True,
    ) -> None:
        from ocrmill.runtime.plan import WorkerPlan, WorkerSlot
        from ocrmill.runtime.pool import PoolConfig, WorkerPool

        self.config = config or Config()
        self.pdf_dpi = pdf_dpi
        self.options = options
        self.keep_columns = keep_columns
        self._lock = threading.Lock()
        slot = WorkerSlot(_actor_gpu() if device.startswith("cuda") else "cpu", threads)
        pool_config: PoolConfig = PoolConfig(
            task_timeout_s=timeout_s,
            max_retries=max(0, retries),
            engine_factory=engine_factory,
            warmup=warmup,
        )
        self.pool: WorkerPool = WorkerPool(WorkerPlan((slot,), ()), self.config, pool_config)
        self.pool.start()
        self.executor = PoolExecutor(self.pool)

    def __del__(self) -> None:
        pool = getattr(self, "pool", None)
        if pool is not None:
            pool.shutdown(wait=False, kill=True)

    # -- one batch ----------------------------------------------------------------------

    def __call__(self, batch: pa.Table) -> pa.Table:
        with self._lock:
            rows, temp_files = self._rows(batch)
            try:
                self._read(rows)
            finally:
                for path in temp_files:
                    Path(path).unlink(missing_ok=True)
            results = [row.result for row in rows]
            if temp_files:
                results = [_rename_temp(r, temp_files) for r in results]
            return self._table(batch, rows, results)

    def _rows(self, batch: pa.Table) -> tuple[list[_Row], list[str]]:
        n = batch.num_rows

        def column(name: str) -> list[Any]:
            return batch.column(name).to_pylist() if name in batch.column_names else [None] * n

        names, paths, datas = column("input"), column("path"), column("bytes")
        pages, codes, messages = column("page"), column("error_code"), column("error_message")
        rows: list[_Row] = []
        temp_files: list[str] = []
        for i in range(n):
            name = _fs_text(names[i]) or _fs_text(paths[i]) or f"<row {i}>"
            page: int | None = None
            try:
                page = _page_value(pages[i])
                if codes[i]:
                    message = str(messages[i] or f"{name}: cannot be read")
                    rows.append(_Row(i, result=PageFailure(name, str(codes[i]), message, page)))
                elif datas[i] is not None:
                    rows.extend(self._bytes_rows(i, name, bytes(datas[i]), page, temp_files))
                elif paths[i] is not None:
                    rows.extend(self._path_rows(i, name, _fs_text(paths[i]) or "", page))
                else:
                    empty = InputError(f"{name}: the row has neither a 'path' nor a 'bytes' value")
                    rows.append(_Row(i, result=PageFailure.from_error(name, empty, page)))
            except Exception as exc:  # never let one odd row fail the batch
                failure = PageFailure.from_exception(name, exc, page, context=f"{name}: bad row")
                rows.append(_Row(i, result=failure))
        return rows, temp_files

    def _task(self, name: str, source: str | bytes, page: int | None, pdf: bool) -> Task:
        kind: TaskKind = "pdf" if pdf else "image"
        return Task(0, source, name, kind, page, self.pdf_dpi, self.options)

    def _bytes_rows(
        self, row: int, name: str, data: bytes, page: int | None, temp_files: list[str]
    ) -> list[_Row]:
        if not _is_pdf_bytes(data):
            if page is not None or not data.startswith(TIFF_MAGIC):
                return [_Row(row, task=self._task(name, data, page, pdf=False))]
            return [_Row(row, task=t) for t in self._tiff_tasks(name, data)]
        # PDF pages are rendered from a file: this one lives until the batch is done.
        fd, tmp = tempfile.mkstemp(prefix="ocrmill-", suffix=".pdf")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        temp_files.append(tmp)
        return self._path_rows(row, name, tmp, page)

    def _tiff_tasks(self, name: str, data: bytes) -> list[Task]:
        """A multi-page TIFF's bytes as one task per page (one task when it cannot be
        counted: reading it reports why)."""
        from ocrmill.pipeline.decode import page_count

        try:
            count = page_count(data, name=name)
        except Exception:
            count = 1
        if count <= 1:
            return [self._task(name, data, None, pdf=False)]
        return [
            Task(0, data, name, "image", i, self.pdf_dpi, self.options, pages=count)
            for i in range(count)
        ]

    def _path_rows(self, row: int, name: str, path: str, page: int | None) -> list[_Row]:
        if page is not None:  # one page of a PDF or of a multi-page image
            return [_Row(row, task=self._task(name, path, page, pdf=_is_pdf_path(path)))]
        # Every page of the document (the one expansion of the run layer); an unreadable
        # PDF is one failed task, whose record the executor hands back unread.
        tasks = document_tasks(path, name, pdf_dpi=self.pdf_dpi, options=self.options)
        return [_Row(row, task=task) for task in tasks]

    def _read(self, rows: list[_Row]) -> None:
        todo = {id(row.task): row for row in rows if row.result is None and row.task is not None}
        tasks = [row.task for row in todo.values() if row.task is not None]
        for task, result in self.executor.map(tasks, threading.Event()):
            todo[id(task)].result = result

    def _table(self, batch: pa.Table, rows: list[_Row], results: list[Result | None]) -> pa.Table:
        import pyarrow as pa

        cols: dict[str, list[Any]] = {name: [] for name in RESULT_COLUMNS}
        for row, result in zip(rows, results):
            assert result is not None, f"row {row.row} has no result"
            cols["input"].append(utf8(result.input))
            cols["page"].append(result.page)
            cols["ok"].append(result.ok)
            if isinstance(result, PageFailure):
                cols["text"].append(None)
                cols["error_code"].append(result.code)
                cols["error_message"].append(utf8(result.message))
            else:
                cols["text"].append(utf8(result.text))
                cols["error_code"].append(None)
                cols["error_message"].append(None)
            cols["result"].append(utf8(result_to_json(result)))
        types = {"page": pa.int64(), "ok": pa.bool_()}
        arrays = {
            name: pa.array(values, types.get(name, pa.string())) for name, values in cols.items()
        }
        if self.keep_columns:
            index = pa.array([row.row for row in rows], pa.int64())
            for name in batch.column_names:
                if name not in arrays and name != "bytes":
                    arrays[name] = batch.column(name).take(index)
        return pa.table(arrays)


def _rename_temp(result: Result | None, temp_files: list[str]) -> Result | None:
    """A failure message names the input, not the temporary file its PDF bytes went to."""
    if not isinstance(result, PageFailure):
        return result
    message = result.message
    for tmp in temp_files:
        message = message.replace(tmp, result.input)
    return replace(result, message=message)
