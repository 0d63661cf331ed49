"""Ray Data integration: :class:`OcrStage` runs in Ray actors; listing, planning and writing run on the driver.

``OcrStage`` is a callable class for ``Dataset.map_batches``: each actor builds one engine
(through the same ``module:factory`` path as pool workers) and reads batches of rows.
Every row yields exactly one result row (or one per page for a whole PDF); anything that
goes wrong becomes an error row (``ok`` false), never a failed dataset:

* a bad input gets its error record, as with ``ocrmill run``;
* an exception from the engine for a whole batch turns every row of it into ``internal``;
* an actor that dies (segfault, OOM killer, ``ray.kill``) is restarted by Ray and its batch
  retried (Ray Data's defaults: ``max_restarts=-1``, ``max_task_retries=-1``). Before each
  chunk the actor writes the rows it is reading to a small journal file; a restarted actor
  reads it back and retries those rows one at a time, so an input that kills the actor
  every time is found and recorded as ``worker_crashed`` after ``retries`` solo attempts
  instead of being retried forever. A chunk running past ``timeout_s`` makes the actor exit
  the same way (recorded as ``timeout``). This mirrors the local pool's recovery.

Input rows have ``path`` (a file: image or PDF) or ``bytes`` (encoded image or PDF, as
``ray.data.read_binary_files`` gives them), and optionally ``input`` (the record's name;
default the path), ``page`` (0-based PDF page; a PDF row without one is read page by page,
one output row each) and ``error_code`` / ``error_message`` (an input that could not be
listed; it becomes that error row). ``path`` and ``input`` may be strings or file-system
bytes. Output rows have the columns :data:`RESULT_COLUMNS`:

======================== ===================================================================
``input``, ``page``      the record's name and 0-based PDF page (null for images)
``ok``                   true when read (possibly with no text), false for an error row
``text``                 the text in reading order (null when ``ok`` is false)
``error_code``, ``error_message``  why it failed (null when ``ok``)
``result``               the whole record as one JSON line, exactly as ``ocrmill run`` writes
======================== ===================================================================

plus, with ``keep_columns``, the other input columns except ``bytes``.

:func:`run_batch_on_ray` is ``ocrmill run --ray``: inputs are listed on the driver with
:func:`ocrmill.batch.sources.iter_inputs` (directories, globs, ``@lists``, PDF pages as for
``ocrmill run``), read by an actor pool sized by :func:`plan_actors`, and written to the
same JSONL sink, one record per line in completion order, so ``--resume`` works the same.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ocrmill.config import Config, ReadOptions
from ocrmill.errors import (
    ConfigError,
    EmptyInputError,
    InputError,
    InternalError,
    OcrmillError,
    TaskTimeoutError,
    WorkerCrashedError,
)
from ocrmill.results import PageFailure, Result, result_from_json, result_to_json
from ocrmill.runtime.plan import WorkerPlan
from ocrmill.runtime.worker import DEFAULT_ENGINE_FACTORY, Task, load_factory, run_tasks

if TYPE_CHECKING:
    import pyarrow as pa
    import ray.data

    from ocrmill.batch.progress import Progress
    from ocrmill.batch.runner import RunSummary
    from ocrmill.batch.sinks import JsonlSink, RecordKey
    from ocrmill.runtime.worker import EngineLike

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'ocrmill[ray]'"
RESULT_COLUMNS = ("input", "page", "ok", "text", "error_code", "error_message", "result")
DEFAULT_BATCH_SIZE = 4  # rows per call: the local pool hands a worker up to 4 tasks at once
# Input blocks hold one batch each at first, so work spreads over every actor at once; after
# this many blocks they grow (BIG_BLOCK_BATCHES batches each) to keep the number of objects
# the driver owns small on long runs.
SMALL_BLOCKS = 1024
BIG_BLOCK_BATCHES = 16
_PDF_EXTENSION = ".pdf"


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


# -- the actor plan (driver) ---------------------------------------------------------------


@dataclass(frozen=True)
class ActorPlan:
    """How many OCR actors Ray Data may run and what each one reserves."""

    min_actors: int
    max_actors: int
    num_cpus: float  # per actor: its engine's inference threads
    num_gpus: float  # per actor: 1 / instances per GPU, 0 on CPU
    threads: int
    device: str  # "cpu" or "cuda"
    reasons: tuple[str, ...] = ()

    def describe(self) -> str:
        size = (
            str(self.max_actors)
            if self.min_actors == self.max_actors
            else f"{self.min_actors}-{self.max_actors}"
        )
        head = (
            f"ray actors: {size} x {self.device} "
            f"({self.num_cpus:g} CPU, {self.num_gpus:g} GPU, {self.threads} thread(s) each)"
        )
        return "\n".join([head, *(f"  - {r}" for r in self.reasons)])


def gpu_fraction(instances_per_gpu: int) -> float:
    """``num_gpus`` for one of ``instances_per_gpu`` actors sharing a GPU (rounded down to
    Ray's 1/10000 resolution so that many always fit on one GPU)."""
    return math.floor(10_000 / max(1, instances_per_gpu)) / 10_000


def plan_actors(
    plan: WorkerPlan, *, fixed: bool, cluster_resources: Mapping[str, float] | None = None
) -> ActorPlan:
    """Turn the local worker plan into Ray Data actor resources.

    Each actor gets the plan's threads as ``num_cpus``; on a GPU plan ``num_gpus`` is
    1 / (instances the VRAM plan puts on one GPU), so Ray packs as many actors on a GPU as
    the local pool would start on it. ``fixed`` (``--workers N``): exactly as many actors as
    the plan has workers. Otherwise the pool autoscales from that many (at most what the
    cluster holds) up to what ``cluster_resources`` (``ray.cluster_resources()``) can run.
    """
    reasons = list(plan.reasons)
    local = len(plan.slots)
    threads = max(slot.threads for slot in plan.slots)
    num_gpus = 0.0
    device = "cpu"
    if plan.device_kind == "cuda":
        per_gpu = Counter(s.gpu_index for s in plan.slots if s.gpu_index is not None)
        instances = max(per_gpu.values())
        num_gpus = gpu_fraction(instances)
        device = "cuda"
        reasons.append(f"{instances} engine(s) per GPU by the memory plan: num_gpus={num_gpus:g}")
    if fixed or not cluster_resources:
        return ActorPlan(local, local, float(threads), num_gpus, threads, device, tuple(reasons))
    cpus = float(cluster_resources.get("CPU", 0.0))
    gpus = float(cluster_resources.get("GPU", 0.0))
    capacity = math.floor(cpus / threads)
    if num_gpus:
        capacity = min(capacity, math.floor(gpus / num_gpus + 1e-9))
    capacity = max(1, capacity)
    reasons.append(
        f"Ray cluster: {cpus:g} CPUs, {gpus:g} GPUs -> up to {capacity} actor(s), "
        f"starting with {min(local, capacity)}"
    )
    return ActorPlan(
        min(local, capacity), capacity, float(threads), num_gpus, threads, device, tuple(reasons)
    )


# -- the stage (in each actor) ----------------------------------------------------------------


@dataclass
class _Item:
    """One record to produce: a task to read, or a result already known."""

    row: int  # index of the input row it came from
    name: str
    page: int | None
    task: Task | None = None
    result: Result | None = None


@dataclass
class _Suspect:
    """A row that was being read when the actor died: how often it died alone, and how."""

    strikes: int
    cause: str  # "crash" or "timeout"


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


def _utf8(text: str) -> str:
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
    if ext == _PDF_EXTENSION:
        return True
    return ext not in IMAGE_EXTENSIONS and is_pdf(path)


class _Journal:
    """The rows an actor is reading, in a file that outlives the actor's process.

    Keyed by the Ray actor id, which a restarted actor keeps; kept in the node's temporary
    directory (a restart on another node starts without it: its rows are then retried as a
    batch once more, and a killer row gets its own journal there).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)

    @classmethod
    def open(cls, actor_id: str, directory: str | None) -> _Journal | None:
        root = Path(directory or tempfile.gettempdir()) / "ocrmill-ray"
        try:
            return cls(root / f"{actor_id}.json")
        except OSError as exc:
            log.warning("ocrmill: no crash journal (%s): a killer input may be retried", exc)
            return None

    def write(
        self,
        keys: list[RecordKey],
        *,
        solo: bool,
        cause: str,
        suspects: dict[RecordKey, _Suspect],
    ) -> None:
        data = {
            "keys": [list(k) for k in keys],
            "solo": solo,
            "cause": cause,
            "suspects": [[n, p, s.strikes, s.cause] for (n, p), s in suspects.items()],
        }
        tmp = self.path.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(data))
            tmp.replace(self.path)
        except OSError as exc:
            log.warning("ocrmill: cannot write the crash journal %s: %s", self.path, exc)

    def recover(self) -> dict[RecordKey, _Suspect]:
        """Suspects left by the previous life of this actor (empty if it did not die)."""
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        suspects: dict[RecordKey, _Suspect] = {}
        try:
            for name, page, strikes, cause in data.get("suspects", []):
                suspects[(str(name), page)] = _Suspect(int(strikes), str(cause))
            for name, page in data.get("keys", []):
                key = (str(name), page)
                before = suspects.get(key, _Suspect(0, "crash"))
                # A row that died in a batch becomes a suspect; one that died alone, a culprit.
                strikes = before.strikes + (1 if data.get("solo") else 0)
                suspects[key] = _Suspect(strikes, str(data.get("cause", "crash")))
        except (TypeError, ValueError):
            return {}
        return suspects

    def clear(self) -> None:
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            pass


class OcrStage:
    """OCR as a Ray Data stage: ``ds.map_batches(OcrStage, batch_format="pyarrow", ...)``.

    The constructor runs once per actor and builds the engine there with
    ``engine_factory`` (``module:callable`` taking ``(config, device, threads)``, as pool
    workers do); each call reads one batch (a ``pyarrow.Table``) and returns a table of
    result rows (see the module docstring). Calls are serialized: the engine is never used
    by two threads. :func:`ocr_dataset` wires it up with the right resources.
    """

    def __init__(
        self,
        config: Config | None = None,
        *,
        engine_factory: str = DEFAULT_ENGINE_FACTORY,
        device: str = "cpu",
        threads: int = 1,
        pdf_dpi: int = 200,
        options: ReadOptions | None = None,
        timeout_s: float | None = 600.0,
        retries: int = 1,
        chunk_size: int = DEFAULT_BATCH_SIZE,
        keep_columns: bool = True,
        warmup: bool = True,
        journal_dir: str | None = None,
    ) -> None:
        self.config = config or Config()
        self.pdf_dpi = pdf_dpi
        self.options = options
        self.timeout_s = timeout_s
        self.retries = max(0, retries)
        self.chunk_size = max(1, chunk_size)
        self.keep_columns = keep_columns
        self._lock = threading.Lock()
        self._suspects: dict[RecordKey, _Suspect] = {}
        self._journal: _Journal | None = None
        actor_id = _actor_id()
        if actor_id is not None:
            if not device.startswith("cuda"):
                # A CPU actor never creates a CUDA context, whatever libraries it loads.
                os.environ["CUDA_VISIBLE_DEVICES"] = ""
            self._journal = _Journal.open(actor_id, journal_dir)
        if self._journal is not None:
            self._suspects = self._journal.recover()
            if self._suspects:
                log.warning(
                    "ocrmill: actor restarted; %d row(s) in flight will be retried alone",
                    len(self._suspects),
                )
                self._journal.write([], solo=False, cause="crash", suspects=self._suspects)
        # Ray narrows CUDA_VISIBLE_DEVICES to the GPU it assigned: that GPU is cuda:0 here.
        engine_device = "cuda:0" if device.startswith("cuda") else "cpu"
        factory = load_factory(engine_factory)
        self.engine: EngineLike = factory(self.config, engine_device, threads)
        if warmup:
            self.engine.warmup()

    # -- one batch ----------------------------------------------------------------------

    def __call__(self, batch: pa.Table) -> pa.Table:
        with self._lock:
            items, temp_files = self._items(batch)
            try:
                results = self._read(items)
            finally:
                for path in temp_files:
                    Path(path).unlink(missing_ok=True)
            if temp_files:
                results = [_rename_temp(r, temp_files) for r in results]
            return self._table(batch, items, results)

    def _items(self, batch: pa.Table) -> tuple[list[_Item], list[str]]:
        n = batch.num_rows

        def column(name: str) -> list[Any]:
            return batch.column(name).to_pylist() if name in batch.column_names else [None] * n

        names, paths, datas = column("input"), column("path"), column("bytes")
        pages, codes, messages = column("page"), column("error_code"), column("error_message")
        items: list[_Item] = []
        temp_files: list[str] = []
        for i in range(n):
            name = _fs_text(names[i]) or _fs_text(paths[i]) or f"<row {i}>"
            page: int | None = None
            try:
                page = _page_value(pages[i])
                if codes[i]:
                    message = str(messages[i] or f"{name}: cannot be read")
                    failure = PageFailure(name, str(codes[i]), message, page)
                    items.append(_Item(i, name, page, result=failure))
                elif datas[i] is not None:
                    items.extend(self._bytes_items(i, name, bytes(datas[i]), page, temp_files))
                elif paths[i] is not None:
                    items.extend(self._path_items(i, name, _fs_text(paths[i]) or "", page))
                else:
                    empty = InputError(f"{name}: the row has neither a 'path' nor a 'bytes' value")
                    items.append(_Item(i, name, page, result=_failure(name, empty, page)))
            except Exception as exc:  # never let one odd row fail the batch
                odd = InternalError(f"{name}: bad row: {type(exc).__name__}: {exc}")
                items.append(_Item(i, name, page, result=_failure(name, odd, page)))
        for task_id, item in enumerate(items):
            if item.task is not None:
                item.task = _with_id(item.task, task_id)
        return items, temp_files

    def _task(self, name: str, source: str | bytes, page: int | None, pdf: bool) -> Task:
        return Task(
            id=0,
            source=source,
            name=name,
            kind="pdf" if pdf else "image",
            page=page,
            pdf_dpi=self.pdf_dpi,
            options=self.options,
        )

    def _bytes_items(
        self, row: int, name: str, data: bytes, page: int | None, temp_files: list[str]
    ) -> list[_Item]:
        if not _is_pdf_bytes(data):
            return [_Item(row, name, page, task=self._task(name, data, page, pdf=False))]
        # PDF pages are rendered from a file: this one lives until the batch is done.
        fd, tmp = tempfile.mkstemp(prefix="ocrmill-", suffix=".pdf")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        temp_files.append(tmp)
        return self._pdf_items(row, name, tmp, page)

    def _path_items(self, row: int, name: str, path: str, page: int | None) -> list[_Item]:
        if page is None and not _is_pdf_path(path):
            return [_Item(row, name, None, task=self._task(name, path, None, pdf=False))]
        return self._pdf_items(row, name, path, page)

    def _pdf_items(self, row: int, name: str, path: str, page: int | None) -> list[_Item]:
        if page is not None:
            return [_Item(row, name, page, task=self._task(name, path, page, pdf=True))]
        from ocrmill.pipeline.pdf import pdf_page_count

        try:
            count = pdf_page_count(path)
        except OcrmillError as exc:
            return [_Item(row, name, None, result=_failure(name, exc, None))]
        if count == 0:
            err = EmptyInputError(f"{name}: the PDF has no pages")
            return [_Item(row, name, None, result=_failure(name, err, None))]
        return [_Item(row, name, p, task=self._task(name, path, p, pdf=True)) for p in range(count)]

    def _read(self, items: list[_Item]) -> list[Result]:
        todo = [item for item in items if item.result is None and item.task is not None]
        results: dict[int, Result] = {}
        if any((item.name, item.page) in self._suspects for item in todo):
            for item in todo:  # this batch was in flight when the actor died: one at a time
                results.update(self._read_suspect(item))
        else:
            for start in range(0, len(todo), self.chunk_size):
                results.update(self._read_chunk(todo[start : start + self.chunk_size], False))
        out: list[Result] = []
        for item in items:
            if item.result is not None:
                out.append(item.result)
            elif item.task is not None and item.task.id in results:
                out.append(results[item.task.id])
            else:  # pragma: no cover - every task gets a result above
                err = InternalError(f"{item.name}: no result was produced")
                out.append(_failure(item.name, err, item.page))
        if self._journal is not None and not self._suspects:
            self._journal.clear()
        return out

    def _read_suspect(self, item: _Item) -> dict[int, Result]:
        assert item.task is not None
        key = (item.name, item.page)
        suspect = self._suspects.get(key)
        if suspect is not None and suspect.strikes >= self.retries:
            del self._suspects[key]
            tries = suspect.strikes + 1
            err: OcrmillError
            if suspect.cause == "timeout":
                err = TaskTimeoutError(
                    f"{item.name}: no result within {self.timeout_s or 0:g} s "
                    f"({tries} attempt(s); the Ray actor was restarted each time)"
                )
            else:
                err = WorkerCrashedError(
                    f"{item.name}: the Ray actor died while reading it ({tries} attempt(s))"
                )
            return {item.task.id: _failure(item.name, err, item.page)}
        results = self._read_chunk([item], True)
        self._suspects.pop(key, None)
        return results

    def _read_chunk(self, items: list[_Item], solo: bool) -> dict[int, Result]:
        tasks = [item.task for item in items if item.task is not None]
        keys = [(t.name, t.page) for t in tasks]
        watchdog = _Watchdog(self, keys, solo)
        if self._journal is not None:
            self._journal.write(keys, solo=solo, cause="crash", suspects=self._suspects)
            watchdog.start()
        try:
            by_id = dict(run_tasks(self.engine, tasks, self.config))
        except Exception as exc:  # run_tasks already catches per group; belt and braces
            err = InternalError(f"{type(exc).__name__}: {exc}")
            by_id = {t.id: _failure(t.name, err, t.page) for t in tasks}
        finally:
            watchdog.cancel()
            if self._journal is not None:
                if self._suspects:
                    self._journal.write([], solo=False, cause="crash", suspects=self._suspects)
                else:
                    self._journal.clear()
        return by_id

    def _table(self, batch: pa.Table, items: list[_Item], results: list[Result]) -> pa.Table:
        import pyarrow as pa

        cols: dict[str, list[Any]] = {name: [] for name in RESULT_COLUMNS}
        for result in results:
            cols["input"].append(_utf8(result.input))
            cols["page"].append(result.page)
            cols["ok"].append(result.ok)
            if result.ok:
                cols["text"].append(_utf8(result.text))  # type: ignore[union-attr]
                cols["error_code"].append(None)
                cols["error_message"].append(None)
            else:
                cols["text"].append(None)
                cols["error_code"].append(result.code)  # type: ignore[union-attr]
                cols["error_message"].append(_utf8(result.message))  # type: ignore[union-attr]
            cols["result"].append(_utf8(result_to_json(result)))
        types = {"page": pa.int64(), "ok": pa.bool_()}
        arrays = {
            name: pa.array(values, types.get(name, pa.string())) for name, values in cols.items()
        }
        if self.keep_columns:
            rows = pa.array([item.row for item in items], pa.int64())
            for name in batch.column_names:
                if name not in arrays and name != "bytes":
                    arrays[name] = batch.column(name).take(rows)
        return pa.table(arrays)


class _Watchdog:
    """Ends the actor process when a chunk runs past the stage's timeout, after journaling
    the rows as timed out, so that Ray restarts the actor and they are retried alone."""

    def __init__(self, stage: OcrStage, keys: list[RecordKey], solo: bool) -> None:
        self._stage = stage
        self._keys = keys
        self._solo = solo
        self._lock = threading.Lock()
        self._done = False
        self._timer: threading.Timer | None = None

    def start(self) -> None:
        if self._stage.timeout_s is None:
            return
        self._timer = threading.Timer(self._stage.timeout_s, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def cancel(self) -> None:
        with self._lock:
            self._done = True
        if self._timer is not None:
            self._timer.cancel()

    def _expire(self) -> None:
        with self._lock:
            if self._done:
                return
            journal = self._stage._journal
            if journal is not None:
                journal.write(
                    self._keys, solo=self._solo, cause="timeout", suspects=self._stage._suspects
                )
            log.error(
                "ocrmill: a batch ran past %s s; restarting this actor", self._stage.timeout_s
            )
            os._exit(70)


def _actor_id() -> str | None:
    """The Ray actor this code runs in (kept across restarts), or None outside one."""
    try:
        import ray

        if not ray.is_initialized():
            return None
        return ray.get_runtime_context().get_actor_id() or None
    except Exception:
        return None


def _failure(name: str, error: OcrmillError, page: int | None) -> Result:
    return PageFailure.from_error(name, error, page)


def _rename_temp(result: Result, temp_files: list[str]) -> Result:
    """A failure message names the input, not the temporary file its PDF bytes went to."""
    if not isinstance(result, PageFailure):
        return result
    message = result.message
    for tmp in temp_files:
        message = message.replace(tmp, result.input)
    return replace(result, message=message)


def _with_id(task: Task, task_id: int) -> Task:
    return replace(task, id=task_id)


# -- the pipeline (driver) --------------------------------------------------------------------


@dataclass
class InputListing:
    """What :func:`input_dataset` listed: the dataset (None when nothing is left to read),
    its row count, and how many inputs were skipped as already done."""

    dataset: ray.data.Dataset | None
    rows: int
    skipped: int


def _input_blocks(
    specs: Iterable[str],
    skip: set[RecordKey],
    stdin: TextIO | None,
    batch_size: int,
    counts: Counter[str],
) -> Iterator[pa.Table]:
    import pyarrow as pa

    from ocrmill.batch.sinks import record_key
    from ocrmill.batch.sources import iter_inputs

    def table(rows: list[tuple[bytes, bytes, int | None, str | None, str | None]]) -> pa.Table:
        names, paths, pages, codes, messages = zip(*rows)
        return pa.table(
            {
                # File-system bytes, so names no UTF-8 can hold reach the actors intact.
                "input": pa.array(names, pa.binary()),
                "path": pa.array(paths, pa.binary()),
                "page": pa.array(pages, pa.int64()),
                "error_code": pa.array(codes, pa.string()),
                "error_message": pa.array(messages, pa.string()),
            }
        )

    rows: list[tuple[bytes, bytes, int | None, str | None, str | None]] = []
    blocks = 0
    for item in iter_inputs(specs, stdin=stdin):
        if record_key(item.name, item.page) in skip:
            counts["skipped"] += 1
            continue
        code = message = None
        if item.kind == "error":
            err = item.error or InternalError(f"{item.name}: cannot be read")
            code, message = err.code, _utf8(err.message)
        rows.append((os.fsencode(item.name), os.fsencode(item.path), item.page, code, message))
        counts["rows"] += 1
        if len(rows) >= batch_size * (1 if blocks < SMALL_BLOCKS else BIG_BLOCK_BATCHES):
            yield table(rows)
            rows, blocks = [], blocks + 1
    if rows:
        yield table(rows)


def input_dataset(
    specs: Iterable[str],
    *,
    skip: set[RecordKey] | None = None,
    stdin: TextIO | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> InputListing:
    """List the inputs of ``specs`` (as ``ocrmill run`` does) into a dataset of rows.

    Listing finishes before reading starts; blocks are put into Ray's object store as they
    are made, so the driver holds one block at a time plus a reference per block. Inputs
    whose ``(input, page)`` is in ``skip`` are left out; inputs that cannot be listed
    become rows with ``error_code`` set (the stage turns them into their error records).
    """
    ray = import_ray()
    counts: Counter[str] = Counter()
    refs = [ray.put(t) for t in _input_blocks(specs, skip or set(), stdin, batch_size, counts)]
    dataset = ray.data.from_arrow_refs(refs) if refs else None
    return InputListing(dataset, counts["rows"], counts["skipped"])


def ocr_dataset(
    dataset: ray.data.Dataset,
    actors: ActorPlan,
    *,
    config: Config | None = None,
    engine_factory: str = DEFAULT_ENGINE_FACTORY,
    pdf_dpi: int = 200,
    options: ReadOptions | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    timeout_s: float | None = 600.0,
    retries: int = 1,
    keep_columns: bool = True,
) -> ray.data.Dataset:
    """``dataset`` with :class:`OcrStage` mapped over it by an actor pool sized by ``actors``.

    Lazy, like every Ray Data transform: write it (``write_parquet``, :func:`write_jsonl`)
    or iterate it to run it. ``dataset`` may be :func:`input_dataset`'s, or any dataset with
    ``path`` or ``bytes`` rows, e.g. ``ray.data.read_binary_files(paths, include_paths=True)``.
    """
    ray = import_ray()
    stage_kwargs = {
        "config": config or Config(),
        "engine_factory": engine_factory,
        "device": actors.device,
        "threads": actors.threads,
        "pdf_dpi": pdf_dpi,
        "options": options,
        "timeout_s": timeout_s,
        "retries": retries,
        "chunk_size": batch_size,
        "keep_columns": keep_columns,
    }
    return dataset.map_batches(
        OcrStage,
        fn_constructor_kwargs=stage_kwargs,
        batch_size=batch_size,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(min_size=actors.min_actors, max_size=actors.max_actors),
        num_cpus=actors.num_cpus,
        num_gpus=actors.num_gpus,
    )


def write_jsonl(dataset: ray.data.Dataset, sink: JsonlSink, progress: Progress) -> None:
    """Run ``dataset`` (result rows) and write each ``result`` to ``sink`` as it arrives."""
    block: pa.Table
    for block in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
        for line in block.column("result").to_pylist():
            result = result_from_json(line)
            sink.write(result)
            progress.update(result.ok, None if result.ok else result.code)  # type: ignore[union-attr]


class RaySession:
    """Connects to Ray for a run: ``address`` (``auto``, ``ray://...``, ``HOST:PORT``) or a
    new local instance; one already initialized in this process is used as it is. Only a
    connection this object made is closed on exit."""

    def __init__(self, address: str | None = None, *, quiet: bool = False) -> None:
        self.address = address
        self.quiet = quiet
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


def run_batch_on_ray(
    specs: Iterable[str],
    sink: JsonlSink,
    actors: ActorPlan,
    *,
    config: Config | None = None,
    engine_factory: str = DEFAULT_ENGINE_FACTORY,
    pdf_dpi: int = 200,
    options: ReadOptions | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    timeout_s: float | None = 600.0,
    retries: int = 1,
    done_keys: set[RecordKey] | None = None,
    progress: Progress | None = None,
    stdin: TextIO | None = None,
) -> RunSummary:
    """``ocrmill run --ray``: read every input of ``specs`` on Ray into ``sink``, one record
    per input (per PDF page), in completion order. Needs a connected :class:`RaySession`.
    Ctrl-C stops at once; what was written stays, and ``--resume`` reads the rest."""
    from ocrmill.batch.progress import Progress
    from ocrmill.batch.runner import RunSummary

    progress = progress or Progress(enabled=False)
    interrupted = False
    try:
        listing = input_dataset(specs, skip=done_keys, stdin=stdin, batch_size=batch_size)
        progress.skipped += listing.skipped
        if listing.dataset is not None:
            results = ocr_dataset(
                listing.dataset,
                actors,
                config=config,
                engine_factory=engine_factory,
                pdf_dpi=pdf_dpi,
                options=options,
                batch_size=batch_size,
                timeout_s=timeout_s,
                retries=retries,
                keep_columns=False,
            )
            write_jsonl(results, sink, progress)
    except KeyboardInterrupt:
        interrupted = True
    line = progress.close()
    failed = sum(progress.failed.values())
    return RunSummary(progress.done, failed, progress.skipped, interrupted, line)
