"""int8 copies of the models: matched to their shipped ranges, built once, offered only
where the CPU multiplies int8, and reading a clean page as the f32 model does."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ocrmill.backends import int8
from ocrmill.config import BackendConfig, Config, ModelPaths
from ocrmill.errors import ModelError
from ocrmill.models import resolve_models

onnx = pytest.importorskip("onnx")
pytestmark = pytest.mark.skipif(not int8.supported(), reason="onnxruntime's quantizer too old")


@pytest.fixture(scope="module")
def files():
    return resolve_models(ModelPaths())


@pytest.fixture(scope="module")
def int8_cache(tmp_path_factory):
    """One cache for the module: the recognizer's int8 copy is built once."""
    return tmp_path_factory.mktemp("int8-cache")


def test_ranges_ship_for_the_recognizer_and_match_by_its_weights(files):
    ranges = int8.load_ranges(int8.weights_fingerprint(onnx.load(str(files.rec))))
    assert ranges, f"no ranges for {files.rec.name}"
    assert all(lo <= hi for lo, hi in ranges.values())
    for other in (files.det, files.cls):
        assert int8.load_ranges(int8.weights_fingerprint(onnx.load(str(other)))) is None


def test_the_restricted_recognizer_takes_the_same_ranges(files, tmp_path):
    from ocrmill.backends.restricted import restrict_recognizer

    restricted = restrict_recognizer(files, "auto", tmp_path)
    assert restricted.rec != files.rec
    assert int8.weights_fingerprint(onnx.load(str(restricted.rec))) == int8.weights_fingerprint(
        onnx.load(str(files.rec))
    )


def test_the_int8_copy_quantizes_convolutions_and_is_built_once(files, int8_cache):
    path = int8.quantized_model(files.rec, int8_cache)
    model = onnx.load(str(path))
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("QuantizeLinear") > 50 and ops.count("DequantizeLinear") > 50
    # Weights are stored as int8, per output channel.
    weights = {t.name: t for t in model.graph.initializer}
    quantized = [
        weights[n.input[0]]
        for n in model.graph.node
        if n.op_type == "DequantizeLinear" and n.input[0] in weights
    ]
    assert any(t.data_type == onnx.TensorProto.INT8 and len(t.dims) == 4 for t in quantized)
    # The character list the engine decodes with is still there.
    assert "character" in {p.key for p in model.metadata_props}
    mtime = path.stat().st_mtime_ns
    assert int8.quantized_model(files.rec, int8_cache) == path
    assert path.stat().st_mtime_ns == mtime


def test_a_model_without_ranges_has_no_copy_and_is_not_parsed_again(files, tmp_path, monkeypatch):
    with pytest.raises(ModelError, match=files.cls.name):
        int8.quantized_model(files.cls, tmp_path)
    assert not int8.has_copy(files.cls, tmp_path)

    def parse(*args, **kwargs):
        raise AssertionError("parsed again")

    monkeypatch.setattr(onnx, "load", parse)
    assert not int8.has_copy(files.cls, tmp_path)


def test_the_copy_keeps_the_measured_nodes_at_f32(files, int8_cache):
    model = onnx.load(str(int8.quantized_model(files.rec, int8_cache)))
    kept = int8.kept_f32(int8.weights_fingerprint(onnx.load(str(files.rec))))
    assert kept
    quantized_inputs = {n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    for node in model.graph.node:
        if node.op_type == "Conv":
            assert (node.input[0] in quantized_inputs) == (node.name not in kept), node.name
        if node.op_type == "MatMul":  # matrix products stay f32
            assert not set(node.input) & quantized_inputs


def test_a_convolution_output_is_left_f32_for_the_next_operation(files, int8_cache):
    """Only a convolution's input is quantized: a quantized output would cost OpenVINO a
    quantize step and a dequantize before whatever comes next (not a fused int8 operation)."""
    model = onnx.load(str(int8.quantized_model(files.rec, int8_cache)))
    quantized = {n.input[0] for n in model.graph.node if n.op_type == "QuantizeLinear"}
    convolutions = [n for n in model.graph.node if n.op_type == "Conv"]
    assert convolutions
    for node in convolutions:
        assert node.output[0] not in quantized, node.name


@pytest.mark.parametrize("flags", [{"avx2", "avx512f", "avx512_vnni"}, {"avx2", "avx512f"}])
def test_int8_is_a_candidate_only_where_the_cpu_multiplies_int8(
    files, int8_cache, monkeypatch, flags
):
    pytest.importorskip("openvino")
    from ocrmill.backends.factory import _load, cpu_candidates

    monkeypatch.setattr("ocrmill.backends.choice.cpu_flags", lambda: frozenset(flags))
    config = BackendConfig(cache_dir=int8_cache, threads=1)
    native = "avx512_vnni" in flags
    assert ("openvino-int8" in cpu_candidates(config, "rec", files.rec)) == native
    for role, path in (("det", files.det), ("cls", files.cls)):  # no ranges ship
        assert "openvino-int8" not in cpu_candidates(config, role, path)
    assert "openvino-int8" not in cpu_candidates(config, "rec")  # model unknown
    for precision in ("f32", "bf16", "int8"):  # a fixed precision: nothing to time
        fixed = dataclasses.replace(config, openvino_precision=precision)
        assert "openvino-int8" not in cpu_candidates(fixed, "rec", files.rec)
    assert _load("openvino-int8", files.rec, config).providers == ("OpenVINO:CPU:int8",)
    with pytest.raises(ModelError):
        _load("openvino-int8", files.cls, config)


PAGE = [
    "Invoice 2024-117 for 3 boxes of paper",
    "Total due: 48.90 EUR, paid by card",
    "The quick brown fox jumps over the lazy dog",
]


def test_int8_reads_a_page_as_f32_does(int8_cache):
    """The engine with the recognizer at int8 reads a rendered page as it does at f32."""
    pytest.importorskip("openvino")
    from ocrmill.engine import Engine
    from tests.conftest import render_page

    page = np.asarray(render_page(PAGE, size=24, width=24 * 30))
    texts = {}
    for precision in ("f32", "int8"):
        backend = BackendConfig(
            name="openvino", openvino_precision=precision, cache_dir=int8_cache, threads=1
        )
        engine = Engine(Config(backend=backend))
        if precision == "int8":
            assert engine.providers["rec"] == ("OpenVINO:CPU:int8",)
            assert engine.providers["det"] == ("OpenVINO:CPU",)  # no ranges: f32
        texts[precision] = engine.read(page).text
    assert texts["f32"].split("\n") == PAGE
    assert texts["int8"] == texts["f32"]
