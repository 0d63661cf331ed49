"""Which installed backend runs each model fastest on this CPU: timed once, then cached.

Which backend wins depends on the CPU, not on the model alone. PP-OCRv6 small det, one
thread: on an AMD EPYC (AVX-512 VNNI) ONNX Runtime and OpenVINO took the same time; on an
Intel Xeon (family 6 model 207) OpenVINO took a third of ONNX Runtime's. So with
``backend="auto"`` on a CPU, the first engine that loads a model times every installed
backend on a few input shapes like the ones it will see, and the winner is kept in
``<cache>/backend_choice.json``, keyed by the CPU (model and vector flags), the library
versions, the model file's contents and the thread count. Later engines read it.

A backend other than ONNX Runtime must be at least ``MIN_GAIN`` faster to be chosen:
OpenVINO keeps more working memory (recognition: ~300 MiB more over 30 document images),
and when every model runs on ONNX Runtime a worker never loads OpenVINO at all.

A candidate is a backend at a precision. Where OpenVINO's CPU plugin computes in bf16
natively (AVX512_BF16 or AMX), it is timed at bf16 too (``openvino-bf16``), unless the
configuration fixes the precision: on those CPUs bf16 convolutions and matrix products run
at up to twice the f32 speed, and the page text read that way is measured to stay within
0.2 CER points of f32 (``benchmarks/results/precision_*.md``). Where the CPU multiplies int8
natively (AVX-512 VNNI, AVX-VNNI or AMX), a model that int8 ranges ship for is timed as its
int8 copy too (``openvino-int8``, see :mod:`ocrmill.backends.int8`).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ocrmill.atomic import write_text_atomically
from ocrmill.models import file_digest

if TYPE_CHECKING:
    from ocrmill.backends.base import InferenceBackend
    from ocrmill.config import BackendConfig

log = logging.getLogger(__name__)

CANDIDATES = ("onnxruntime", "openvino", "openvino-bf16", "openvino-int8")
MIN_GAIN = 0.10
# Input shapes timed per model role (NCHW): a page-sized detector input, recognition
# batches of the widths a page's lines come in, a classifier batch, the layout model's
# fixed input.
PROBE_SHAPES: dict[str, tuple[tuple[int, int, int, int], ...]] = {
    "det": ((1, 3, 544, 960),),
    "rec": ((1, 3, 48, 192), (4, 3, 48, 320), (1, 3, 48, 800)),
    "cls": ((8, 3, 48, 192),),
    "layout": ((1, 3, 800, 608),),
}
# Runs per shape, all timed: the first run of a new shape counts, because pages bring
# new shapes all the time (OpenVINO pays a compilation for each). A recognizer's shapes
# come back: line widths are rounded to a grid, and the 4-page scan of
# benchmarks/searchable_pdf.py read its 220 lines at 16 widths, so it is timed over 14 runs
# per shape, as a short document reads (a longer one reuses its shapes more).
PROBE_RUNS = 3
PROBE_RUNS_BY_ROLE = {"rec": 14}
# Part of the cache key: a choice timed by an earlier probe is timed again. 2: a
# recognizer that keeps memory per shape is timed one line per call, as the engine calls
# it. 3: the recognizer is timed over PROBE_RUNS_BY_ROLE runs per shape. (A new candidate
# needs no new version: the candidates timed are part of the key.)
PROBE_VERSION = 3
# How closely a candidate must reproduce ONNX Runtime's outputs on the probe inputs.
MIN_ARGMAX_AGREEMENT = 0.98
MAX_MAP_DIFF = 0.01
_VECTOR_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
# The flags of CPUs that multiply int8 in hardware (dot products of bytes).
INT8_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


@dataclass(frozen=True)
class BackendChoice:
    """The backend chosen for one model, and why."""

    role: str
    backend: str
    how: str  # "measured", "cached" or "only one installed"
    timings_ms: dict[str, float]  # per candidate: summed mean time over the probe shapes

    def describe(self, precision: str = "f32") -> str:
        times = ", ".join(f"{name} {ms:.0f} ms" for name, ms in sorted(self.timings_ms.items()))
        return f"{self.backend}, {precision} ({self.how}{': ' + times if times else ''})"


@functools.cache
def _cpuinfo() -> dict[str, str]:
    """The first processor's block of /proc/cpuinfo (empty where there is none)."""
    fields: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if not key.strip():
                break  # the first processor's block is enough
            fields.setdefault(key.strip(), value.strip())
    return fields


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (from /proc/cpuinfo; empty where there is none)."""
    return frozenset(_cpuinfo().get("flags", "").split())


@functools.cache
def cpu_identity() -> str:
    """The CPU model, family/model numbers and the vector flags that decide which kernels
    run (from /proc/cpuinfo where there is one)."""
    fields = _cpuinfo()
    name = fields.get("model name") or platform.processor() or platform.machine()
    flags = cpu_flags()
    shown = " ".join(f for f in _VECTOR_FLAGS if f in flags) or "no AVX2/AVX-512"
    family = f" (family {fields['cpu family']} model {fields.get('model', '?')})"
    return f"{name}{family if 'cpu family' in fields else ''}, {shown}"


def _version(module: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(module)
    except PackageNotFoundError:
        return "-"


def candidate_module(candidate: str) -> str:
    """The package a candidate runs on (``openvino-bf16``, ``openvino-int8``: ``openvino``)."""
    return candidate.split("-", 1)[0]


def candidate_version(candidate: str) -> str:
    """What a candidate's timing depends on: its package's version, and for
    ``openvino-int8`` also how ocrmill builds the int8 copy it runs (``int8.build_key``)."""
    version = _version(candidate_module(candidate))
    if candidate == "openvino-int8":
        from ocrmill.backends import int8

        version += f"+{int8.build_key()}"
    return version


def choice_key(role: str, model_path: Path, threads: int, candidates: tuple[str, ...]) -> str:
    libs = ",".join(f"{c}={candidate_version(c)}" for c in candidates)
    model = f"{Path(model_path).name}:{file_digest(model_path)[:16]}"
    return f"{role}|{model}|{threads}|probe{PROBE_VERSION}|{libs}|{cpu_identity()}"


class ChoiceCache:
    """The measured choices, as JSON in the backend cache folder."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "backend_choice.json"

    def load(self) -> dict[str, dict[str, object]]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, key: str) -> tuple[str, dict[str, float]] | None:
        entry = self.load().get(key)
        if not isinstance(entry, dict) or not isinstance(entry.get("backend"), str):
            return None
        timings = entry.get("timings_ms")
        return str(entry["backend"]), dict(timings) if isinstance(timings, dict) else {}

    def put(self, key: str, backend: str, timings_ms: dict[str, float]) -> None:
        data = self.load()
        data[key] = {"backend": backend, "timings_ms": timings_ms}
        try:
            write_text_atomically(self.path, json.dumps(data, indent=1, sort_keys=True))
        except OSError as exc:  # an unwritable cache only means timing again next start
            log.warning("cannot write %s: %s", self.path, exc)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Held while one process measures, so that workers starting together neither
        time each other's load nor all measure."""
        try:
            import fcntl
        except ImportError:  # not POSIX: measure unlocked
            yield
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(self.path.with_suffix(".lock"), "a+")  # noqa: SIM115
        except OSError:
            yield
            return
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def time_backend(
    backend: InferenceBackend, role: str, runs: int | None = None
) -> tuple[float, list[np.ndarray]]:
    """Milliseconds ``backend`` takes on ``role``'s probe shapes (per shape the mean of
    ``runs`` runs, the first included, summed over the shapes; by default the role's
    probe runs), and its output on each. A recognizer that keeps memory per shape is given
    one line per call, as the engine gives it lines."""
    if runs is None:
        runs = PROBE_RUNS_BY_ROLE.get(role, PROBE_RUNS)
    rng = np.random.default_rng(0)
    total = 0.0
    outputs = []
    by_line = role == "rec" and getattr(backend, "memory_per_shape", False)
    for shape in PROBE_SHAPES[role]:
        batch = rng.uniform(-1.0, 1.0, size=shape).astype(np.float32)
        started = time.perf_counter()
        for _ in range(runs):
            if by_line:
                out = np.concatenate([backend.run(batch[i : i + 1]) for i in range(len(batch))])
            else:
                out = backend.run(batch)
        total += (time.perf_counter() - started) * 1000.0 / runs
        outputs.append(np.asarray(out))
    return total, outputs


