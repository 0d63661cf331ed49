"""ONNX Runtime backend: the CPU provider, or CUDA / TensorRT with ``onnxruntime-gpu``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ocrmill.backends.base import InferenceBackend
from ocrmill.backends.split import is_out_of_memory
from ocrmill.config import BackendConfig
from ocrmill.errors import ConfigError, ModelError, ResourceLimitError

ProviderSpec = str | tuple[str, dict[str, Any]]


def cuda_device_id(device: str) -> int:
    """``cuda`` -> 0, ``cuda:N`` -> N."""
    _, _, index = device.partition(":")
    return int(index) if index else 0


def execution_providers(config: BackendConfig, available: list[str]) -> list[ProviderSpec]:
    """The provider list for ``config.device``, most preferred first, with their options.

    CPU: the CPU provider alone. CUDA: TensorRT when asked for and present, then CUDA with
    the configured device and memory settings, then the CPU provider for the few nodes
    CUDA cannot run. Raises ConfigError when the device needs a provider this ONNX
    Runtime build does not have.
    """
    if config.device == "cpu":
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" not in available:
        raise ConfigError(
            f"device {config.device!r}: this onnxruntime has no CUDA provider "
            f"(available: {', '.join(available)}); install onnxruntime-gpu or use the torch backend"
        )
    device_id = cuda_device_id(config.device)
    cuda: dict[str, Any] = {
        "device_id": device_id,
        "arena_extend_strategy": config.arena_extend_strategy,
        "cudnn_conv_algo_search": config.cudnn_conv_algo_search,
        "do_copy_in_default_stream": True,
    }
    if config.gpu_mem_limit > 0:
        cuda["gpu_mem_limit"] = config.gpu_mem_limit
    providers: list[ProviderSpec] = []
    if config.tensorrt and "TensorrtExecutionProvider" in available:
        trt: dict[str, Any] = {"device_id": device_id, "trt_fp16_enable": config.fp16}
        if config.gpu_mem_limit > 0:
            trt["trt_max_workspace_size"] = config.gpu_mem_limit
        providers.append(("TensorrtExecutionProvider", trt))
    providers.append(("CUDAExecutionProvider", cuda))
    providers.append("CPUExecutionProvider")
    return providers


class OnnxBackend(InferenceBackend):
    """One ``onnxruntime.InferenceSession`` for one model file."""

    def __init__(self, model_path: Path, config: BackendConfig, *, spinning: bool = True) -> None:
        """``spinning=False``: the session's threads sleep as soon as a run ends. For a small
        model run between the runs of a big one: threads left spinning after it compete
        with the big model's threads for the cores."""
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
        if not spinning:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = execution_providers(config, ort.get_available_providers())
        try:
            self._session = ort.InferenceSession(
                str(self.model_path), sess_options=options, providers=providers
            )
        except Exception as exc:  # ORT raises its own Fail/InvalidGraph/... types
            raise ModelError(f"cannot load model {self.model_path}: {exc}") from None
        # ONNX Runtime silently falls back when a provider fails to load (a missing CUDA
        # library, say): check that the one we asked for is really the one running.
        self.providers = tuple(self._session.get_providers())
        wanted = providers[0] if isinstance(providers[0], str) else providers[0][0]
        if wanted not in self.providers:
            raise ModelError(
                f"{self.model_path}: wanted {wanted}, ONNX Runtime loaded {self.providers}"
            )
        inputs = self._session.get_inputs()
        if len(inputs) != 1:
            raise ModelError(f"{self.model_path}: expected one input, found {len(inputs)}")
        self._input_name = inputs[0].name
        self._all_output_names = [o.name for o in self._session.get_outputs()]
        self._output_names = self._all_output_names[:1]

    def run(self, batch: np.ndarray) -> np.ndarray:
        return self._run(self._output_names, batch)[0]

    def run_all(self, batch: np.ndarray) -> list[np.ndarray]:
        """Every output of the model, in its order."""
        return self._run(self._all_output_names, batch)

    def _run(self, names: list[str], batch: np.ndarray) -> list[np.ndarray]:
        try:
            out = self._session.run(names, {self._input_name: batch})
        except Exception as exc:
            if is_out_of_memory(exc):
                raise ResourceLimitError(
                    f"{self.model_path.name}: out of memory on a batch of shape {batch.shape}"
                ) from None
            raise
        return [np.asarray(o) for o in out]

    def metadata(self) -> dict[str, str]:
        return dict(self._session.get_modelmeta().custom_metadata_map)
