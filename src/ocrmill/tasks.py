"""The unit of work of every run: a :class:`Task` (one image, one page of a PDF or of a
multi-page image, or one video frame), and the run defaults every front end shares.

A base-layer module: plain data, imported by the run layer, the runtime, the outputs and
every front end alike (how a task is *read* lives in :mod:`ocrmill.runtime.tasks`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import numpy as np

    from ocrmill.config import ReadOptions
    from ocrmill.results import PageFailure, RecordKey

TaskKind = Literal["image", "pdf"]

DEFAULT_PDF_DPI = 200
"""PDF pages are rendered at this resolution unless told otherwise (``--pdf-dpi``)."""
DEFAULT_TASK_TIMEOUT_S = 600.0
"""A worker's batch must finish within this many seconds (scaled up for huge pages)."""
DEFAULT_RETRIES = 1
"""A task lost with a crashed or timed-out worker is retried alone this many times."""


@dataclass(frozen=True)
class Task:
    """One unit of work: an image (a path, encoded bytes, or an RGB uint8 array such as a
    video frame), one frame of a multi-page image, or one page of a PDF file.

    ``name`` becomes the record's ``input``; ``page`` its 0-based page: of a PDF, or of a
    multi-page image such as a TIFF (``None`` for an image read as a whole); ``pages`` how
    many pages its document has (when known: outputs written per document wait for all).
    ``options`` are per-task read options (``None``: the engine's defaults). ``id`` is
    unique within one executor's run. A task whose input failed before it could be read (a
    missing file, a PDF whose pages cannot be counted) carries that ``failure``: executors
    return it as the task's record without reading anything, in its place in the order.
    """

    id: int
    source: str | bytes | np.ndarray
    name: str
    kind: TaskKind = "image"
    page: int | None = None
    pdf_dpi: int = DEFAULT_PDF_DPI
    options: ReadOptions | None = None
    failure: PageFailure | None = None
    pages: int | None = None

    @classmethod
    def failed(cls, failure: PageFailure) -> Task:
        """A task that only carries the record of an input that could not be read."""
        return cls(id=0, source="", name=failure.input, page=failure.page, failure=failure)

    @property
    def key(self) -> RecordKey:
        """The identity of this task's record in an output: ``(input, page)``."""
        return (self.name, self.page)