def disagreement(role: str, reference: list[np.ndarray], outputs: list[np.ndarray]) -> str | None:
    """Why a candidate's probe outputs cannot stand in for the reference's (ONNX Runtime
    at f32), or None. Outputs must be finite; the recognizer's and classifier's best class
    must match at ``MIN_ARGMAX_AGREEMENT`` of positions, the detector's map within
    ``MAX_MAP_DIFF`` on average. A recognizer blob OpenVINO had compiled at bf16 elsewhere
    and cached gave NaN at most time steps on an Intel Xeon with AMX (family 6 model 167),
    and pages read as noise (97 % CER); this check kept it out."""
    for ref, out in zip(reference, outputs):
        if not np.isfinite(out).all():
            return "outputs that are not finite"
        if ref.shape != out.shape:
            return f"output shape {out.shape}, not {ref.shape}"
        if role in ("rec", "cls"):
            agree = float((ref.argmax(-1) == out.argmax(-1)).mean())
            if agree < MIN_ARGMAX_AGREEMENT:
                return f"best class agreeing at {agree:.1%} of positions"
        elif float(np.abs(ref - out).mean()) > MAX_MAP_DIFF:
            return f"outputs {float(np.abs(ref - out).mean()):.3g} off on average"
    return None


def pick(timings_ms: dict[str, float]) -> str:
    """The fastest candidate; ONNX Runtime unless another beats it by ``MIN_GAIN``."""
    fastest = min(timings_ms, key=timings_ms.__getitem__)
    baseline = timings_ms.get("onnxruntime")
    if baseline is not None and timings_ms[fastest] > baseline * (1.0 - MIN_GAIN):
        return "onnxruntime"
    return fastest


