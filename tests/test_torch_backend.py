"""The torch backend (onnx2torch) against ONNX Runtime, its disk cache, the ONNX rewrites
that make the PP-OCR graphs convertible, and its error mapping. CPU unless marked ``gpu``."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="the torch backend needs torch: pip install 'ocrmill[torch]'"
)
onnx = pytest.importorskip(
    "onnx", reason="the torch backend needs onnx: pip install 'ocrmill[torch]'"
)
# Not importorskip: importing onnx2torch may fail on a broken torchvision (the backend's job).
if importlib.util.find_spec("onnx2torch") is None:
    pytest.skip(
        "the torch backend needs onnx2torch: pip install 'ocrmill[torch]'", allow_module_level=True
    )

import onnxruntime as ort  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import ocrmill.backends.torch as torch_backend  # noqa: E402
from ocrmill.backends import onnx_rewrite  # noqa: E402
from ocrmill.backends.onnx import OnnxBackend  # noqa: E402
from ocrmill.backends.torch import TorchBackend  # noqa: E402
from ocrmill.config import BackendConfig, DetOptions  # noqa: E402
from ocrmill.errors import ConfigError, ModelError, ResourceLimitError  # noqa: E402
from ocrmill.models import (  # noqa: E402
    SHIPPED_CLS,
    SHIPPED_DET,
    SHIPPED_REC,
    ctc_vocabulary,
    parse_character_list,
    shipped_model_dir,
)
from ocrmill.pipeline.classify import cls_batch  # noqa: E402
from ocrmill.pipeline.detect import prepare_det_input  # noqa: E402
from ocrmill.pipeline.recognize import ctc_greedy_decode, rec_batch  # noqa: E402

from .conftest import render_page, render_text  # noqa: E402

# onnx2torch's Slice indexes with a list (torch deprecates that spelling; same result).
pytestmark = pytest.mark.filterwarnings("ignore:Using a non-tuple sequence:UserWarning")

MODEL_FILES = {"det": SHIPPED_DET, "rec": SHIPPED_REC, "cls": SHIPPED_CLS}
# Max |torch - onnxruntime| / max |onnxruntime| seen on these inputs: det ~9e-5, rec ~1e-5,
# cls ~1e-6 (fp32 on both; the sums run in another order). Bound with some headroom.
MAX_RELATIVE_ERROR = 3e-4
LINES = ["Invoice 2024-117: total 1,284.50 EUR", "Shipped to Rue de la Paix 12, Paris"]


def _path(role: str) -> Path:
    return shipped_model_dir() / MODEL_FILES[role]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("torch-cache")


@pytest.fixture(scope="module")
def cpu_config(cache_dir: Path) -> BackendConfig:
    return BackendConfig(name="torch", device="cpu", threads=2, cache_dir=cache_dir)


@pytest.fixture(scope="module")
def torch_backends(cpu_config: BackendConfig) -> dict[str, TorchBackend]:
    """Each model converted once for the module (the cold start goes through conversion)."""
    out = {}
    for role in MODEL_FILES:
        start = time.perf_counter()
        out[role] = TorchBackend(_path(role), cpu_config)
        print(f"{role}: converted in {time.perf_counter() - start:.2f} s")
    return out


@pytest.fixture(scope="module")
def ort_backends() -> dict[str, OnnxBackend]:
    return {
        role: OnnxBackend(_path(role), BackendConfig(name="onnxruntime", threads=2))
        for role in MODEL_FILES
    }


def _line_crops() -> list[np.ndarray]:
    return [np.asarray(render_text(text, size=30)) for text in LINES]


def _inputs(role: str) -> np.ndarray:
    if role == "det":
        page = np.asarray(render_page(LINES, width=640))
        return prepare_det_input(page, DetOptions(limit_side_len=640))[0]
    if role == "rec":
        return rec_batch(_line_crops(), width=640)
    return cls_batch(_line_crops())


def _vocabulary(backend: TorchBackend | OnnxBackend, num_classes: int) -> list[str]:
    chars = parse_character_list(backend.metadata()["character"])
    return ctc_vocabulary(chars, num_classes, "rec metadata")


# -- outputs against ONNX Runtime -----------------------------------------------------------


@pytest.mark.parametrize("role", ["det", "rec", "cls"])
def test_outputs_match_onnxruntime(role, torch_backends, ort_backends):
    batch = _inputs(role)
    got = torch_backends[role].run(batch)
    want = ort_backends[role].run(batch)
    assert got.dtype == np.float32
    assert got.shape == want.shape
    rel = float(np.abs(got - want).max() / np.abs(want).max())
    print(f"{role}: max relative error vs onnxruntime {rel:.2e}")
    assert rel < MAX_RELATIVE_ERROR
    if role == "cls":
        assert np.array_equal(got.argmax(axis=1), want.argmax(axis=1))


def test_rec_reads_the_same_characters(torch_backends, ort_backends):
    batch = _inputs("rec")
    got = torch_backends["rec"].run(batch)
    want = ort_backends["rec"].run(batch)
    assert np.array_equal(got.argmax(axis=2), want.argmax(axis=2))
    vocabulary = _vocabulary(ort_backends["rec"], want.shape[2])
    texts = [text for text, _ in ctc_greedy_decode(got, vocabulary)]
    assert texts == [text for text, _ in ctc_greedy_decode(want, vocabulary)]
    assert "Invoice" in texts[0]


def test_run_top1_is_argmax_and_max_of_run(torch_backends):
    backend = torch_backends["rec"]
    batch = _inputs("rec")
    probs = backend.run(batch)
    idx, best = backend.run_top1(batch)
    assert idx.dtype == np.int64 and best.dtype == np.float32
    assert idx.shape == best.shape == probs.shape[:2]
    assert np.array_equal(idx, probs.argmax(axis=2))
    assert np.array_equal(best, probs.max(axis=2))


def test_metadata_and_providers(torch_backends, ort_backends):
    assert torch_backends["rec"].metadata() == ort_backends["rec"].metadata()
    assert "character" in torch_backends["rec"].metadata()
    assert torch_backends["det"].metadata() == {}
    assert torch_backends["det"].providers == ("torch:cpu:fp32",)


# -- the disk cache -----------------------------------------------------------------------


def _no_conversion(path):
    raise AssertionError(f"converted {path} although it is cached")


def test_cache_hit_skips_conversion(torch_backends, cpu_config, monkeypatch):
    monkeypatch.setattr(torch_backend, "convert_model", _no_conversion)
    start = time.perf_counter()
    backend = TorchBackend(_path("det"), cpu_config)
    print(f"det: loaded from the cache in {time.perf_counter() - start:.2f} s")
    batch = _inputs("det")
    assert np.array_equal(backend.run(batch), torch_backends["det"].run(batch))


def test_corrupt_cache_entry_is_rebuilt(torch_backends, cpu_config, monkeypatch):
    entry = torch_backend.cache_path(_path("cls"), cpu_config)
    assert entry.is_file()
    entry.write_bytes(entry.read_bytes()[:1000])  # truncated, as by a crash mid-write
    calls = []
    convert = torch_backend.convert_model

    def counting_convert(path):
        calls.append(path)
        return convert(path)

    monkeypatch.setattr(torch_backend, "convert_model", counting_convert)
    backend = TorchBackend(_path("cls"), cpu_config)
    assert len(calls) == 1
    batch = _inputs("cls")
    assert np.array_equal(backend.run(batch), torch_backends["cls"].run(batch))
    monkeypatch.setattr(torch_backend, "convert_model", _no_conversion)
    TorchBackend(_path("cls"), cpu_config)  # the rebuilt entry loads


# -- the ONNX rewrites keep ONNX Runtime's output bit-identical ------------------------------


def _ort_run(model, batch: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: batch})[0]


@pytest.mark.parametrize(
    ("rewrite", "role"),
    [
        ("explicit_same_pads", "det"),
        ("explicit_same_pads", "rec"),
        ("hoist_constants", "cls"),
        ("annotate_batchnorm_rank", "cls"),
    ],
)
def test_rewrite_keeps_onnxruntime_output(rewrite, role):
    model = onnx.load(str(_path(role)))
    rewritten = getattr(onnx_rewrite, rewrite)(model)
    batch = _inputs(role)
    assert np.array_equal(_ort_run(rewritten, batch), _ort_run(model, batch))


def test_explicit_same_pads_spells_out_pv6_pads():
    model = onnx_rewrite.explicit_same_pads(onnx.load(str(_path("det"))))
    padded = [n for n in model.graph.node if n.name in ("Conv.1", "Conv.2", "MaxPool.0")]
    assert len(padded) == 3
    for node in padded:
        attrs = {a.name: a for a in node.attribute}
        assert "auto_pad" not in attrs
        assert list(attrs["pads"].ints) == [0, 0, 1, 1]  # 2x2 kernel, stride 1: pad the end


def test_hoist_constants_moves_weights_to_initializers():
    model = onnx.load(str(_path("cls")))
    hoisted = onnx_rewrite.hoist_constants(model)
    assert not [n for n in hoisted.graph.node if n.op_type == "Constant"]
    assert len(hoisted.graph.initializer) == sum(n.op_type == "Constant" for n in model.graph.node)


def _conv_weights(rng: np.random.Generator):
    return numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")


def _model(nodes, inputs, initializers, *, domains=()):
    graph = helper.make_graph(
        nodes,
        "t",
        inputs,
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializers,
    )
    opsets = [helper.make_opsetid("", 13), *(helper.make_opsetid(d, 1) for d in domains)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    return model


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER"])
@pytest.mark.parametrize("size", [7, 8])
def test_explicit_same_pads_with_stride_2(auto_pad, size, rng):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, size, size + 3])
    conv = helper.make_node("Conv", ["x", "w"], ["y"], auto_pad=auto_pad, strides=[2, 2])
    model = _model([conv], [x], [_conv_weights(rng)])
    batch = rng.standard_normal((1, 3, size, size + 3)).astype(np.float32)
    rewritten = onnx_rewrite.explicit_same_pads(model)
    assert np.array_equal(_ort_run(rewritten, batch), _ort_run(model, batch))


def test_explicit_same_pads_refuses_dynamic_size_with_stride_2(rng):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])
    conv = helper.make_node("Conv", ["x", "w"], ["y"], auto_pad="SAME_UPPER", strides=[2, 2])
    with pytest.raises(ModelError, match="static input size"):
        onnx_rewrite.explicit_same_pads(_model([conv], [x], [_conv_weights(rng)]))


def test_annotate_batchnorm_rank_where_inference_gives_none(rng):
    # ONNX shape inference does not know the contrib op, so nothing after it is ranked.
    channels = [
        numpy_helper.from_array(rng.random(4).astype(np.float32) + 0.5, name)
        for name in ("scale", "bias", "mean", "var")
    ]
    nodes = [
        helper.make_node("Gelu", ["x"], ["g"], domain="com.microsoft"),
        helper.make_node("Conv", ["g", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("BatchNormalization", ["r", "scale", "bias", "mean", "var"], ["y"]),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])
    model = _model(nodes, [x], [_conv_weights(rng), *channels], domains=["com.microsoft"])
    rewritten = onnx_rewrite.annotate_batchnorm_rank(model)
    (info,) = [v for v in rewritten.graph.value_info if v.name == "r"]
    dims = info.type.tensor_type.shape.dim
    assert len(dims) == 4 and dims[1].dim_value == 4
    batch = rng.standard_normal((2, 3, 8, 9)).astype(np.float32)
    assert np.array_equal(_ort_run(rewritten, batch), _ort_run(model, batch))


# -- errors ------------------------------------------------------------------------------


class _OutOfMemoryOverTwo(torch.nn.Module):
    """Wraps a module; raises CUDA's OOM error for batches of more than two."""

    def __init__(self, inner, error):
        super().__init__()
        self.inner = inner
        self.error = error

    def forward(self, x):
        if x.shape[0] > 2:
            raise self.error
        return self.inner(x)


