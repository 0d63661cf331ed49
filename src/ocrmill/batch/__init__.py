"""The run layer: the one way to read many inputs (``ocrmill.run``), used by ``ocrmill run``,
the server's jobs, the video filter and Python users.

Sources turn inputs into tasks (:mod:`.sources`), executors read them (:mod:`.executors`:
the worker pool, in-process, or Ray), sinks write the records (:mod:`.sinks`), progress
reporters watch (:mod:`.progress`), and :func:`.api.run` ties them together.
"""

from __future__ import annotations

from ocrmill.batch.api import RunSummary, run

__all__ = ["RunSummary", "run"]
