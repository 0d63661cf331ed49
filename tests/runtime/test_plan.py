"""Worker planning on fake device inventories, and CPU probing."""

from __future__ import annotations

import pytest

from ocrmill.errors import ConfigError
from ocrmill.runtime.devices import GpuInfo, Inventory, usable_cpus
from ocrmill.runtime.plan import (
    GIB,
    FootprintCache,
    WorkerPlan,
    WorkerSlot,
    parse_device,
    plan_workers,
)


def inv(cpus=8, mem_gib=32, gpus=(), note="") -> Inventory:
    return Inventory(
        cpus=cpus, memory_available_bytes=int(mem_gib * GIB), gpus=tuple(gpus), gpu_note=note
    )


def gpu(index, free_gib, total_gib=24, name="Test GPU") -> GpuInfo:
    return GpuInfo(
        index=index, name=name, total_bytes=int(total_gib * GIB), free_bytes=int(free_gib * GIB)
    )


def test_no_gpu_means_cpu_workers_with_a_reason():
    """A machine without a GPU is normal: a reason, no warning, and no driver jargon."""
    plan = plan_workers(inv(cpus=8, note="NVML Shared Library Not Found"))
    assert [s.device for s in plan.slots] == ["cpu"] * 2
    assert all(s.threads == 4 for s in plan.slots)
    assert "no GPU found; reading on the CPU" in plan.reasons
    assert plan.warnings == ()
    assert "NVML" not in plan.describe() + plan.summary()
    assert plan.summary() == "2 workers on the CPU (4 threads each)"


def test_a_gpu_asked_for_and_not_found_is_a_warning():
    plan = plan_workers(inv(cpus=2, note="NVML Shared Library Not Found"), device="cuda")
    assert plan.device_kind == "cpu"
    assert plan.warnings == ("--device cuda: no GPU found; using CPU (ocrmill doctor says why)",)


def test_auto_cpu_plan_gives_threads_before_workers():
    """Small machines get one multi-threaded worker: each worker holds its own models and
    working memory, and threads read almost as fast."""
    for cpus, workers, threads in ((1, 1, 1), (2, 1, 2), (3, 1, 3), (4, 1, 4), (16, 4, 4)):
        plan = plan_workers(inv(cpus=cpus), device="cpu")
        assert [(s.device, s.threads) for s in plan.slots] == [("cpu", threads)] * workers


def test_cpu_threads_times_workers_never_exceed_cores():
    for cpus in (1, 2, 3, 8, 16):
        for workers in (1, 2, 3, 5):
            plan = plan_workers(inv(cpus=cpus), device="cpu", workers=workers)
            assert len(plan.slots) == workers
            threads = plan.slots[0].threads
            assert threads >= 1
            assert workers * threads <= max(cpus, workers)


def test_auto_cpu_workers_limited_by_memory():
    plan = plan_workers(inv(cpus=16, mem_gib=3), device="cpu")
    assert len(plan.slots) == 2
    assert plan.slots[0].threads == 8
    assert any("GiB available" in r for r in plan.reasons)


def test_gpu_without_cuda_backend_falls_back_to_cpu():
    plan = plan_workers(inv(gpus=[gpu(0, 20)]), device="auto", gpu_backend=None)
    assert plan.device_kind == "cpu"
    assert any("no CUDA-capable backend" in r for r in plan.reasons)


def test_one_small_gpu_fits_few_instances():
    plan = plan_workers(inv(gpus=[gpu(0, 5.5)]), gpu_backend="torch", footprint_bytes=2 * GIB)
    # (5.5 - 1 reserve) / 2 = 2 instances
    assert [s.device for s in plan.slots] == ["cuda:0", "cuda:0"]
    assert plan.device_kind == "cuda"


def test_two_gpus_with_different_free_memory():
    gpus = [gpu(0, 3.5), gpu(1, 9.5)]
    plan = plan_workers(inv(gpus=gpus), gpu_backend="torch", footprint_bytes=2 * GIB)
    devices = [s.device for s in plan.slots]
    assert devices.count("cuda:0") == 1 and devices.count("cuda:1") == 4
    # workers=N spreads round-robin and is capped by memory
    plan3 = plan_workers(inv(gpus=gpus), workers=3, gpu_backend="torch", footprint_bytes=2 * GIB)
    assert sorted(s.device for s in plan3.slots) == ["cuda:0", "cuda:1", "cuda:1"]
    plan9 = plan_workers(inv(gpus=gpus), workers=9, gpu_backend="torch", footprint_bytes=2 * GIB)
    assert len(plan9.slots) == 5 and any("allows 5" in r for r in plan9.reasons)