@pytest.mark.parametrize(
    "error",
    [
        torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        RuntimeError("CUDA error: out of memory"),
    ],
    ids=["OutOfMemoryError", "RuntimeError"],
)
def test_out_of_memory_becomes_resource_limit_error(error, torch_backends, monkeypatch):
    backend = torch_backends["rec"]
    monkeypatch.setattr(backend, "_module", _OutOfMemoryOverTwo(backend._module, error))
    big = np.zeros((3, 3, 48, 320), dtype=np.float32)
    with pytest.raises(ResourceLimitError, match=r"CUDA out of memory on a batch of shape \(3, 3"):
        backend.run(big)
    with pytest.raises(ResourceLimitError):
        backend.run_top1(big)
    assert backend.run(big[:2]).shape[0] == 2  # still usable
    assert backend.run_top1(big[:1])[0].shape[0] == 1


def test_other_runtime_errors_pass_through(torch_backends, monkeypatch):
    backend = torch_backends["cls"]
    monkeypatch.setattr(
        backend, "_module", _OutOfMemoryOverTwo(backend._module, RuntimeError("shape mismatch"))
    )
    with pytest.raises(RuntimeError, match="shape mismatch"):
        backend.run(np.zeros((3, 3, 48, 192), dtype=np.float32))


def test_unconvertible_op_names_file_and_op(tmp_path, cpu_config, rng):
    nodes = [
        helper.make_node("Gelu", ["x"], ["g"], domain="com.microsoft"),
        helper.make_node("Conv", ["g", "w"], ["y"]),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])
    path = tmp_path / "contrib.onnx"
    onnx.save(_model(nodes, [x], [_conv_weights(rng)], domains=["com.microsoft"]), str(path))
    with pytest.raises(ModelError, match=r"contrib\.onnx: .*com\.microsoft::Gelu"):
        TorchBackend(path, cpu_config)


