"""The backend protocol (``run``, ``run_all``, ``run_top1``, ``metadata``) every backend
subclasses; :mod:`ocrmill.backends.factory` picks and loads one.

A backend wraps one inference session for one model. It belongs to one engine in one
thread: never share it across threads (PP-OCR predictors are not thread-safe: two threads
on one session corrupt each other's tensors).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from ocrmill.config import BackendConfig


def top1(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per time step of a BxTxC batch: the best class (BxT) and its probability (BxT)."""
    idx = probs.argmax(axis=2)
    best = np.take_along_axis(probs, idx[..., None], axis=2)[..., 0]
    return idx, best


@runtime_checkable
class InferenceBackend(Protocol):
    """One loaded model, called with an NCHW float32 batch.

    Backends subclass it: ``run``, ``run_all`` and ``metadata`` are theirs to define, and
    ``run_top1`` has a default (the reduction on the host) that a backend overrides when it
    can reduce on its device.
    """

    model_path: Path
    providers: tuple[str, ...]
    # True where the backend keeps compiled kernels and buffers for every input shape it
    # has seen (OpenVINO's CPU plugin): each batch size multiplies a recognizer's shapes,
    # so the engine gives such a backend one line per call.
    memory_per_shape: bool = False

    def run(self, batch: np.ndarray) -> np.ndarray:
        """The model's first output."""
        ...

    def run_all(self, batch: np.ndarray) -> list[np.ndarray]:
        """Every output of the model, in its order."""
        ...

    def run_top1(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For a recognizer's BxTxC output: the best class per time step (BxT) and its
        probability (BxT), as :func:`top1` gives them for ``run(batch)``."""
        return top1(self.run(batch))

    def metadata(self) -> dict[str, str]:
        """Custom metadata stored in the model file (e.g. PP-OCR's ``character`` list)."""
        ...

    def release_memory(self) -> None:
        """Hand back the buffers the backend keeps between calls; the next call allocates
        them again. Nothing to hand back by default."""
        return None


def cache_root(config: BackendConfig) -> Path:
    """Where backends keep converted and compiled models (one subfolder per backend)."""
    return Path(config.cache_dir or Path.home() / ".cache" / "ocrmill").expanduser()