def test_not_enough_gpu_memory_falls_back_to_cpu():
    plan = plan_workers(
        inv(cpus=2, gpus=[gpu(0, 1.5)]), gpu_backend="torch", footprint_bytes=2 * GIB
    )
    assert plan.device_kind == "cpu"
    assert any("not enough free GPU memory" in r for r in plan.reasons)


def test_named_gpu_index_and_missing_index():
    gpus = [gpu(0, 20), gpu(1, 20)]
    plan = plan_workers(inv(gpus=gpus), device="cuda:1", workers=2, gpu_backend="torch")
    assert {s.device for s in plan.slots} == {"cuda:1"}
    plan = plan_workers(inv(gpus=gpus), device="cuda:7", gpu_backend="torch")
    assert plan.device_kind == "cpu" and any("cuda:7: no such GPU" in r for r in plan.reasons)
    assert plan.warnings


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "cpu:1", ""])
def test_bad_device_strings(bad):
    with pytest.raises(ConfigError):
        parse_device(bad)


def test_bad_worker_counts():
    with pytest.raises(ConfigError):
        plan_workers(inv(), workers=0)
    with pytest.raises(ConfigError):
        plan_workers(inv(), workers="many")


def test_cgroup_quota_limits_cpus(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert usable_cpus(tmp_path) == 1
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert usable_cpus(tmp_path) >= 1


def test_footprint_cache_round_trip(tmp_path):
    model = tmp_path / "det.onnx"
    model.write_bytes(b"x" * 10)
    cache = FootprintCache(tmp_path / "fp.json")
    key = FootprintCache.key([model], "torch", "balanced")
    assert cache.get(key) is None
    cache.put(key, 1_234_567)
    assert FootprintCache(tmp_path / "fp.json").get(key) == 1_234_567
    model.write_bytes(b"x" * 11)  # a different model file is a different key
    assert cache.get(FootprintCache.key([model], "torch", "balanced")) is None


def test_cpu_workers_beside_gpus_for_out_of_memory_tasks():
    plan = plan_workers(
        inv(cpus=8, gpus=[gpu(0, 9)]), gpu_backend="torch", footprint_bytes=2 * GIB, cpu_workers=2
    )
    assert [s.device for s in plan.slots] == ["cuda:0"] * 4 + ["cpu", "cpu"]
    assert plan.device_kind == "cuda"
    assert any("run out of GPU memory" in r for r in plan.reasons)


def test_cpu_workers_are_not_added_to_a_cpu_plan():
    plan = plan_workers(inv(cpus=8), device="cpu", cpu_workers=2)
    assert len(plan.slots) == 2 and all(s.threads == 4 for s in plan.slots)


def test_a_plan_summary_is_one_line_per_device_group():
    slots = (WorkerSlot("cuda:0", 2), WorkerSlot("cuda:0", 2), WorkerSlot("cpu", 1))
    plan = WorkerPlan(slots, ())
    assert plan.summary() == "3 workers: 2 on cuda:0 (2 threads each), 1 on the CPU (1 thread)"
    assert WorkerPlan((WorkerSlot("cpu", 2),), ()).summary() == "1 worker on the CPU (2 threads)"


def test_cpu_workers_record_no_footprint_and_never_look_for_a_gpu_backend(monkeypatch, tmp_path):
    """The parent of a CPU-only run must not import onnxruntime (~20 MiB) to learn that there
    is nothing to record."""
    from ocrmill.backends import factory
    from ocrmill.config import Config
    from ocrmill.runtime.plan import record_footprints

    def looked(*args, **kwargs):
        raise AssertionError("looked for a GPU backend")

    monkeypatch.setattr(factory, "cuda_backend_name", looked)
    cache = FootprintCache(tmp_path / "fp.json")
    record_footprints(Config(), [{"device": "cpu", "gpu_bytes": None}, {"device": "cpu"}], cache)
    assert not (tmp_path / "fp.json").exists()
