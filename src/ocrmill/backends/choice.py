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

CANDIDATES = ("onnxruntime", "openvino")
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
# new shapes all the time (OpenVINO pays a compilation for each).
PROBE_RUNS = 3
_VECTOR_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


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
def cpu_identity() -> str:
    """The CPU model, family/model numbers and the vector flags that decide which kernels
    run (from /proc/cpuinfo where there is one)."""
    fields: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if not key.strip():
                break  # the first processor's block is enough
            fields.setdefault(key.strip(), value.strip())
    name = fields.get("model name") or platform.processor() or platform.machine()
    flags = set(fields.get("flags", "").split())
    shown = " ".join(f for f in _VECTOR_FLAGS if f in flags) or "no AVX2/AVX-512"
    family = f" (family {fields['cpu family']} model {fields.get('model', '?')})"
    return f"{name}{family if 'cpu family' in fields else ''}, {shown}"


def _version(module: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(module)
    except PackageNotFoundError:
        return "-"


def choice_key(role: str, model_path: Path, threads: int) -> str:
    libs = ",".join(f"{m}={_version(m)}" for m in CANDIDATES)
    return f"{role}|{Path(model_path).name}:{file_digest(model_path)[:16]}|{threads}|{libs}|{cpu_identity()}"


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


def time_backend(backend: InferenceBackend, role: str, runs: int = PROBE_RUNS) -> float:
    """Milliseconds ``backend`` takes on ``role``'s probe shapes: per shape the mean of
    ``runs`` runs (the first included), summed over the shapes."""
    rng = np.random.default_rng(0)
    total = 0.0
    for shape in PROBE_SHAPES[role]:
        batch = rng.uniform(-1.0, 1.0, size=shape).astype(np.float32)
        started = time.perf_counter()
        for _ in range(runs):
            backend.run(batch)
        total += (time.perf_counter() - started) * 1000.0 / runs
    return total


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
    key = choice_key(role, model_path, config.threads)
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
        for name in installed:
            try:
                backend = load(name)
                timings[name] = round(time_backend(backend, role), 1)
            except Exception as exc:
                log.warning("%s cannot run %s (%s); leaving it out", name, model_path, exc)
                error = exc
                continue
            loaded[name] = backend
        if not loaded:
            assert error is not None
            raise error
        winner = pick(timings)
        cache.put(key, winner, timings)
    log.debug("backend for %s on this CPU: %s (%s)", role, winner, timings)
    return BackendChoice(role, winner, "measured", timings), loaded[winner]


def cached_choice(
    role: str, model_path: Path, config: BackendConfig, folder: Path
) -> BackendChoice | None:
    """What an earlier engine measured for ``role`` with these settings, if anything."""
    found = ChoiceCache(folder).get(choice_key(role, model_path, config.threads))
    if found is None:
        return None
    return BackendChoice(role, found[0], "cached", found[1])
