"""Progress of a run: the reporter protocol every front end plugs into, the tally a run
keeps, and the reporters for people (a terminal bar, log lines) and for no one.

Reporters run in the parent and write to stderr (or a given stream), never to stdout,
which carries results. The server reports a job's progress through the same protocol.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol, TextIO, runtime_checkable

from ocrmill.results import PageFailure, Result


@dataclass
class Tally:
    """What a run has done so far."""

    done: int = 0
    failed: Counter[str] = field(default_factory=Counter)  # failures by error code
    expected: int | None = None  # records the inputs make in all, once they are counted
    skipped: int = 0  # already in the output (resume)
    kept_failed: Counter[str] = field(default_factory=Counter)  # skipped, held as failures
    started: float = field(default_factory=time.monotonic)

    def count(self, result: Result) -> None:
        self.done += 1
        if isinstance(result, PageFailure):
            self.failed[result.code] += 1

    def skip(self, held_failure: str | None) -> None:
        """An input already in the output was skipped (its failure's code, when what the
        output holds for it is a failure that stays)."""
        self.skipped += 1
        if held_failure is not None:
            self.kept_failed[held_failure] += 1

    @property
    def failures(self) -> int:
        return sum(self.failed.values())

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started

    @property
    def rate(self) -> float:
        elapsed = self.elapsed_s
        return self.done / elapsed if elapsed > 0 else 0.0

    def eta_s(self) -> float | None:
        """Seconds left at the rate so far, once the total is known and something is read."""
        if self.expected is None or not self.done:
            return None
        left = max(0, self.expected - self.skipped - self.done)
        return left / self.rate if self.rate > 0 else None

    def line(self) -> str:
        """``12 of 40 read (30 %, ETA 1 min), 11 ok, 1 failed, 2.10 pages/s``; without a
        total yet, ``12 read``."""
        if self.expected is None:
            head = f"{self.done} read"
        else:
            todo = max(1, self.expected - self.skipped)
            head = f"{self.done} of {todo} read ({100 * self.done / todo:.0f} %"
            eta = self.eta_s()
            head += f", ETA {_duration(eta)})" if eta is not None else ")"
        text = (
            f"{head}, {self.done - self.failures} ok, {self.failures} failed, "
            f"{self.rate:.2f} pages/s"
        )
        if self.skipped:
            text += f", {self.skipped} skipped (already in output"
            kept = sum(self.kept_failed.values())
            text += f"; {kept} of them failed before)" if kept else ")"
        return text


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@runtime_checkable
class ProgressReporter(Protocol):
    """Told about every record of a run as it is written, the total once the inputs are
    counted, and once at the end."""

    def skipped(self, count: int) -> None:
        """``count`` inputs were skipped (already in the output)."""
        ...

    def total(self, count: int) -> None:
        """The run's inputs make ``count`` records in all (skipped ones included); told
        once, when they are counted (a folder soon; never for a stream such as stdin)."""
        ...

    def update(self, result: Result) -> None:
        """One record was written."""
        ...

    def close(self, tally: Tally) -> None:
        """The run ended (finished, interrupted or failed)."""
        ...


class NullProgress:
    """Reports nothing."""

    def skipped(self, count: int) -> None:
        pass

    def total(self, count: int) -> None:
        pass

    def update(self, result: Result) -> None:
        pass

    def close(self, tally: Tally) -> None:
        pass


class LogLines:
    """A one-line summary every ``interval`` seconds (for logs: no terminal control codes)."""

    def __init__(self, stream: TextIO | None = None, interval: float = 10.0) -> None:
        self.stream = stream or sys.stderr
        self.interval = interval
        self.tally = Tally()
        self._last = self.tally.started

    def skipped(self, count: int) -> None:
        self.tally.skipped += count

    def total(self, count: int) -> None:
        self.tally.expected = count

    def update(self, result: Result) -> None:
        self.tally.count(result)
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            print(f"ocrmill: {self.tally.line()}", file=self.stream, flush=True)

    def close(self, tally: Tally) -> None:
        pass


class TerminalBar:
    """A tqdm progress bar with the failure count beside it."""

    def __init__(self, stream: TextIO | None = None) -> None:
        from tqdm import tqdm

        self._bar = tqdm(file=stream or sys.stderr, unit="page", dynamic_ncols=True, smoothing=0.1)
        self._failed = 0
        self._skipped = 0
        self._total: int | None = None

    def skipped(self, count: int) -> None:
        self._skipped += count  # not on the bar: its total counts what is read
        if self._total is not None:
            self.total(self._total)

    def total(self, count: int) -> None:
        self._total = count
        self._bar.total = max(0, count - self._skipped)
        self._bar.refresh()

    def update(self, result: Result) -> None:
        self._bar.update(1)
        if not result.ok:
            self._failed += 1
            self._bar.set_postfix(failed=self._failed, refresh=False)

    def close(self, tally: Tally) -> None:
        self._bar.close()


def default_progress(quiet: bool = False, stream: TextIO | None = None) -> ProgressReporter:
    """Nothing when ``quiet``; a bar on a terminal; log lines every 10 s otherwise."""
    stream = stream or sys.stderr
    if quiet:
        return NullProgress()
    if stream.isatty():
        return TerminalBar(stream)
    return LogLines(stream)
