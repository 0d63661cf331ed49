"""Admission control for single-image requests: a slot count and a Retry-After estimate.

Runs on the event loop only (no locks needed): a request takes a slot before its upload
is read and gives it back when it is answered; without a free slot it is refused with
``503`` at once, so queued work (and the memory and disk it holds) stays bounded.
"""

from __future__ import annotations

import math


class Admission:
    """``capacity`` concurrent single-image requests and an EWMA of their latency."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self.in_use = 0
        self.rejected = 0
        self._latency_s = 1.0

    def try_acquire(self) -> bool:
        if self.in_use >= self.capacity:
            self.rejected += 1
            return False
        self.in_use += 1
        return True

    def release(self, latency_s: float | None = None) -> None:
        self.in_use = max(0, self.in_use - 1)
        if latency_s is not None and latency_s > 0:
            self._latency_s = 0.8 * self._latency_s + 0.2 * min(latency_s, 300.0)

    def retry_after(self) -> int:
        """Seconds to wait before retrying (1..60).

        Every slot is held by a request answered in about one recent latency, the
        oldest of them sooner: a slot is free again within that time.
        """
        return int(min(60, max(1, math.ceil(self._latency_s))))
