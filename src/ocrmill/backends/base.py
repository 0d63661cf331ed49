"""The backend protocol (``run(batch) -> array``) and the factory that picks one.

A backend wraps one inference session for one model. It belongs to one engine in one
thread: never share it across threads (PP-OCR predictors are not thread-safe, see seed 001).
Backends are imported only when asked for, so importing ocrmill stays cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from ocrmill.config import BackendConfig
from ocrmill.errors import ConfigError


@runtime_checkable
class InferenceBackend(Protocol):
    """One loaded model. ``run`` takes an NCHW float32 batch and returns the first output."""

    model_path: Path
    providers: tuple[str, ...]

    def run(self, batch: np.ndarray) -> np.ndarray: ...

    def metadata(self) -> dict[str, str]:
        """Custom metadata stored in the model file (e.g. PP-OCR's ``character`` list)."""
        ...


def create_backend(model_path: Path, config: BackendConfig) -> InferenceBackend:
    """Load ``model_path`` with the backend ``config.name`` names."""
    if config.name == "onnxruntime":
        from ocrmill.backends.onnx import OnnxBackend

        return OnnxBackend(model_path, config)
    raise ConfigError(f"unknown backend {config.name!r}; available: onnxruntime")
