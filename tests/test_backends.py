"""Backend choice per device and model role, and ONNX Runtime provider options."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ocrmill.backends import factory
from ocrmill.backends.onnx import execution_providers
from ocrmill.backends.split import is_out_of_memory
from ocrmill.config import BackendConfig
from ocrmill.errors import ConfigError

ALL = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


def _installed(monkeypatch, *modules: str, ort_cuda: bool = False) -> None:
    monkeypatch.setattr(factory, "_installed", lambda name: name in modules)
    monkeypatch.setattr(factory, "_onnxruntime_has_cuda", lambda: ort_cuda)


def test_auto_on_cpu_is_left_to_measurement(monkeypatch):
    _installed(monkeypatch, "openvino", "onnxruntime")
    assert factory.resolve_backend_name(BackendConfig(), "det") == "auto"


def test_auto_on_cuda_prefers_onnxruntime_gpu_then_torch(monkeypatch):
    cfg = BackendConfig(device="cuda:0")
    _installed(monkeypatch, "torch", "onnx2torch", ort_cuda=True)
    assert factory.resolve_backend_name(cfg, "rec") == "onnxruntime"
    _installed(monkeypatch, "torch", "onnx2torch", ort_cuda=False)
    assert factory.resolve_backend_name(cfg, "rec") == "torch"
    _installed(monkeypatch, "torch", ort_cuda=False)
    with pytest.raises(ConfigError, match=r"ocrmill\[torch\]"):
        factory.resolve_backend_name(cfg, "rec")


def test_cuda_backend_name_never_raises(monkeypatch):
    _installed(monkeypatch)
    assert factory.cuda_backend_name(BackendConfig()) is None
    _installed(monkeypatch, "torch", "onnx2torch")
    assert factory.cuda_backend_name(BackendConfig()) == "torch"
    assert factory.cuda_backend_name(BackendConfig(name="openvino")) is None


def test_explicit_backend_name_wins(monkeypatch):
    _installed(monkeypatch, "openvino")
    assert factory.resolve_backend_name(BackendConfig(name="onnxruntime"), "det") == "onnxruntime"


def test_cpu_providers_are_cpu_only():
    assert execution_providers(BackendConfig(), ALL) == ["CPUExecutionProvider"]


def test_cuda_providers_carry_device_and_memory_settings():
    cfg = BackendConfig(
        device="cuda:1",
        gpu_mem_limit=3 * 1024**3,
        arena_extend_strategy="kNextPowerOfTwo",
        cudnn_conv_algo_search="EXHAUSTIVE",
    )
    providers = execution_providers(cfg, ALL)
    assert providers[-1] == "CPUExecutionProvider"
    name, options = providers[0]
    assert name == "CUDAExecutionProvider"
    assert options["device_id"] == 1
    assert options["gpu_mem_limit"] == 3 * 1024**3
    assert options["arena_extend_strategy"] == "kNextPowerOfTwo"
    assert options["cudnn_conv_algo_search"] == "EXHAUSTIVE"


def test_tensorrt_comes_first_only_when_asked_and_present():
    cfg = BackendConfig(device="cuda", tensorrt=True)
    assert execution_providers(cfg, ALL)[0][0] == "TensorrtExecutionProvider"
    assert execution_providers(cfg, ALL[1:])[0][0] == "CUDAExecutionProvider"
    assert execution_providers(BackendConfig(device="cuda"), ALL)[0][0] == "CUDAExecutionProvider"


def test_cuda_device_without_cuda_provider_is_a_config_error():
    with pytest.raises(ConfigError, match="onnxruntime-gpu"):
        execution_providers(BackendConfig(device="cuda"), ["CPUExecutionProvider"])


def test_out_of_memory_messages_are_recognized():
    assert is_out_of_memory(RuntimeError("CUDA error: out of memory"))
    assert is_out_of_memory(RuntimeError("Failed to allocate memory for requested buffer"))
    assert not is_out_of_memory(RuntimeError("Invalid input shape"))


def test_openvino_matches_onnxruntime_on_the_detector():
    pytest.importorskip("openvino")
    import numpy as np

    from ocrmill.backends.onnx import OnnxBackend
    from ocrmill.backends.openvino import OpenVinoBackend
    from ocrmill.models import shipped_model_dir

    det = shipped_model_dir() / "PP-OCRv6_det_small.onnx"
    x = np.random.default_rng(0).random((1, 3, 320, 480), dtype=np.float32)
    ref = OnnxBackend(det, BackendConfig(name="onnxruntime")).run(x)
    got = OpenVinoBackend(det, BackendConfig(name="openvino")).run(x)
    assert got.shape == ref.shape
    assert float(np.max(np.abs(got - ref))) < 1e-4


def _printed_by_fresh_interpreter(code: str, *args: str) -> list[str]:
    """The words ``code`` prints, run with ``args`` in a new Python process (which it must
    leave without an error)."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_openvino_hands_back_its_buffers_and_reads_the_same_after(tmp_path):
    """The detector's buffers for a page-sized input go back to the system on
    ``release_memory``; the next call allocates them again and gives the same output. In a
    fresh interpreter: its RSS is this test's alone."""
    pytest.importorskip("openvino")
    code = (
        "import sys\n"
        "import numpy as np\n"
        "from ocrmill.backends.openvino import OpenVinoBackend\n"
        "from ocrmill.config import BackendConfig\n"
        "from ocrmill.models import shipped_model_dir\n"
        "from ocrmill.runtime.heap import trimmer\n"
        "from ocrmill.runtime.worker import current_rss\n"
        "config = BackendConfig(name='openvino', cache_dir=sys.argv[1], threads=2)\n"
        "det = OpenVinoBackend(shipped_model_dir() / 'PP-OCRv6_det_small.onnx', config)\n"
        "x = np.random.default_rng(0).random((1, 3, 960, 736), dtype=np.float32)\n"
        "first = det.run(x)\n"
        "trim = trimmer()\n"
        "trim()\n"
        "held = current_rss()\n"
        "det.release_memory()\n"
        "trim()\n"
        "rested = current_rss()\n"
        "again = det.run(x)\n"
        "print((held - rested) >> 20, float(np.max(np.abs(again - first))))\n"
    )
    handed_back_mib, difference = _printed_by_fresh_interpreter(code, str(tmp_path))
    assert int(handed_back_mib) > 100  # 169 MiB on OpenVINO 2026.4
    assert float(difference) == 0.0