Loader = Callable[[str], "InferenceBackend"]


def choose_cpu_backend(
    role: str,
    model_path: Path,
    config: BackendConfig,
    installed: tuple[str, ...],
    load: Loader,
    cache: ChoiceCache,
) -> tuple[BackendChoice, InferenceBackend]:
    """The backend for ``role`` on this CPU and the loaded winner.

    ``installed``: the candidates whose packages are installed; ``load(name)`` loads the
    model on one. A candidate that fails to load is left out (logged); when none loads,
    the last error is raised.
    """
    if len(installed) == 1:
        return BackendChoice(role, installed[0], "only one installed", {}), load(installed[0])
    key = choice_key(role, model_path, config.threads, installed)
    with cache.locked():
        cached = cache.get(key)
        if cached is not None and cached[0] in installed:
            name, timings = cached
            try:
                return BackendChoice(role, name, "cached", timings), load(name)
            except Exception as exc:
                log.warning(
                    "cached backend %s cannot load %s (%s): timing again", name, model_path, exc
                )
        loaded: dict[str, InferenceBackend] = {}
        timings = {}
        error: Exception | None = None
        reference: list[np.ndarray] | None = None
        for name in installed:
            try:
                backend = load(name)
                ms, outputs = time_backend(backend, role)
            except Exception as exc:
                log.warning("%s cannot run %s (%s); leaving it out", name, model_path, exc)
                error = exc
                continue
            if reference is None:
                reference = outputs  # the first candidate: ONNX Runtime at f32
            elif (why := disagreement(role, reference, outputs)) is not None:
                log.warning("%s reads %s with %s; leaving it out", name, model_path, why)
                continue
            timings[name] = round(ms, 1)
            loaded[name] = backend
        if not loaded:
            assert error is not None
            raise error
        winner = pick(timings)
        cache.put(key, winner, timings)
    log.debug("backend for %s on this CPU: %s (%s)", role, winner, timings)
    return BackendChoice(role, winner, "measured", timings), loaded[winner]


def cached_choice(
    role: str, model_path: Path, config: BackendConfig, folder: Path, candidates: tuple[str, ...]
) -> BackendChoice | None:
    """What an earlier engine measured for ``role`` among ``candidates`` with these
    settings, if anything."""
    found = ChoiceCache(folder).get(choice_key(role, model_path, config.threads, candidates))
    if found is None:
        return None
    return BackendChoice(role, found[0], "cached", found[1])
