"""OpenVINO backend (CPU): the same ONNX files, compiled by OpenVINO's CPU plugin.

On some CPUs it runs the PP-OCR detector several times faster than ONNX Runtime's CPU
provider (an Intel Xeon, family 6 model 207: 95 against 308 ms), on others at the same
speed, with outputs equal to ~1e-5 (fp32): ``backends/choice.py`` times both where they
are installed. Compiled models are cached on disk, so a new worker skips OpenVINO's graph
compilation; the model is compiled from its file, so that a cached one is not even read
(the ONNX file is parsed only when its metadata is asked for).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from ocrmill.backends.base import InferenceBackend, cache_root
from ocrmill.config import BackendConfig
from ocrmill.errors import ModelError

CONVERSION_API = "openvino.tools.ovc"


def leave_out_conversion_api() -> bool:
    """Have this process's ``import openvino`` skip OpenVINO's model-conversion API
    (``openvino.convert_model``). The package imports it on import, where it also sets up
    its usage telemetry and looks up installed packages' versions: ``import openvino`` took
    0.41 s and 54 MiB with it, 0.21 s and 39 MiB without (OpenVINO 2026.4, Intel Xeon family
    6 model 207, median of 8). Nothing here converts models: they are compiled from their
    files.

    For ocrmill's own processes only (a pool worker): the API is then missing for all else
    in the process. False where OpenVINO was already imported (too late to leave it out).
    """
    if "openvino" in sys.modules:
        return False
    # A None entry makes its import raise ImportError, which the package catches.
    modules: dict[str, Any] = sys.modules
    modules.setdefault(CONVERSION_API, None)
    return True


class OpenVinoBackend(InferenceBackend):
    """One compiled OpenVINO model and its single infer request (one thread only)."""

    memory_per_shape = True

    def __init__(self, model_path: Path, config: BackendConfig) -> None:
        import openvino as ov

        self.model_path = Path(model_path)
        if config.device != "cpu":
            raise ModelError(f"the openvino backend runs on the CPU, not {config.device!r}")
        core = ov.Core()
        # "auto" is for the CPU choice to settle (backends/choice.py); loaded by name: f32.
        precision = "bf16" if config.openvino_precision == "bf16" else "f32"
        properties: dict[str, Any] = {
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": 1,
            "INFERENCE_PRECISION_HINT": precision,
            # Several worker processes share the machine: pinning would stack them all on
            # the same cores.
            "ENABLE_CPU_PINNING": False,
        }
        if config.threads > 0:
            properties["INFERENCE_NUM_THREADS"] = config.threads
        cache = compiled_cache_dir(config)
        try:
            cache.mkdir(parents=True, exist_ok=True)
            core.set_property({"CACHE_DIR": str(cache)})
        except OSError:
            pass  # an unwritable cache only costs start-up time
        self._core = core
        self._metadata: dict[str, str] | None = None  # read on the first metadata() call
        try:
            # From the path, not a read model: a blob in the cache is then imported without
            # parsing the ONNX file (PP-OCRv6 det 49 against 103 ms, the layout model 64
            # against 146 ms, Intel Xeon family 6 model 167). The blob is found by the
            # file's path and properties; one whose model file has changed is compiled again.
            compiled = core.compile_model(str(self.model_path), "CPU", properties)
        except Exception as exc:  # OpenVINO raises RuntimeError with its own text
            raise ModelError(f"cannot load model {self.model_path}: {exc}") from None
        if len(compiled.inputs) != 1:
            raise ModelError(f"{self.model_path}: expected one input, found {len(compiled.inputs)}")
        self._outputs = len(compiled.outputs)
        self._compiled = compiled
        self._request = compiled.create_infer_request()
        # The precision the plugin settled on: bf16 asked for where the CPU lacks it is
        # f32 on some versions, emulated on others (2026.4 on an Intel Xeon model 207).
        bf16 = "bfloat16" in str(compiled.get_property("INFERENCE_PRECISION_HINT"))
        self.providers: tuple[str, ...] = ("OpenVINO:CPU:bf16" if bf16 else "OpenVINO:CPU",)

    def run(self, batch: np.ndarray) -> np.ndarray:
        self._request.infer({0: np.ascontiguousarray(batch, dtype=np.float32)})
        return self._output(0)

    def run_all(self, batch: np.ndarray) -> list[np.ndarray]:
        """Every output of the model, in its order."""
        self._request.infer({0: np.ascontiguousarray(batch, dtype=np.float32)})
        return [self._output(i) for i in range(self._outputs)]

    def _output(self, index: int) -> np.ndarray:
        # The request reuses its output buffers on the next call: hand out a copy.
        return np.array(self._request.get_output_tensor(index).data, copy=True)

    def release_memory(self) -> None:
        """Hand back the intermediate buffers the CPU plugin keeps for the largest input
        it has seen: ~300 MiB after a 300-dpi page's detection. The compiled kernels stay;
        the next call allocates the buffers again (~75 ms more for that page's detector,
        Intel Xeon family 6 model 207)."""
        self._compiled.release_memory()

    def metadata(self) -> dict[str, str]:
        if self._metadata is None:
            try:
                model = self._core.read_model(str(self.model_path))
            except Exception as exc:
                raise ModelError(f"cannot read model {self.model_path}: {exc}") from None
            info = model.get_rt_info()
            self._metadata = (
                {
                    str(k): str(model.get_rt_info(["framework", k]).astype(str))
                    for k in info["framework"]
                }
                if "framework" in info
                else {}
            )
        return self._metadata


def compiled_cache_dir(config: BackendConfig) -> Path:
    """Where compiled models are cached: one folder per OpenVINO version and CPU (model,
    family and vector flags). A home folder is often shared by machines with other CPUs,
    and a blob compiled on one CPU is not safe on another: on an Intel Xeon with AMX, a
    recognizer blob compiled at bf16 on another machine read NaN at most time steps, while
    the same model compiled here read like f32."""
    import hashlib

    import openvino as ov

    from ocrmill.backends.choice import cpu_identity

    key = hashlib.sha256(f"{ov.__version__}|{cpu_identity()}".encode()).hexdigest()[:16]
    return cache_root(config) / "openvino" / key
