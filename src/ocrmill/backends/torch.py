"""torch backend: the same PP-OCR ONNX files, converted to a torch module by ``onnx2torch``.

For GPUs without ``onnxruntime-gpu``: the ONNX graph is rewritten (``onnx_rewrite``) so that
onnx2torch can convert it, the converted module is cached on disk (a new worker loads it
without converting), and it runs under ``torch.inference_mode`` on the CPU (fp32) or on
CUDA (fp16 autocast when ``BackendConfig.fp16``; outputs always come back as float32).
A backend is built in the worker process that uses it and belongs to one thread.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import tempfile
import types
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ocrmill.backends.base import InferenceBackend, cache_root
from ocrmill.backends.split import is_out_of_memory
from ocrmill.config import BackendConfig
from ocrmill.errors import ConfigError, ModelError, ResourceLimitError
from ocrmill.models import file_digest

log = logging.getLogger(__name__)

_INSTALL_HINT = "pip install 'ocrmill[torch]'"
# Bump when the rewrites or what is cached change: old cache entries are then ignored.
_CACHE_FORMAT = 1


class _TorchvisionPlaceholderOps(types.ModuleType):
    """``torchvision.ops`` stand-in: any function taken from it raises when called."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)

        def unavailable(*args: Any, **kwargs: Any) -> Any:
            raise ModelError(
                f"torchvision.ops.{name} is needed by this model, but torchvision is not "
                "usable beside this torch build (the PP-OCR models never need it)"
            )

        return unavailable


def _import_onnx2torch() -> Any:
    """``onnx2torch``, imported even where torchvision is missing or broken.

    onnx2torch imports torchvision at import time, but only its NonMaxSuppression and
    RoiAlign converters use it, and the PP-OCR graphs contain neither op. torchvision is
    not always importable: it may be absent, or (PyPI's wheel beside a torch built
    elsewhere, such as a CPU-only torch) fail while registering its C++ operators
    ("operator torchvision::nms does not exist", a RuntimeError). Then a placeholder module
    whose ``ops`` functions raise a clear error stands in for it while onnx2torch is
    imported, and is removed again afterwards so that other code still sees the real state.
    """
    loaded = sys.modules.get("onnx2torch")
    if loaded is not None:
        return loaded
    placeholder = False
    try:
        import torchvision  # noqa: F401
    except (ImportError, RuntimeError) as exc:
        log.debug("torchvision is not usable (%s): importing onnx2torch without it", exc)
        # A failed import can leave some of its submodules registered: drop them all.
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        stub = types.ModuleType("torchvision")
        stub.__doc__ = "ocrmill placeholder: torchvision is not importable here"
        ops = _TorchvisionPlaceholderOps("torchvision.ops")
        stub.ops = ops  # type: ignore[attr-defined]
        sys.modules["torchvision"] = stub
        sys.modules["torchvision.ops"] = ops
        placeholder = True
    try:
        import onnx2torch
    except ImportError as exc:
        raise ConfigError(f"the torch backend needs onnx2torch ({exc}); {_INSTALL_HINT}") from None
    finally:
        if placeholder:
            for name in ("torchvision", "torchvision.ops"):
                sys.modules.pop(name, None)
    return onnx2torch


def _import_torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise ConfigError(f"the torch backend needs torch ({exc}); {_INSTALL_HINT}") from None
    return torch


def _import_onnx() -> Any:
    try:
        import onnx
    except ImportError as exc:
        raise ConfigError(f"the torch backend needs onnx ({exc}); {_INSTALL_HINT}") from None
    return onnx


def _onnx2torch_version() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version("onnx2torch")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def cache_path(model_path: Path, config: BackendConfig) -> Path:
    """The cache file of ``model_path``'s converted module: keyed by the file's sha256 and
    the torch, onnx2torch and cache-format versions."""
    torch = _import_torch()
    key = hashlib.sha256(
        f"{file_digest(model_path)}|torch={torch.__version__}|onnx2torch={_onnx2torch_version()}"
        f"|format={_CACHE_FORMAT}".encode()
    ).hexdigest()[:24]
    return cache_root(config) / "torch" / f"{model_path.stem}-{key}.pt"


def _conversion_error(exc: BaseException) -> str:
    """``exc`` raised inside ``onnx2torch.convert``, with the op it was converting."""
    tb = exc.__traceback__
    node = None
    while tb is not None:  # the innermost frame of convert() holds the node being converted
        if tb.tb_frame.f_code.co_name == "convert" and "onnx_node" in tb.tb_frame.f_locals:
            node = tb.tb_frame.f_locals["onnx_node"]
        tb = tb.tb_next
    detail = f"{type(exc).__name__}: {exc}"
    if node is None:
        return detail
    return f"{node.operation_type} node {node.name or node.unique_name!r}: {detail}"


