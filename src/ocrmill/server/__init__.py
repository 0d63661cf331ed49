"""HTTP service: FastAPI app factory, routes, SQLite job store, feeder and the web page.

Only :mod:`ocrmill.server.app` needs FastAPI; ``ocrmill serve`` imports it on demand.
"""

from __future__ import annotations
