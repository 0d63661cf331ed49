"""The run layer: the one way to read many inputs (``ocrmill.run``), used by ``ocrmill run``,
the server's jobs, the video filter and Python users.

Sources turn inputs into tasks (:mod:`.sources`), executors read them (:mod:`.executors`:
the worker pool, in-process, or Ray), sinks write the records (:mod:`.sinks`), progress
reporters watch (:mod:`.progress`), and :func:`.api.run` ties them together.

``run`` and ``RunSummary`` are imported lazily: starting a worker pool
(:mod:`.executors`) does not wait for the sources' numpy and pdfium imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["RunSummary", "run"]

if TYPE_CHECKING:
    from ocrmill.batch.api import RunSummary, run


def __getattr__(name: str) -> Any:
    if name in __all__:
        from ocrmill.batch import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
