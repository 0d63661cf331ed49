"""ocrmill: OCR engine and runtime on the PP-OCR models.

The public API is imported lazily so ``import ocrmill`` (and ``ocrmill --help``) stays
fast: ``from ocrmill import Engine`` loads numpy and ONNX Runtime only when asked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "run": "ocrmill.batch.api",
    "RunSummary": "ocrmill.batch.api",
    "Engine": "ocrmill.engine",
    "Config": "ocrmill.config",
    "ReadOptions": "ocrmill.config",
    "LayoutOptions": "ocrmill.config",
    "load_config": "ocrmill.config",
    "preset": "ocrmill.config",
    "PageResult": "ocrmill.results",
    "PageFailure": "ocrmill.results",
    "TextLine": "ocrmill.results",
    "TextBlock": "ocrmill.results",
    "Word": "ocrmill.results",
    "OcrmillError": "ocrmill.errors",
    "InputError": "ocrmill.errors",
    "ExitCode": "ocrmill.errors",
}

__all__ = [
    "Config",
    "Engine",
    "ExitCode",
    "InputError",
    "LayoutOptions",
    "OcrmillError",
    "PageFailure",
    "PageResult",
    "ReadOptions",
    "RunSummary",
    "TextBlock",
    "TextLine",
    "Word",
    "load_config",
    "preset",
    "run",
]

if TYPE_CHECKING:
    from ocrmill.batch.api import RunSummary, run
    from ocrmill.config import Config, LayoutOptions, ReadOptions, load_config, preset
    from ocrmill.engine import Engine
    from ocrmill.errors import ExitCode, InputError, OcrmillError
    from ocrmill.results import PageFailure, PageResult, TextBlock, TextLine, Word


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ocrmill' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
