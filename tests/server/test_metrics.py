"""GPU memory in ``/metrics``: NVML's own failures leave it out quietly, bugs surface."""

from __future__ import annotations

import logging
import sys
import types
from typing import Any

import pytest

pytest.importorskip("prometheus_client")

from ocrmill.server.metrics import gpu_memory_by_device


class NVMLError(Exception):
    pass


def fake_nvml(*, init: Exception | None = None, processes: Any = None) -> types.ModuleType:
    """A ``pynvml`` with two GPUs; ``processes(i)`` gives (or raises for) GPU ``i``."""
    nvml = types.ModuleType("pynvml")
    calls: list[str] = []

    def nvmlInit() -> None:
        calls.append("init")
        if init is not None:
            raise init

    def nvmlShutdown() -> None:
        calls.append("shutdown")

    def running(handle: int) -> list[Any]:
        return processes(handle)

    nvml.NVMLError = NVMLError  # type: ignore[attr-defined]
    nvml.nvmlInit = nvmlInit  # type: ignore[attr-defined]
    nvml.nvmlShutdown = nvmlShutdown  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetCount = lambda: 2  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetHandleByIndex = lambda i: i  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetComputeRunningProcesses = running  # type: ignore[attr-defined]
    nvml.calls = calls  # type: ignore[attr-defined]
    return nvml


def proc(pid: int, used: int | None) -> types.SimpleNamespace:
    return types.SimpleNamespace(pid=pid, usedGpuMemory=used)


WORKERS = {101: "cuda:0", 102: "cuda:0", 201: "cuda:1"}


def test_memory_of_the_workers_by_device(monkeypatch: pytest.MonkeyPatch) -> None:
    by_gpu = {0: [proc(101, 300), proc(102, 200), proc(999, 5000)], 1: [proc(201, None)]}
    nvml = fake_nvml(processes=by_gpu.__getitem__)
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    assert gpu_memory_by_device(WORKERS) == {"cuda:0": 500}  # other processes do not count
    assert nvml.calls == ["init", "shutdown"]  # type: ignore[attr-defined]


def test_no_driver_or_no_pynvml_is_unknown_memory_logged_at_debug(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="ocrmill.server.metrics")
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(init=NVMLError("Driver Not Loaded")))
    assert gpu_memory_by_device(WORKERS) == {}
    monkeypatch.setitem(sys.modules, "pynvml", None)  # `import pynvml` raises ImportError
    assert gpu_memory_by_device(WORKERS) == {}
    messages = [r.getMessage() for r in caplog.records]
    assert any("Driver Not Loaded" in m for m in messages)
    assert any("pynvml" in m and "not installed" in m for m in messages)
    assert all(r.levelno == logging.DEBUG for r in caplog.records)


def test_a_gpu_that_does_not_answer_is_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    def processes(i: int) -> list[Any]:
        if i == 1:
            raise NVMLError("GPU is lost")
        return [proc(101, 300)]

    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(processes=processes))
    assert gpu_memory_by_device(WORKERS) == {"cuda:0": 300}


def test_a_bug_is_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    def processes(i: int) -> list[Any]:
        return [types.SimpleNamespace(pid="not a pid", usedGpuMemory=1)]

    nvml = fake_nvml(processes=processes)
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    with pytest.raises(ValueError):
        gpu_memory_by_device(WORKERS)
    assert nvml.calls == ["init", "shutdown"]  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(init=TypeError("a bug")))
    with pytest.raises(TypeError, match="a bug"):
        gpu_memory_by_device(WORKERS)
