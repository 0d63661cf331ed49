"""Which backend runs a model, and loading it: the one the configuration names, on a GPU
the installed one that can, on the CPU the fastest installed one (measured once, see
:mod:`ocrmill.backends.choice`). Backends are imported only when asked for, so importing
ocrmill stays cheap.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from pathlib import Path
from typing import Literal

from ocrmill.backends.base import InferenceBackend, cache_root
from ocrmill.config import BackendConfig
from ocrmill.errors import ConfigError

log = logging.getLogger(__name__)

BACKENDS = ("onnxruntime", "openvino", "torch")


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
        return _load(name, model_path, config, role)
    from ocrmill.backends.choice import ChoiceCache, choose_cpu_backend

    _, backend = choose_cpu_backend(
        role,
        model_path,
        config,
        cpu_candidates(config, role, model_path),
        lambda candidate: _load(candidate, model_path, config, role),
        ChoiceCache(cache_root(config)),
    )
    return backend


# The models whose page text was measured to stay within 0.2 CER points at bf16 (an Intel
# Xeon with AMX; benchmarks/results/docs_ocrmill_rec-bf16_20261206.md and
# real_pages_rec-bf16_20261206.md). The layout model at bf16 found a table on a rendered
# three-column page where at f32 it finds none; the classifier is no faster at bf16.
BF16_ROLES = ("det", "rec")


def cpu_candidates(
    config: BackendConfig, role: str, model_path: Path | None = None
) -> tuple[str, ...]:
    """The CPU candidates ``backend="auto"`` times for ``role`` here: the installed
    backends; OpenVINO at bf16 too for a model in ``BF16_ROLES`` where its CPU plugin
    computes in bf16 natively; and ``model_path``'s int8 copy where the CPU multiplies int8
    natively and int8 ranges ship for the model (:mod:`ocrmill.backends.int8`). Both only
    while the configuration leaves the precision open (``openvino_precision="auto"``)."""
    from ocrmill.backends.choice import CANDIDATES, candidate_module

    out = []
    for candidate in CANDIDATES:
        if not _installed(candidate_module(candidate)):
            continue
        if candidate == "openvino-bf16" and not (
            role in BF16_ROLES and config.openvino_precision == "auto" and openvino_has_bf16()
        ):
            continue
        if candidate == "openvino-int8" and not (
            config.openvino_precision == "auto"
            and model_path is not None
            and _has_int8_copy(model_path, config)
        ):
            continue
        out.append(candidate)
    return tuple(out)


def cpu_multiplies_int8() -> bool:
    """Whether the CPU has int8 dot-product instructions (VNNI or AMX)."""
    from ocrmill.backends.choice import INT8_FLAGS, cpu_flags

    return not cpu_flags().isdisjoint(INT8_FLAGS)


def _has_int8_copy(model_path: Path, config: BackendConfig) -> bool:
    if not cpu_multiplies_int8():
        return False
    from ocrmill.backends import int8

    return int8.has_copy(model_path, cache_root(config))


@functools.cache
def openvino_capabilities() -> tuple[str, ...]:
    """The precisions and features OpenVINO's CPU plugin reports here (``BF16`` only where
    the CPU computes it natively: AVX512_BF16 or AMX). Raises ImportError without
    OpenVINO, and the plugin's own error when it cannot start."""
    import openvino as ov

    return tuple(ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def openvino_has_bf16() -> bool:
    """Whether OpenVINO's CPU plugin reports bf16 among its capabilities here."""
    try:
        return "BF16" in openvino_capabilities()
    except Exception:  # no plugin, or one that cannot start: f32 only
        return False


def candidate_precision(candidate: str, config: BackendConfig) -> Literal["f32", "bf16", "int8"]:
    """What a CPU candidate computes in: ``openvino-bf16`` in bf16, ``openvino-int8`` in
    int8, ``openvino`` in what the configuration names (``auto`` loads it at f32), every
    other backend in f32."""
    if candidate == "openvino-bf16":
        return "bf16"
    if candidate == "openvino-int8":
        return "int8"
    if candidate == "openvino" and config.openvino_precision != "auto":
        return config.openvino_precision
    return "f32"


# ONNX Runtime's threads spin for a while after a run, which pays for the recognizer, run
# line after line. A model run once between other models' runs (the detector, the
# classifier, the layout model) would leave them spinning against the next model: on an
# Intel Xeon (family 6 model 207), 2 threads, OpenVINO's detector took 159-172 ms right
# after a spinning classifier run against 138 ms after a sleeping one, and five recognizer
# lines 58-62 against 41 ms; the classifier itself runs 1-4 ms slower asleep (4 to 16 crops).
SPINNING_ROLES = ("rec",)


def _load(
    name: str, model_path: Path, config: BackendConfig, role: str = "det"
) -> InferenceBackend:
    if name == "onnxruntime":
        from ocrmill.backends.onnx import OnnxBackend

        return OnnxBackend(model_path, config, spinning=role in SPINNING_ROLES)
    if name in ("openvino", "openvino-bf16", "openvino-int8"):
        from ocrmill.backends.openvino import OpenVinoBackend

        precision = candidate_precision(name, config)
        if precision == "int8":
            return _load_int8(model_path, config, required=name == "openvino-int8")
        return OpenVinoBackend(
            model_path, dataclasses.replace(config, openvino_precision=precision)
        )
    if name == "torch":
        from ocrmill.backends.torch import TorchBackend

        return TorchBackend(model_path, config)
    raise ConfigError(f"unknown backend {name!r}; available: auto, {', '.join(BACKENDS)}")


def _load_int8(model_path: Path, config: BackendConfig, *, required: bool) -> InferenceBackend:
    """OpenVINO on ``model_path``'s int8 copy. Where none can be built, ``required`` (the
    ``openvino-int8`` candidate) raises; ``openvino_precision="int8"`` asked for every model
    loads one without int8 ranges at f32 instead."""
    from ocrmill.backends import int8
    from ocrmill.backends.openvino import OpenVinoBackend
    from ocrmill.errors import ModelError

    f32 = dataclasses.replace(config, openvino_precision="f32")
    try:
        path = int8.quantized_model(model_path, cache_root(config))
    except ModelError as exc:
        if required:
            raise
        log.info("%s: %s; it runs at f32", model_path.name, exc)
        return OpenVinoBackend(model_path, f32)
    backend = OpenVinoBackend(path, f32)
    backend.providers = ("OpenVINO:CPU:int8",)
    return backend