def convert_model(model_path: Path) -> tuple[Any, dict[str, str]]:
    """Convert an ONNX file to an eval-mode torch module (on the CPU, fp32), and return it
    with the file's ``metadata_props``. Slow (seconds): ``TorchBackend`` caches the result."""
    from ocrmill.backends.onnx_rewrite import prepare_for_onnx2torch

    onnx = _import_onnx()
    _import_torch()
    onnx2torch = _import_onnx2torch()
    try:
        model = onnx.load(str(model_path))
    except Exception as exc:  # protobuf DecodeError, OSError, ...
        raise ModelError(f"cannot load model {model_path}: {exc}") from None
    metadata = {p.key: p.value for p in model.metadata_props}
    initializer_names = {init.name for init in model.graph.initializer}
    inputs = [i.name for i in model.graph.input if i.name not in initializer_names]
    if len(inputs) != 1:
        raise ModelError(f"{model_path}: expected one input, found {len(inputs)}")
    try:
        model = prepare_for_onnx2torch(model)
    except ModelError as exc:
        raise ModelError(f"{model_path.name}: {exc.message}") from None
    from onnx2torch.node_converters import get_converter

    opsets = {o.domain: o.version for o in model.opset_import}
    missing = []
    for node in model.graph.node:
        version = opsets.get(node.domain or "", opsets.get("ai.onnx", 0))
        try:
            get_converter(domain=node.domain, operation_type=node.op_type, version=version)
        except NotImplementedError:
            missing.append(f"{node.domain + '::' if node.domain else ''}{node.op_type}")
    if missing:
        raise ModelError(
            f"{model_path.name}: onnx2torch {_onnx2torch_version()} cannot convert op(s) "
            f"{', '.join(sorted(set(missing)))}"
        )
    try:
        module = onnx2torch.convert(model)
    except Exception as exc:  # converters raise NotImplementedError, KeyError, ValueError...
        raise ModelError(
            f"{model_path.name}: onnx2torch cannot convert it: {_conversion_error(exc)}"
        ) from None
    # nn.Module starts in training mode, where BatchNorm would use batch statistics.
    return module.eval(), metadata


def _load_cached(path: Path) -> tuple[Any, dict[str, str]] | None:
    """The cached (module, metadata) at ``path``; None when absent or unreadable."""
    torch = _import_torch()
    _import_onnx2torch()  # unpickling the module needs onnx2torch's classes
    if not path.is_file():
        return None
    try:
        # Our own cache file (a pickled fx.GraphModule), not a download: full unpickling.
        entry = torch.load(path, map_location="cpu", weights_only=False)
        if not isinstance(entry, dict) or entry.get("format") != _CACHE_FORMAT:
            raise ValueError("not a cache entry of this version")
        module, metadata = entry["module"], dict(entry["metadata"])
        if not isinstance(module, torch.nn.Module):
            raise ValueError("no module in the entry")
    except Exception as exc:  # truncated/corrupt pickle: rebuild it
        log.warning("torch cache entry %s is unreadable (%s): converting again", path, exc)
        try:
            path.unlink()
        except OSError:
            pass
        return None
    return module.eval(), metadata


def _store_cached(path: Path, module: Any, metadata: dict[str, str]) -> None:
    """Write the cache entry atomically (several workers may convert the same model at
    once); an unwritable cache only costs start-up time."""
    torch = _import_torch()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                torch.save({"format": _CACHE_FORMAT, "module": module, "metadata": metadata}, fh)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except Exception as exc:  # OSError, or a module that does not pickle
        log.warning("cannot write torch cache entry %s: %s", path, exc)


def _parse_device(torch: Any, name: str) -> Any:
    if name == "cpu":
        return torch.device("cpu")
    if name != "cuda" and not name.startswith("cuda:"):
        raise ConfigError(f"the torch backend runs on 'cpu' or 'cuda[:N]', not {name!r}")
    try:
        index = int(name.partition(":")[2] or 0)
    except ValueError:
        raise ConfigError(f"bad device {name!r}: expected 'cuda' or 'cuda:N'") from None
    if not torch.cuda.is_available():
        raise ConfigError(
            f"device {name!r}: this torch ({torch.__version__}) sees no CUDA GPU"
            + ("" if torch.version.cuda else " (it is a CPU-only build)")
        )
    count = torch.cuda.device_count()
    if not 0 <= index < count:
        raise ConfigError(f"device {name!r}: this process sees {count} GPU(s)")
    return torch.device("cuda", index)


def _is_out_of_memory(torch: Any, exc: BaseException) -> bool:
    return isinstance(exc, torch.cuda.OutOfMemoryError) or is_out_of_memory(exc)


