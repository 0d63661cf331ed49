"""Where results go: the :class:`Sink` protocol every output implements, the JSONL sink and
its resume support, and a callback sink (runs in the parent process).

A sink gets every record of a run once, with the task it came from (``None`` for an input
that failed before it became a task), in completion order. JSONL: one record per line,
written with :func:`~ocrmill.results.result_to_json` and flushed at once, so a killed run
loses at most the record being written. A rerun in append mode first cuts off a torn last
line, then appends; :func:`read_done_keys` tells it what to skip.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, NamedTuple, Protocol, runtime_checkable

from ocrmill.atomic import write_atomically
from ocrmill.errors import is_transient
from ocrmill.results import PageFailure, RecordKey, Result, result_from_json, result_to_json
from ocrmill.tasks import Task

_CHUNK = 64 * 1024

log = logging.getLogger(__name__)


@runtime_checkable
class Sink(Protocol):
    """An output of a run: gets each record once, as it completes."""

    def write(self, result: Result, task: Task | None = None) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class ResumableSink(Sink, Protocol):
    """A sink that can say whether it already holds a task's record (for ``resume``), and
    whether what it holds is a failure that stays (counted in the run's summary)."""

    def holds(self, task: Task) -> bool: ...

    def held_failure(self, task: Task) -> str | None: ...


@runtime_checkable
class DocumentSink(Sink, Protocol):
    """A sink that writes whole documents, one per input (``--pdf-dir`` and the like). It
    may fail on one document, which then becomes that input's failure record: the run
    writes document sinks before the record sinks, so those get the failure instead."""

    per_document: bool


class DoneKeys(NamedTuple):
    """What :func:`read_done_keys` found: the keys of complete records and a count of the
    lines it could not use (invalid JSON or records, undecodable bytes, a torn last line)."""

    keys: set[RecordKey]
    unreadable: int


@dataclass
class HeldRecords:
    """What a JSONL output holds, by record key: the keys whose last record was read, the
    error code of those whose last record is a failure, and the lines that were no use."""

    ok: set[RecordKey] = field(default_factory=set)
    failed: dict[RecordKey, str] = field(default_factory=dict)
    unreadable: int = 0


def _records(fh: IO[bytes], held: HeldRecords) -> Iterator[tuple[bytes, Result | None]]:
    """Each line of a JSONL output with its record (None for a blank or unusable line,
    counted in ``held.unreadable`` unless blank); stops before a torn last line."""
    for raw in fh:
        if not raw.endswith(b"\n"):
            held.unreadable += 1  # torn last line
            return
        if not raw.strip():
            yield raw, None
            continue
        try:
            result = result_from_json(raw.decode("utf-8"))
        except (ValueError, KeyError, TypeError, AttributeError):
            held.unreadable += 1
            yield raw, None
            continue
        yield raw, result


def read_held(path: Path | str) -> HeldRecords:
    """The records already in the JSONL output at ``path``, by key: the last record of a
    key wins (a resumed run appends a retried input's new record after its failure). A
    missing file holds nothing. Lines that are no use are counted as in
    :func:`read_done_keys`."""
    held = HeldRecords()
    try:
        with open(path, "rb") as fh:
            for _, result in _records(fh, held):
                if result is None:
                    continue
                if isinstance(result, PageFailure):
                    held.ok.discard(result.key)
                    held.failed[result.key] = result.code
                else:
                    held.failed.pop(result.key, None)
                    held.ok.add(result.key)
    except FileNotFoundError:
        pass
    return held


def read_done_keys(path: Path | str) -> DoneKeys:
    """Keys of the records already in the JSONL output at ``path`` (ok or not).

    Reads line by line. Blank lines are skipped silently; lines that are not a valid record
    are skipped and counted in ``unreadable``, as is a last line with no newline (a torn
    write of a killed run, which :class:`JsonlSink` cuts off when appending). A missing file
    gives ``DoneKeys(set(), 0)``. Unpacks as ``keys, unreadable = read_done_keys(path)``.
    """
    held = read_held(path)
    return DoneKeys(held.ok | set(held.failed), held.unreadable)


def _cut_torn_line(path: Path) -> int:
    """Truncate ``path`` after its last newline; returns how many bytes were cut off."""
    if not path.exists():
        return 0
    with open(path, "r+b") as fh:
        size = fh.seek(0, os.SEEK_END)
        end = size
        while end > 0:
            start = max(0, end - _CHUNK)
            fh.seek(start)
            chunk = fh.read(end - start)
            if end == size and chunk.endswith(b"\n"):
                return 0  # ends cleanly
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                keep = start + newline + 1
                break
            end = start
        else:
            keep = 0
        fh.truncate(keep)
        return size - keep


def _line(result: Result) -> str:
    # A name with undecodable file-system bytes holds lone surrogates, which UTF-8 cannot
    # encode; backslashreplace turns each into the JSON escape "\udcXX", which json.loads
    # reads back as the same character, so the line stays valid UTF-8 and resume still
    # matches the name.
    text = result_to_json(result) + "\n"
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


class JsonlSink:
    """Writes results as JSON lines to a file (or stdout for ``"-"``), one flushed line each.

    ``append=True`` keeps the existing records (cutting off a torn last line first, see
    ``torn_bytes``) for a resumed run: an input whose record was read is held (skipped); one
    whose record is a transient failure (``timeout``, ``worker_crashed``, ``input_not_found``,
    ``resource_limit``; every failure with ``retry_failed``) is read again, and its new
    record replaces the old one when the sink is closed (the file is rewritten atomically,
    so it holds one record per input); other failures are held as they are and counted.
    ``append=False`` starts the file afresh. ``flush_each=False`` leaves flushing to the
    file's buffer (a file that is renamed into place once complete, such as a Ray shard,
    gains nothing from each line reaching the OS at once). Parent directories are created. ``written``
    counts the records written by this sink. A context manager; ``close()`` fsyncs a file
    (stdout is only flushed, never closed).
    """

    def __init__(
        self,
        path: Path | str,
        *,
        append: bool,
        retry_failed: bool = False,
        flush_each: bool = True,
    ) -> None:
        self.written = 0
        self.flush_each = flush_each
        self.torn_bytes = 0
        self.retry_failed = retry_failed
        self._closed = False
        self._held = HeldRecords()
        self._replaced: set[RecordKey] = set()
        self._kept_bytes = 0  # the file's size before this run's records
        self._fh: IO[str]
        if str(path) == "-":
            self.path: Path | None = None
            self._fh = sys.stdout
            return
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if append:
            self.torn_bytes = _cut_torn_line(self.path)
            self._held = read_held(self.path)
            if self._held.unreadable:
                log.warning("%d unreadable line(s) in %s ignored", self._held.unreadable, self.path)
            retried = sum(self._retries(code) for code in self._held.failed.values())
            log.debug(
                "resuming: %d records already in %s (%d failures to read again)",
                len(self._held.ok) + len(self._held.failed),
                self.path,
                retried,
            )
            self._kept_bytes = self.path.stat().st_size if self.path.exists() else 0
        mode = "a" if append else "w"
        # Held open for the sink's lifetime; close() closes it.
        self._fh = open(self.path, mode, encoding="utf-8", newline="\n")  # noqa: SIM115

    def _retries(self, code: str) -> bool:
        return self.retry_failed or is_transient(code)

    def holds(self, task: Task) -> bool:
        """Does the file hold ``task``'s record for good: read, or a failure that is not
        read again (see the class docstring)?"""
        code = self._held.failed.get(task.key)
        return task.key in self._held.ok or (code is not None and not self._retries(code))

    def held_failure(self, task: Task) -> str | None:
        """The error code of ``task``'s failure record that the file keeps (not read
        again), else None."""
        code = self._held.failed.get(task.key)
        return code if code is not None and not self._retries(code) else None

    def write(self, result: Result, task: Task | None = None) -> None:
        """Write one record as one line (flushed at once unless ``flush_each`` is false)."""
        if self._closed:
            raise ValueError("write to a closed JsonlSink")
        self._fh.write(_line(result))
        if self.flush_each:
            self._fh.flush()
        self.written += 1
        if result.key in self._held.failed:
            self._replaced.add(result.key)

    def close(self) -> None:
        """Flush and (for a file) fsync and close; drop the old records of inputs read
        again; calling it again does nothing."""
        if self._closed:
            return
        self._closed = True
        self._fh.flush()
        if self.path is None:
            return
        try:
            os.fsync(self._fh.fileno())
        finally:
            self._fh.close()
        if self._replaced:
            self._drop_replaced(self.path)

    def _drop_replaced(self, path: Path) -> None:
        """Rewrite the file without the earlier records of the inputs this run read again
        (atomically: a run killed meanwhile leaves both records, and the last one wins)."""

        def copy(tmp: Path) -> None:
            held = HeldRecords()
            with open(path, "rb") as src, open(tmp, "wb") as dst:
                offset = 0
                for raw, result in _records(src, held):
                    old = offset < self._kept_bytes
                    offset += len(raw)
                    if old and result is not None and result.key in self._replaced:
                        continue
                    dst.write(raw)
                dst.flush()
                os.fsync(dst.fileno())

        write_atomically(path, copy)

    def __enter__(self) -> JsonlSink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class CallbackSink:
    """Calls ``function(result)`` for each record (e.g. ``results.append``)."""

    def __init__(self, function: Callable[[Result], Any]) -> None:
        self.function = function

    def write(self, result: Result, task: Task | None = None) -> None:
        self.function(result)

    def close(self) -> None:
        pass


def as_sink(
    output: Sink | str | os.PathLike[str] | Callable[[Result], Any],
    *,
    append: bool,
    retry_failed: bool = False,
) -> Sink:
    """A sink for ``output``: a :class:`Sink` as it is, a path (``"-"``: stdout) as a
    :class:`JsonlSink` (appending when ``append``, reading every failure again with
    ``retry_failed``), a callable as a :class:`CallbackSink`."""
    if isinstance(output, Sink):
        return output
    if isinstance(output, (str, os.PathLike)):
        return JsonlSink(os.fspath(output), append=append, retry_failed=retry_failed)
    if callable(output):
        return CallbackSink(output)
    raise TypeError(f"not an output: {output!r} (give a path, a Sink or a callable)")
