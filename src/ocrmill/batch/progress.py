"""Progress reporting for batch runs (parent process; stderr only, never stdout)."""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import TextIO


class Progress:
    """A tqdm bar on a terminal; otherwise a one-line summary every ``interval`` seconds."""

    def __init__(
        self, stream: TextIO | None = None, interval: float = 10.0, enabled: bool = True
    ) -> None:
        self.stream = stream or sys.stderr
        self.interval = interval
        self.enabled = enabled
        self.started = time.monotonic()
        self.done = 0
        self.failed: Counter[str] = Counter()
        self.skipped = 0
        self._last = self.started
        self._bar = None
        if enabled and self.stream.isatty():
            from tqdm import tqdm

            self._bar = tqdm(file=self.stream, unit="img", dynamic_ncols=True, smoothing=0.1)

    def update(self, ok: bool, code: str | None = None) -> None:
        self.done += 1
        if not ok:
            self.failed[code or "error"] += 1
        if self._bar is not None:
            self._bar.update(1)
            if self.failed:
                self._bar.set_postfix(failed=sum(self.failed.values()), refresh=False)
        elif self.enabled and time.monotonic() - self._last >= self.interval:
            self._last = time.monotonic()
            print(f"ocrmill: {self.line()}", file=self.stream, flush=True)

    def skip(self) -> None:
        self.skipped += 1

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def line(self) -> str:
        failed = sum(self.failed.values())
        text = (
            f"{self.done} read ({self.done - failed} ok, {failed} failed), {self.rate:.2f} images/s"
        )
        if self.skipped:
            text += f", {self.skipped} skipped (already in output)"
        return text

    def close(self) -> str:
        if self._bar is not None:
            self._bar.close()
        elapsed = time.monotonic() - self.started
        summary = f"{self.line()}, {elapsed:.1f} s"
        if self.failed:
            summary += "; failures: " + ", ".join(f"{c}={n}" for c, n in self.failed.most_common())
        return summary