def test_openvino_loads_and_runs_models_with_its_conversion_api_left_out(tmp_path):
    """A worker imports OpenVINO without its model-conversion API (a faster start); models
    still compile from their files and run, and asking after the import is too late."""
    pytest.importorskip("openvino")
    code = (
        "import sys\n"
        "import numpy as np\n"
        "from ocrmill.backends.openvino import CONVERSION_API, OpenVinoBackend, "
        "leave_out_conversion_api\n"
        "from ocrmill.config import BackendConfig\n"
        "from ocrmill.models import shipped_model_dir\n"
        "first = leave_out_conversion_api()\n"
        "config = BackendConfig(name='openvino', cache_dir=sys.argv[1])\n"
        "cls = OpenVinoBackend(shipped_model_dir() / 'ch_ppocr_mobile_v2.0_cls_mobile.onnx', "
        "config)\n"
        "out = cls.run(np.zeros((2, 3, 48, 192), np.float32))\n"
        "import openvino\n"
        "print(first, out.shape, sys.modules[CONVERSION_API] is None, "
        "hasattr(openvino, 'convert_model'), leave_out_conversion_api())\n"
    )
    printed = _printed_by_fresh_interpreter(code, str(tmp_path))
    assert printed == ["True", "(2,", "2)", "True", "False", "False"]


def test_a_worker_imports_openvino_without_its_conversion_api():
    from ocrmill.backends.openvino import CONVERSION_API
    from tests.fault.engines import read_in_a_worker

    result = read_in_a_worker(f"module:{CONVERSION_API}")
    assert result.ok, result
    assert result.text == "left out"


def _allows_spinning(backend) -> bool:
    options = backend._session.get_session_options()
    try:
        return options.get_session_config_entry("session.intra_op.allow_spinning") != "0"
    except Exception:  # not set: ONNX Runtime's threads spin
        return True


@pytest.mark.parametrize("role", ["rec", "det", "cls"])
def test_only_the_recognizer_leaves_onnxruntime_threads_spinning(role):
    """A model run between other models' runs lets its threads sleep when it is done."""
    from ocrmill.models import shipped_model_dir

    names = {"rec": "PP-OCRv6_rec_small.onnx", "det": "PP-OCRv6_det_small.onnx"}
    path = shipped_model_dir() / names.get(role, "ch_ppocr_mobile_v2.0_cls_mobile.onnx")
    backend = factory.create_backend(path, BackendConfig(name="onnxruntime"), role)
    assert _allows_spinning(backend) is (role == "rec")


def test_openvino_reads_model_metadata():
    pytest.importorskip("openvino")
    from ocrmill.backends.openvino import OpenVinoBackend
    from ocrmill.models import shipped_model_dir

    rec = OpenVinoBackend(shipped_model_dir() / "PP-OCRv6_rec_small.onnx", BackendConfig())
    assert len(rec.metadata()["character"].splitlines()) > 18000


def test_openvino_imports_a_cached_model_without_reading_its_file(monkeypatch, tmp_path):
    """With a compiled blob in the cache the ONNX file is not parsed; metadata reads it once."""
    pytest.importorskip("openvino")
    import openvino as ov

    from ocrmill.backends.openvino import OpenVinoBackend
    from ocrmill.models import shipped_model_dir

    rec = shipped_model_dir() / "PP-OCRv6_rec_small.onnx"
    config = BackendConfig(name="openvino", cache_dir=tmp_path)
    OpenVinoBackend(rec, config)  # compiles and fills the cache
    reads: list[str] = []
    real_read = ov.Core.read_model

    def counting_read(core, model, *args, **kwargs):
        reads.append(str(model))
        return real_read(core, model, *args, **kwargs)

    monkeypatch.setattr(ov.Core, "read_model", counting_read)
    backend = OpenVinoBackend(rec, config)
    assert reads == []
    assert len(backend.metadata()["character"].splitlines()) > 18000
    assert len(backend.metadata()["character"].splitlines()) > 18000
    assert reads == [str(rec)]


