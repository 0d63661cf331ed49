"""The backend protocol (``run``, ``run_all``, ``run_top1``, ``metadata``) and the factory
that picks one.

A backend wraps one inference session for one model. It belongs to one engine in one
thread: never share it across threads (PP-OCR predictors are not thread-safe: two threads
on one session corrupt each other's tensors).
Backends are imported only when asked for, so importing ocrmill stays cheap.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from ocrmill.config import BackendConfig
from ocrmill.errors import ConfigError


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


BACKENDS = ("onnxruntime", "openvino", "torch")


def cache_root(config: BackendConfig) -> Path:
    """Where backends keep converted and compiled models (one subfolder per backend)."""
    return Path(config.cache_dir or Path.home() / ".cache" / "ocrmill").expanduser()


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _onnxruntime_has_cuda() -> bool:
    if not _installed("onnxruntime"):
        return False
    import onnxruntime as ort

    return "CUDAExecutionProvider" in ort.get_available_providers()


def resolve_backend_name(config: BackendConfig, role: str = "det") -> str:
    """The backend ``config`` asks for, with ``auto`` resolved off the CPU.

    On the CPU, ``auto`` means "the fastest installed backend for this model on this CPU",
    which :mod:`ocrmill.backends.choice` measures: this returns ``"auto"`` then.
    """
    if config.name != "auto" or config.device == "cpu":
        return config.name
    if _onnxruntime_has_cuda():
        return "onnxruntime"
    if _installed("torch") and _installed("onnx2torch"):
        return "torch"
    raise ConfigError(
        f"device {config.device!r} needs onnxruntime-gpu, or torch with CUDA and onnx2torch "
        "(pip install 'ocrmill[torch]'); none is installed"
    )


def cuda_backend_name(config: BackendConfig) -> str | None:
    """The backend that would run ``config`` on a GPU, or None when none is installed.

    Looks at installed packages only: the parent process must never initialize CUDA.
    """
    if config.name == "openvino":
        return None
    try:
        return resolve_backend_name(dataclasses.replace(config, device="cuda"))
    except ConfigError:
        return None


def create_backend(model_path: Path, config: BackendConfig, role: str = "det") -> InferenceBackend:
    """Load ``model_path`` (a ``det``, ``rec`` or ``cls`` model) with the backend ``config``
    names; ``auto`` on the CPU: the installed backend that runs it fastest here (timed at
    the first start, then cached; see :mod:`ocrmill.backends.choice`)."""
    name = resolve_backend_name(config, role)
    if name != "auto":
        return _load(name, model_path, config)
    from ocrmill.backends.choice import CANDIDATES, ChoiceCache, choose_cpu_backend

    installed = tuple(n for n in CANDIDATES if _installed(n))
    _, backend = choose_cpu_backend(
        role,
        model_path,
        config,
        installed,
        lambda candidate: _load(candidate, model_path, config),
        ChoiceCache(cache_root(config)),
    )
    return backend


def _load(name: str, model_path: Path, config: BackendConfig) -> InferenceBackend:
    if name == "onnxruntime":
        from ocrmill.backends.onnx import OnnxBackend

        return OnnxBackend(model_path, config)
    if name == "openvino":
        from ocrmill.backends.openvino import OpenVinoBackend

        return OpenVinoBackend(model_path, config)
    if name == "torch":
        from ocrmill.backends.torch import TorchBackend

        return TorchBackend(model_path, config)
    raise ConfigError(f"unknown backend {name!r}; available: auto, {', '.join(BACKENDS)}")
