"""ONNX Runtime backend (CPU execution provider)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ocrmill.config import BackendConfig
from ocrmill.errors import ModelError


class OnnxBackend:
    """One ``onnxruntime.InferenceSession`` for one model file."""

    def __init__(self, model_path: Path, config: BackendConfig) -> None:
        import onnxruntime as ort

        self.model_path = Path(model_path)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.inter_op_num_threads = 1
        if config.threads > 0:
            options.intra_op_num_threads = config.threads
        options.enable_cpu_mem_arena = config.enable_cpu_mem_arena
        options.log_severity_level = 3
        wanted = ["CPUExecutionProvider"]
        try:
            self._session = ort.InferenceSession(
                str(self.model_path), sess_options=options, providers=wanted
            )
        except Exception as exc:  # ORT raises its own Fail/InvalidGraph/... types
            raise ModelError(f"cannot load model {self.model_path}: {exc}") from None
        # ONNX Runtime silently falls back when a provider fails to load: check.
        self.providers = tuple(self._session.get_providers())
        if wanted[0] not in self.providers:
            raise ModelError(
                f"{self.model_path}: wanted {wanted[0]}, ONNX Runtime loaded {self.providers}"
            )
        inputs = self._session.get_inputs()
        if len(inputs) != 1:
            raise ModelError(f"{self.model_path}: expected one input, found {len(inputs)}")
        self._input_name = inputs[0].name
        self._output_names = [self._session.get_outputs()[0].name]

    def run(self, batch: np.ndarray) -> np.ndarray:
        out = self._session.run(self._output_names, {self._input_name: batch})
        return np.asarray(out[0])

    def metadata(self) -> dict[str, str]:
        return dict(self._session.get_modelmeta().custom_metadata_map)

    def output_shape(self) -> list[int | str | None]:
        """Declared shape of the first output (symbolic dimensions as strings)."""
        return list(self._session.get_outputs()[0].shape)
