"""int8 copies of the models, built once from activation ranges that ship with ocrmill.

On a CPU that multiplies int8 natively (AVX-512 VNNI, AVX-VNNI, AMX), the CPU choice times
the recognizer's int8 copy on OpenVINO beside the float backends (``openvino-int8``); on
one without bf16 it wins. On an Intel Xeon with AVX-512 VNNI and no bf16 (family 6 model
207), 2 threads, it read the lines of the 4-page scan of ``benchmarks/searchable_pdf.py``
in 2.9-3.4 s against 4.1-4.8 s on ONNX Runtime at f32 (``benchmarks/results/
searchable_pdf_20261206-int8-xeon207.md``, ``run_throughput_20261206-int8-xeon207.md``).

Quantizing needs the range of values each activation takes on real inputs. Those ranges
are measured once, on calibration pages that the accuracy benchmarks do not score
(``benchmarks/int8_calibration.py``), and ship in ``int8_ranges/*.json``; the quantized
model itself is built on the user's machine, from the model file the engine loads, and
kept in the model cache (``<cache>/int8/``).

A ranges file names its model by a fingerprint of the convolution weights, not by the
file's bytes: the charset-restricted recognizer (``backends.restricted``) is a different
file with the same backbone, and takes the same ranges. A model no ranges file fits (a
user's own, the detector, the classifier) has no int8 copy. Only convolutions are
quantized (weights per output channel, their inputs as uint8; their outputs stay f32), and
not those the ranges file keeps at f32 (``f32_nodes``): with the recognizer's last four
convolutions and its matrix products at int8 too, scene text read worse (the 30 labelled images of
``benchmarks/run_throughput.py``: 14.49 % page CER against 13.25 % at f32;
``docs_ocrmill_rec-int8-all-convs_20261206.md``).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from ocrmill.atomic import write_atomically, write_text_atomically
from ocrmill.errors import ModelError
from ocrmill.models import file_digest

log = logging.getLogger(__name__)

RANGES_DIR = Path(__file__).with_name("int8_ranges")
QUANTIZED_OPS = ("Conv",)
# Per-channel weight scales need QuantizeLinear's axis attribute (opset 13).
MIN_OPSET = 13
TARGET_OPSET = 17
# Bump when quantized models are built differently: cached ones are then built again.
_FORMAT = 3
# A convolution's input is quantized, its output is not. OpenVINO folds a quantized input
# into the int8 convolution, but a quantized output became a separate quantize step and a
# dequantize (a reference int8-to-f32 conversion and a subtraction of the zero point) before
# the next operation: a third of the recognizer's time on a 640 px line in OpenVINO's
# profile (benchmarks/results/run_throughput_20261207-int8-conv-inputs-xeon207.md: 2.82x
# RapidOCR against 2.27x with outputs quantized, Intel Xeon model 207).
_EXTRA_OPTIONS = {"OpTypesToExcludeOutputQuantization": list(QUANTIZED_OPS)}


def weights_fingerprint(model: Any) -> str:
    """The sha256 (hex, 16 digits) of a model's convolution weights, in graph order: what a
    ranges file is matched by."""
    from onnx import numpy_helper

    initializers = {t.name: t for t in model.graph.initializer}
    digest = hashlib.sha256()
    for node in model.graph.node:
        if node.op_type == "Conv" and len(node.input) > 1 and node.input[1] in initializers:
            weight = initializers[node.input[1]]
            digest.update(weight.name.encode())
            digest.update(numpy_helper.to_array(weight).tobytes())
    return digest.hexdigest()[:16]


@functools.cache
def _shipped() -> tuple[dict[str, dict[str, Any]], str]:
    """The ranges files by fingerprint, and a digest of their contents (part of a copy's
    cache key): read once per process."""
    files = sorted(RANGES_DIR.glob("*.json")) if RANGES_DIR.is_dir() else []
    records = [json.loads(p.read_text()) for p in files]
    digest = hashlib.sha256(json.dumps(records, sort_keys=True).encode()).hexdigest()
    return {str(r.get("fingerprint")): r for r in records}, digest


def load_ranges(fingerprint: str) -> dict[str, tuple[float, float]] | None:
    """The shipped activation ranges for the model with this fingerprint, or None."""
    data = _shipped()[0].get(fingerprint)
    if data is None:
        return None
    return {str(k): (float(v[0]), float(v[1])) for k, v in data["ranges"].items()}


def kept_f32(fingerprint: str) -> frozenset[str]:
    """The nodes of the model with this fingerprint that stay f32: those whose int8 form
    was measured to cost accuracy (the ranges file's ``f32_nodes``)."""
    data = _shipped()[0].get(fingerprint, {})
    return frozenset(str(n) for n in data.get("f32_nodes", ()))


def supported() -> bool:
    """Whether the installed ONNX Runtime's quantizer takes precomputed ranges (its
    ``calibration_cache_path``); without it no int8 copy can be built."""
    try:
        from onnxruntime.quantization import quantize_static
    except ImportError:
        return False
    return "calibration_cache_path" in inspect.signature(quantize_static).parameters


def build_key() -> str:
    """What an int8 copy depends on besides its model: the shipped ranges and how copies are
    built. A choice timed on one copy (``backends/choice.py``) is timed again for another."""
    return f"{_FORMAT}-{_shipped()[1][:16]}"


def copy_path(model_path: Path, cache_dir: Path) -> Path:
    """Where ``model_path``'s int8 copy is kept: keyed by the model's contents and
    ``build_key()``."""
    source = file_digest(model_path)
    key = hashlib.sha256(f"{source}|{build_key()}".encode()).hexdigest()[:24]
    return cache_dir / "int8" / f"{Path(model_path).stem}-int8-{key}.onnx"


def quantized_model(model_path: Path, cache_dir: Path) -> Path:
    """The int8 copy of ``model_path`` in ``cache_dir/int8/``, built on the first call.
    Raises ModelError when no shipped ranges fit the model or the quantizer is missing."""
    model_path = Path(model_path)
    path = copy_path(model_path, cache_dir)
    if path.is_file():
        return path
    if not supported():
        raise ModelError(
            "int8 models need onnxruntime's quantizer with calibration_cache_path "
            "(a newer onnxruntime)"
        )
    import onnx

    try:
        model = onnx.load(str(model_path))
    except Exception as exc:  # onnx raises DecodeError and friends
        raise ModelError(f"cannot read model {model_path}: {exc}") from None
    fingerprint = weights_fingerprint(model)
    ranges = load_ranges(fingerprint)
    if ranges is None:
        raise ModelError(f"no int8 ranges ship for {model_path} (not a model ocrmill knows)")
    _build(model, ranges, kept_f32(fingerprint), path)
    log.info("built the int8 copy of %s: %s", model_path.name, path)
    return path


def prepared(model: Any) -> Any:
    """``model`` at an opset that per-channel quantization can express, every node named
    (the quantizer picks nodes by name)."""
    from onnx import version_converter

    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < MIN_OPSET:
        model = version_converter.convert_version(model, TARGET_OPSET)
    for i, node in enumerate(model.graph.node):
        if not node.name:
            node.name = f"ocrmill_node_{i}"
    return model


def activations(model: Any) -> dict[str, list[str]]:
    """Per node of a quantized kind (``QUANTIZED_OPS``), by name: the tensors whose range
    its int8 form needs (its inputs that are not weights, and its outputs)."""
    weights = {t.name for t in model.graph.initializer}
    return {
        node.name: [t for t in node.input[:2] if t and t not in weights] + list(node.output)
        for node in model.graph.node
        if node.op_type in QUANTIZED_OPS
    }


def quantizable_nodes(
    model: Any, ranges: dict[str, tuple[float, float]], keep: frozenset[str] = frozenset()
) -> list[str]:
    """The convolutions whose activations all have a measured range, less the nodes in
    ``keep``."""
    return [
        name
        for name, tensors in activations(model).items()
        if name not in keep and all(t in ranges for t in tensors)
    ]


class _DropAdvice(logging.Filter):
    """Drops the quantizer's advice to pre-process the model (ours is built as it is on
    purpose: the shipped ranges name the model's own tensors)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Please consider")


def _build(
    model: Any, ranges: dict[str, tuple[float, float]], keep: frozenset[str], path: Path
) -> None:
    import numpy as np
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.calibrate import (
        CalibrationMethod,
        TensorsData,
        save_tensors_data,
    )

    model = prepared(model)
    nodes = quantizable_nodes(model, ranges, keep)
    if not nodes:
        raise ModelError("the shipped int8 ranges cover none of the model's convolutions")
    with tempfile.TemporaryDirectory(prefix="ocrmill-int8-") as tmp:
        source = Path(tmp) / "model.onnx"
        onnx.save(model, str(source))
        calibration = Path(tmp) / "ranges.json"
        data = {k: (np.float32(lo), np.float32(hi)) for k, (lo, hi) in ranges.items()}
        save_tensors_data(TensorsData(CalibrationMethod.MinMax, data), calibration)
        quiet = _DropAdvice()
        logging.getLogger().addFilter(quiet)  # the quantizer warns through the root logger
        try:
            quantize = functools.partial(
                quantize_static,
                source,
                calibration_data_reader=None,
                quant_format=QuantFormat.QDQ,
                nodes_to_quantize=nodes,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
                calibration_cache_path=calibration,
                extra_options=_EXTRA_OPTIONS,
            )
            write_atomically(path, lambda tmp_path: quantize(model_output=tmp_path))
        finally:
            logging.getLogger().removeFilter(quiet)


def has_copy(model_path: Path, cache_dir: Path) -> bool:
    """Whether ``model_path`` has an int8 copy: one is cached, or ranges ship for the model
    and it is built now. A model no ranges fit is remembered as such beside the copies, so
    that later starts do not parse it again."""
    path = copy_path(model_path, cache_dir)
    if path.is_file():
        return True
    marker = path.with_suffix(".none")
    if marker.is_file() or not supported():
        return False
    try:
        quantized_model(model_path, cache_dir)
    except ModelError as exc:
        log.debug("no int8 copy of %s: %s", model_path, exc)
        try:
            write_text_atomically(marker, f"{exc}\n")
        except OSError:
            pass  # an unwritable cache only means looking again next start
        return False
    return True
