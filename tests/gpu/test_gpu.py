"""On a real NVIDIA GPU: the CUDA engine, the GPU worker pool, and the proof that a parent
which initialized CUDA cannot break its spawned workers.

Every test here is marked ``gpu`` and skips, saying why, on machines without a GPU or
without a CUDA backend (CI has neither; run them on a GPU box with ``pytest -m gpu``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from ocrmill.config import BackendConfig, Config

from ..conftest import render_page

ROOT = Path(__file__).resolve().parents[2]
LINES = ["Invoice 2024-117 total due 1,284.50 EUR", "Call +1 (555) 010-9999 before 17:30"]


def _skip_reason() -> str | None:
    from ocrmill.backends.factory import cuda_backend_name
    from ocrmill.runtime.devices import probe_gpus

    gpus, note = probe_gpus()
    if not gpus:
        return f"no NVIDIA GPU: {note}"
    if cuda_backend_name(BackendConfig()) is None:
        return "no CUDA backend installed (torch + onnx2torch, or onnxruntime-gpu)"
    return None


_REASON = _skip_reason()
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(_REASON is not None, reason=_REASON or "")]


@pytest.fixture(scope="module")
def page() -> np.ndarray:
    return np.asarray(render_page(LINES, size=26))


def test_gpu_engine_reads_like_the_cpu_engine(page):
    from ocrmill.engine import Engine

    cpu = Engine(Config()).read(page)
    gpu_engine = Engine(Config(backend=BackendConfig(device="cuda")))
    assert all(not p[0].startswith(("CPU", "OpenVINO")) for p in gpu_engine.providers.values())
    got = gpu_engine.read(page)
    assert got.text == cpu.text
    # Batched detection (several pages per detector call) reads the same.
    many = gpu_engine.read_many([page, page[:, :500], page])
    assert [r.text for r in many] == [cpu.text, Engine(Config()).read(page[:, :500]).text, cpu.text]


def test_gpu_worker_reports_its_memory(page):
    from ocrmill.runtime.plan import WorkerPlan, WorkerSlot
    from ocrmill.runtime.pool import WorkerPool
    from ocrmill.tasks import Task

    plan = WorkerPlan((WorkerSlot("cuda:0", 2),), ())
    with WorkerPool(plan, Config()) as pool:
        result = pool.submit(Task(id=1, source=page, name="page")).result(timeout=300)
        [worker] = pool.metrics()["workers"]
    assert result.ok and "Invoice" in result.text
    if worker["gpu_bytes"] is None:
        pytest.skip("NVML cannot see this process's GPU memory (PID namespace?)")
    assert 50 * 2**20 < worker["gpu_bytes"] < 16 * 2**30


SEED_000 = textwrap.dedent(
    """
    import json, multiprocessing as mp, sys
    import numpy as np
    import torch

    # The seed's situation: the parent process has initialized CUDA ...
    torch.zeros(1, device="cuda")

    def child(queue):
        try:
            torch.zeros(1, device="cuda")
            queue.put("ok")
        except Exception as exc:
            queue.put(f"{type(exc).__name__}: {exc}")

    def main():
        fork = mp.get_context("fork")
        queue = fork.SimpleQueue()
        proc = fork.Process(target=child, args=(queue,))
        proc.start()
        proc.join(120)
        forked = queue.get() if not queue.empty() else f"child exit code {proc.exitcode}"

        # ... and ocrmill's pool started from that same parent still reads on the GPU.
        from ocrmill.config import Config
        from ocrmill.runtime.plan import WorkerPlan, WorkerSlot
        from ocrmill.runtime.pool import WorkerPool
        from ocrmill.tasks import Task

        page = np.load(sys.argv[1])
        plan = WorkerPlan((WorkerSlot("cuda:0", 1), WorkerSlot("cuda:0", 1)), ())
        with WorkerPool(plan, Config()) as pool:
            futures = [pool.submit(Task(id=i, source=page, name=f"p{i}")) for i in range(4)]
            texts = [f.result(timeout=300).text for f in futures]
        print(json.dumps({"forked": forked, "pool": texts}))

    if __name__ == "__main__":
        main()
    """
)


def test_seed_000_fork_after_cuda_init_breaks_but_the_pool_works(page, tmp_path):
    pytest.importorskip("torch")
    script = tmp_path / "seed000.py"
    script.write_text(SEED_000)
    np.save(tmp_path / "page.npy", page)
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "page.npy")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    # Plain fork after CUDA init: the child cannot use the GPU (cudaErrorInitializationError).
    assert out["forked"] != "ok"
    assert "forked subprocess" in out["forked"] or "initialization error" in out["forked"]
    # ocrmill's spawned workers, from the same parent, read every page.
    assert all("Invoice" in t for t in out["pool"]) and len(out["pool"]) == 4
