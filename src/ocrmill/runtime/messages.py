"""What the pool (parent) and its workers say to each other over their pipe: typed messages
and the worker states the parent tracks. Pickled across the process boundary; keep them
small and import-light (the parent imports this module)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    from ocrmill.results import Result
    from ocrmill.tasks import Task


class WorkerState(enum.Enum):
    """A worker's life as the parent sees it."""

    STARTING = "starting"  # building and warming up its engine
    IDLE = "idle"  # ready, holding no tasks
    BUSY = "busy"  # reading a batch
    RETIRING = "retiring"  # told to stop (recycled); a replacement is starting


# -- parent -> worker ------------------------------------------------------------------


@dataclass(frozen=True)
class RunTasks:
    """Read these tasks and answer with :class:`Results`."""

    tasks: list[Task]


@dataclass(frozen=True)
class Stop:
    """Finish and exit."""


# -- worker -> parent ------------------------------------------------------------------


@dataclass(frozen=True)
class Ready:
    """The engine is built and warmed up."""

    worker_id: int
    pid: int
    rss: int
    gpu_bytes: int | None  # GPU memory after warm-up (NVML); None on the CPU


@dataclass(frozen=True)
class Fatal:
    """The engine could not be built; the worker exits after sending this."""

    worker_id: int
    code: str
    detail: str


@dataclass(frozen=True)
class Sized:
    """The batch just taken holds this many pixels (the parent scales its deadline)."""

    worker_id: int
    pixels: int


@dataclass(frozen=True)
class Results:
    """One result per task of the batch, by task id."""

    worker_id: int
    results: list[tuple[int, Result]]
    busy_s: float
    rss: int


@dataclass(frozen=True)
class Rested:
    """Left without work for a while, the worker handed back its engine's buffers; its RSS
    now."""

    worker_id: int
    rss: int


WorkerMessage = Union[Ready, Fatal, Sized, Results, Rested]  # noqa: UP007 - runtime alias on 3.10
