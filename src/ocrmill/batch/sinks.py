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
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Any, NamedTuple, Protocol, runtime_checkable

from ocrmill.results import RecordKey, Result, result_from_json, result_to_json
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
    """A sink that can say whether it already holds a task's record (for ``resume``)."""

    def holds(self, task: Task) -> bool: ...


class DoneKeys(NamedTuple):
    """What :func:`read_done_keys` found: the keys of complete records and a count of the
    lines it could not use (invalid JSON or records, undecodable bytes, a torn last line)."""

    keys: set[RecordKey]
    unreadable: int


def read_done_keys(path: Path | str) -> DoneKeys:
    """Keys of the records already in the JSONL output at ``path`` (ok or not).

    Reads line by line. Blank lines are skipped silently; lines that are not a valid record
    are skipped and counted in ``unreadable``, as is a last line with no newline (a torn
    write of a killed run, which :class:`JsonlSink` cuts off when appending). A missing file
    gives ``DoneKeys(set(), 0)``. Unpacks as ``keys, unreadable = read_done_keys(path)``.
    """
    keys: set[RecordKey] = set()
    unreadable = 0
    try:
        with open(path, "rb") as fh:
            for raw in fh:
                if not raw.endswith(b"\n"):
                    unreadable += 1  # torn last line
                    break
                if not raw.strip():
                    continue
                try:
                    result = result_from_json(raw.decode("utf-8"))
                except (ValueError, KeyError, TypeError, AttributeError):
                    unreadable += 1
                    continue
                keys.add(result.key)
    except FileNotFoundError:
        return DoneKeys(set(), 0)
    return DoneKeys(keys, unreadable)


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
    ``torn_bytes``); ``append=False`` starts the file afresh. Parent directories are created.
    ``written`` counts the records written by this sink. A context manager; ``close()``
    fsyncs a file (stdout is only flushed, never closed).
    """

    def __init__(self, path: Path | str, *, append: bool) -> None:
        self.written = 0
        self.torn_bytes = 0
        self._closed = False
        self._done: set[RecordKey] = set()
        self._fh: IO[str]
        if str(path) == "-":
            self.path: Path | None = None
            self._fh = sys.stdout
            return
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if append:
            self.torn_bytes = _cut_torn_line(self.path)
            done = read_done_keys(self.path)
            if done.unreadable:
                log.warning("%d unreadable line(s) in %s ignored", done.unreadable, self.path)
            log.info("resuming: %d records already in %s", len(done.keys), self.path)
            self._done = done.keys
        mode = "a" if append else "w"
        # Held open for the sink's lifetime; close() closes it.
        self._fh = open(self.path, mode, encoding="utf-8", newline="\n")  # noqa: SIM115

    def holds(self, task: Task) -> bool:
        """Is ``task``'s record among the complete records the file had when it was opened
        in append mode (see :func:`read_done_keys`)?"""
        return task.key in self._done

    def write(self, result: Result, task: Task | None = None) -> None:
        """Write one record as one line and flush it."""
        if self._closed:
            raise ValueError("write to a closed JsonlSink")
        self._fh.write(_line(result))
        self._fh.flush()
        self.written += 1

    def close(self) -> None:
        """Flush and (for a file) fsync and close; calling it again does nothing."""
        if self._closed:
            return
        self._closed = True
        self._fh.flush()
        if self.path is not None:
            try:
                os.fsync(self._fh.fileno())
            finally:
                self._fh.close()

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
    output: Sink | str | os.PathLike[str] | Callable[[Result], Any], *, append: bool
) -> Sink:
    """A sink for ``output``: a :class:`Sink` as it is, a path (``"-"``: stdout) as a
    :class:`JsonlSink` (appending when ``append``), a callable as a :class:`CallbackSink`."""
    if isinstance(output, Sink):
        return output
    if isinstance(output, (str, os.PathLike)):
        return JsonlSink(os.fspath(output), append=append)
    if callable(output):
        return CallbackSink(output)
    raise TypeError(f"not an output: {output!r} (give a path, a Sink or a callable)")
