"""Engine factories for server tests (imported by workers as ``tests.server.engines``)."""

from __future__ import annotations

import time
from typing import Any

from tests.fault.engines import FakeEngine


def slow_start(config: Any, device: str, threads: int) -> FakeEngine:
    """The fake engine after a 4 s "model load", to watch /readyz say 503 first."""
    time.sleep(4)
    return FakeEngine()
