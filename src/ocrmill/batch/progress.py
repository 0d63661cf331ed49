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

from ocrmill.results import Result


@dataclass
class Tally:
    """What a run has done so far."""

    done: int = 0
    failed: Counter[str] = field(default_factory=Counter)  # failures by error code
    skipped: int = 0  # already in the output (resume)
    started: float = field(default_factory=time.monotonic)

    def count(self, result: Result) -> None:
        self.done += 1
        if not result.ok:
            self.failed[getattr(result, "code", "internal")] += 1

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

    def line(self) -> str:
        text = (
            f"{self.done} read ({self.done - self.failures} ok, {self.failures} failed), "
            f"{self.rate:.2f} images/s"
        )
        if self.skipped:
            text += f", {self.skipped} skipped (already in output)"
        return text


@runtime_checkable
class ProgressReporter(Protocol):
    """Told about every record of a run as it is written, and once at the end."""

    def skipped(self, count: int) -> None:
        """``count`` inputs were skipped (already in the output)."""
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

        self._bar = tqdm(file=stream or sys.stderr, unit="img", dynamic_ncols=True, smoothing=0.1)
        self._failed = 0

    def skipped(self, count: int) -> None:
        pass

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