def test_failing_converter_names_file_and_node(tmp_path, cpu_config, rng):
    # A Conv whose weights are computed, not stored: onnx2torch's Conv converter gives up.
    nodes = [
        helper.make_node("Identity", ["w"], ["w2"]),
        helper.make_node("Conv", ["x", "w2"], ["y"], name="conv_with_computed_weights"),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])
    path = tmp_path / "computed.onnx"
    onnx.save(_model(nodes, [x], [_conv_weights(rng)]), str(path))
    with pytest.raises(
        ModelError, match=r"computed\.onnx: .*Conv node 'conv_with_computed_weights'"
    ):
        TorchBackend(path, cpu_config)


def test_unreadable_model_is_a_model_error(tmp_path, cpu_config):
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"not a protobuf at all")
    with pytest.raises(ModelError, match=r"broken\.onnx"):
        TorchBackend(path, cpu_config)


@pytest.mark.parametrize("module", ["torch", "onnx", "onnx2torch"])
def test_missing_package_names_the_extra(module, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    with pytest.raises(ConfigError, match=r"pip install 'ocrmill\[torch\]'"):
        torch_backend.convert_model(_path("cls"))


def test_unknown_device_is_a_config_error(cpu_config):
    with pytest.raises(ConfigError, match="'cpu' or 'cuda"):
        TorchBackend(_path("cls"), BackendConfig(name="torch", device="tpu"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a CPU-only torch")
def test_cuda_without_a_gpu_is_a_config_error(cpu_config):
    with pytest.raises(ConfigError, match="sees no CUDA GPU"):
        TorchBackend(_path("cls"), BackendConfig(name="torch", device="cuda"))


_IMPORT_CHECK = textwrap.dedent(
    """
    import importlib.abc, sys
    if {block!r}:
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "torchvision" or name.startswith("torchvision."):
                    raise ModuleNotFoundError(f"No module named {{name!r}}")
        sys.meta_path.insert(0, Block())
    from ocrmill.backends.torch import _import_onnx2torch
    from ocrmill.errors import ModelError
    onnx2torch = _import_onnx2torch()
    assert callable(onnx2torch.convert)
    from onnx2torch.node_converters import roialign
    try:
        import torchvision
        print("torchvision usable", torchvision.__version__)
    except (ImportError, RuntimeError) as exc:
        print("torchvision not usable:", type(exc).__name__)
        try:
            roialign.roi_align()
        except ModelError as exc:
            assert "torchvision" in str(exc), exc
        else:
            raise AssertionError("the placeholder's roi_align did not raise")
    print("ok")
    """
)


@pytest.mark.parametrize(
    "block",
    [
        True,
        pytest.param(
            False,
            marks=pytest.mark.skipif(
                importlib.util.find_spec("torchvision") is None, reason="torchvision not installed"
            ),
        ),
    ],
    ids=["torchvision-absent", "torchvision-installed"],
)
def test_onnx2torch_imports_whatever_torchvision_does(block):
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_CHECK.format(block=block)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("ok")


# -- CUDA ----------------------------------------------------------------------------------

needs_cuda = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA GPU visible to torch"
)


@pytest.mark.gpu
@needs_cuda
def test_cuda_fp16_reads_like_cpu_fp32(torch_backends, cache_dir):
    gpu = TorchBackend(
        _path("rec"), BackendConfig(name="torch", device="cuda", fp16=True, cache_dir=cache_dir)
    )
    assert gpu.providers == ("torch:cuda:0:fp16",)
    batch = _inputs("rec")
    got = gpu.run(batch)
    want = torch_backends["rec"].run(batch)
    assert got.dtype == np.float32
    vocabulary = _vocabulary(gpu, want.shape[2])
    assert [t for t, _ in ctc_greedy_decode(got, vocabulary)] == [
        t for t, _ in ctc_greedy_decode(want, vocabulary)
    ]


@pytest.mark.gpu
@needs_cuda
def test_cuda_run_top1(torch_backends, cache_dir):
    gpu = TorchBackend(
        _path("rec"), BackendConfig(name="torch", device="cuda:0", fp16=False, cache_dir=cache_dir)
    )
    batch = _inputs("rec")
    probs = gpu.run(batch)
    idx, best = gpu.run_top1(batch)
    assert idx.dtype == np.int64 and best.dtype == np.float32
    assert np.array_equal(idx, probs.argmax(axis=2))
    assert np.allclose(best, probs.max(axis=2))
    assert np.array_equal(idx, torch_backends["rec"].run(batch).argmax(axis=2))


def test_run_all_gives_every_output_in_order(torch_backends, cpu_config, tmp_path, rng):
    batch = _inputs("rec")
    (only,) = torch_backends["rec"].run_all(batch)  # one output: the same as run
    assert np.array_equal(only, torch_backends["rec"].run(batch))
    # A model of two outputs (y = relu(x), z = -x): both come back, as float32, in order.
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Neg", ["x"], ["z"])],
        "two",
        [x],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
            helper.make_tensor_value_info("z", TensorProto.FLOAT, None),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path / "two.onnx"
    onnx.save(model, str(path))
    backend = TorchBackend(path, cpu_config)
    data = rng.standard_normal((1, 3, 4, 4)).astype(np.float32)
    y, z = backend.run_all(data)
    assert y.dtype == z.dtype == np.float32
    assert np.array_equal(y, np.maximum(data, 0)) and np.array_equal(z, -data)
    assert np.array_equal(backend.run(data), y)