class TorchBackend(InferenceBackend):
    """One ONNX model converted to torch, on the CPU or one CUDA device (one thread only)."""

    def __init__(self, model_path: Path, config: BackendConfig) -> None:
        torch = _import_torch()
        self._torch = torch
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise ModelError(f"model file not found: {self.model_path}")
        self._device = _parse_device(torch, config.device)
        self._cuda = self._device.type == "cuda"
        self._fp16 = self._cuda and config.fp16

        try:
            cached = cache_path(self.model_path, config)
        except OSError as exc:
            raise ModelError(f"model file cannot be read: {self.model_path}: {exc}") from None
        entry = _load_cached(cached)
        if entry is None:
            entry = convert_model(self.model_path)
            _store_cached(cached, *entry)
        module, self._metadata = entry

        if self._cuda:
            torch.backends.cudnn.benchmark = True
            if config.gpu_mem_limit > 0:
                total = torch.cuda.get_device_properties(self._device).total_memory
                torch.cuda.set_per_process_memory_fraction(
                    min(1.0, config.gpu_mem_limit / total), self._device
                )
        elif config.threads > 0:
            torch.set_num_threads(config.threads)  # process-wide, like the worker's device
        self._module = module.to(self._device)
        precision = "fp16" if self._fp16 else "fp32"
        where = f"cuda:{self._device.index}" if self._cuda else "cpu"
        self.providers: tuple[str, ...] = (f"torch:{where}:{precision}",)

    # -- inference ---------------------------------------------------------------------

    def _to_device(self, batch: np.ndarray) -> Any:
        torch = self._torch
        host = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
        if not self._cuda:
            return host
        # Pinned staging memory (torch's caching host allocator reuses the blocks) lets the
        # copy run asynchronously; the allocator keeps a block until its copy is done.
        pinned = torch.empty(host.shape, dtype=torch.float32, pin_memory=True)
        pinned.copy_(host)
        return pinned.to(self._device, non_blocking=True)

    def _to_host(self, *tensors: Any) -> list[np.ndarray]:
        torch = self._torch
        if not self._cuda:
            return [np.asarray(t.numpy()) for t in tensors]
        copies = []
        for t in tensors:
            pinned = torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
            pinned.copy_(t, non_blocking=True)
            copies.append(pinned)
        torch.cuda.current_stream(self._device).synchronize()
        return [np.asarray(p.numpy()) for p in copies]  # each array keeps its tensor alive

    def _forward(self, batch: np.ndarray) -> Any:
        """The first output of the module on the device (float32, or float16 under fp16)."""
        out = self._forward_all(batch)
        if isinstance(out, (tuple, list)):
            out = out[0]
        return out

    def _forward_all(self, batch: np.ndarray) -> Any:
        """The module's output on the device: one tensor, or a tuple of them."""
        torch = self._torch
        x = self._to_device(batch)
        if self._fp16:
            # Autocast, not .half(): convolutions and matmuls run in fp16, while softmax,
            # pow and the reductions of the decomposed LayerNorms stay in fp32.
            with torch.autocast(device_type="cuda", dtype=torch.float16):
                return self._module(x)
        return self._module(x)

    def _out_of_memory(self, batch: np.ndarray) -> ResourceLimitError:
        # Called after the except block: the failed call's tensors are unreferenced by now,
        # so the cache can hand their memory back and the next (smaller) batch can run.
        if self._cuda or self._torch.cuda.is_initialized():
            self._torch.cuda.empty_cache()
        return ResourceLimitError(
            f"{self.model_path.name}: CUDA out of memory on a batch of shape {tuple(batch.shape)}"
        )

    def run(self, batch: np.ndarray) -> np.ndarray:
        """The model's first output for an NCHW float32 batch, as float32."""
        torch = self._torch
        try:
            with torch.inference_mode():
                out = self._forward(batch)
                (host,) = self._to_host(out.float())
                return host
        except Exception as exc:
            if not _is_out_of_memory(torch, exc):
                raise
        raise self._out_of_memory(batch)

    def run_all(self, batch: np.ndarray) -> list[np.ndarray]:
        """Every output of the model, in its order, as float32."""
        torch = self._torch
        try:
            with torch.inference_mode():
                out = self._forward_all(batch)
                outputs = out if isinstance(out, (tuple, list)) else (out,)
                return self._to_host(*(o.float() for o in outputs))
        except Exception as exc:
            if not _is_out_of_memory(torch, exc):
                raise
        raise self._out_of_memory(batch)

    def run_top1(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For a recognizer's BxTxC output: the best class per step (BxT int64) and its
        probability (BxT float32), reduced on the device so only those come back."""
        torch = self._torch
        try:
            with torch.inference_mode():
                out = self._forward(batch)
                best, idx = out.max(dim=-1)
                idx_host, best_host = self._to_host(idx, best.float())
                return idx_host, best_host
        except Exception as exc:
            if not _is_out_of_memory(torch, exc):
                raise
        raise self._out_of_memory(batch)

    def metadata(self) -> dict[str, str]:
        return dict(self._metadata)


# onnx2torch's Slice indexes with a list of slices, which torch warns about on every new
# call site; the result is the same. Silence that one warning, nothing else.
warnings.filterwarnings(
    "ignore",
    message="Using a non-tuple sequence for multidimensional indexing",
    category=UserWarning,
    module=r"onnx2torch\.",
)