def test_openvino_compiles_again_a_model_file_replaced_in_place(tmp_path):
    """The cache finds blobs by path: a different model at the same path must not load the
    old blob."""
    pytest.importorskip("openvino")
    import shutil

    import numpy as np

    from ocrmill.backends.openvino import OpenVinoBackend
    from ocrmill.models import shipped_model_dir

    config = BackendConfig(name="openvino", cache_dir=tmp_path / "cache")
    path = tmp_path / "model.onnx"
    shutil.copy(shipped_model_dir() / "ch_ppocr_mobile_v2.0_cls_mobile.onnx", path)
    cls_out = OpenVinoBackend(path, config).run(np.zeros((1, 3, 48, 192), np.float32))
    assert cls_out.shape == (1, 2)
    shutil.copy(shipped_model_dir() / "PP-OCRv6_det_small.onnx", path)
    det_out = OpenVinoBackend(path, config).run(np.zeros((1, 3, 64, 96), np.float32))
    assert det_out.shape == (1, 1, 64, 96)


def test_openvino_refuses_a_gpu_device():
    pytest.importorskip("openvino")
    from ocrmill.backends.openvino import OpenVinoBackend
    from ocrmill.errors import ModelError
    from ocrmill.models import shipped_model_dir

    with pytest.raises(ModelError, match="CPU"):
        OpenVinoBackend(
            shipped_model_dir() / "PP-OCRv6_det_small.onnx", BackendConfig(device="cuda")
        )


def test_auto_falls_back_to_onnxruntime_when_openvino_cannot_load(monkeypatch, caplog, tmp_path):
    pytest.importorskip("openvino")
    from ocrmill.backends import openvino as ov_module
    from ocrmill.models import shipped_model_dir

    def broken(*args, **kwargs):
        raise RuntimeError("plugin failed (fake)")

    monkeypatch.setattr(ov_module, "OpenVinoBackend", broken)
    det = shipped_model_dir() / "PP-OCRv6_det_small.onnx"
    backend = factory.create_backend(det, BackendConfig(cache_dir=tmp_path), "det")
    assert backend.providers == ("CPUExecutionProvider",)
    assert "openvino cannot run" in caplog.text and "fake" in caplog.text
    with pytest.raises(RuntimeError, match="fake"):  # asked for by name: no silent switch
        factory.create_backend(det, BackendConfig(name="openvino"), "det")


def test_a_corrupt_model_is_a_model_error_naming_it(tmp_path):
    from ocrmill.errors import ModelError

    bad = tmp_path / "det.onnx"
    bad.write_bytes(b"\x08\x01garbage, not a protobuf model")
    with pytest.raises(ModelError, match=r"det\.onnx"):
        factory.create_backend(bad, BackendConfig(), "det")


# -- the protocol: every backend answers run, run_all and run_top1 ----------------------------


def _backend_classes() -> list[type]:
    from ocrmill.backends.onnx import OnnxBackend
    from ocrmill.backends.openvino import OpenVinoBackend
    from ocrmill.backends.torch import TorchBackend

    return [OnnxBackend, OpenVinoBackend, TorchBackend]


@pytest.mark.parametrize("cls", _backend_classes(), ids=lambda cls: cls.__name__)
def test_every_backend_implements_the_whole_protocol(cls):
    """The engine calls ``run_all`` and ``run_top1`` on any backend, never ``getattr``."""
    from ocrmill.backends.base import InferenceBackend

    assert InferenceBackend in cls.__mro__
    for method in ("run", "run_all", "run_top1", "metadata"):
        assert callable(getattr(cls, method)), method
    assert cls.run_all is not InferenceBackend.run_all  # no default: each backend's own


@pytest.mark.parametrize("name", ["onnxruntime", "openvino"])
def test_run_top1_is_the_best_class_of_run(name):
    """The protocol's default ``run_top1``: exactly ``top1(run(batch))``, as the engine read
    before it called ``run_top1`` directly."""
    import numpy as np

    from ocrmill.backends.base import top1
    from ocrmill.models import shipped_model_dir

    if name == "openvino":
        pytest.importorskip("openvino")
    rec = shipped_model_dir() / "PP-OCRv6_rec_small.onnx"
    backend = factory._load(name, rec, BackendConfig(name=name, threads=1))
    batch = np.random.default_rng(0).random((2, 3, 48, 160), dtype=np.float32)
    idx, best = backend.run_top1(batch)
    ref_idx, ref_best = top1(backend.run(batch))
    assert np.array_equal(idx, ref_idx) and np.array_equal(best, ref_best)
    assert idx.shape == best.shape == backend.run(batch).shape[:2]
    (only,) = backend.run_all(batch)  # the shipped recognizer has one output
    assert np.array_equal(only, backend.run(batch))
