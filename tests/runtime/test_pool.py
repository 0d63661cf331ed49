"""The worker pool with real processes and injected engines that crash, hang and leak."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from ocrmill.config import Config
from ocrmill.runtime.plan import WorkerPlan, WorkerSlot
from ocrmill.runtime.pool import PoolConfig, PoolStartError, QueueFullError, WorkerPool
from ocrmill.tasks import Task

from ..conftest import wait_until

FAKE = "tests.fault.engines:fake_engine"


def make_pool(workers: int = 2, **overrides) -> WorkerPool:
    plan = WorkerPlan(tuple(WorkerSlot("cpu", 1) for _ in range(workers)), ())
    cfg = PoolConfig(engine_factory=FAKE, warmup=False, **overrides)
    return WorkerPool(plan, Config(), cfg)


def task(pool: WorkerPool, payload: str, name: str | None = None) -> Task:
    return Task(id=pool.new_task_id(), source=payload.encode(), name=name or payload)


def texts(futures, timeout: float = 60) -> list[str]:
    out = []
    for f in futures:
        r = f.result(timeout=timeout)
        out.append(r.text if r.ok else f"<{r.code}>")
    return out


def test_results_come_back_once_each():
    with make_pool() as pool:
        futures = [pool.submit(task(pool, f"ok:item{i}")) for i in range(50)]
        assert texts(futures) == [f"item{i}" for i in range(50)]
        m = pool.metrics()
        assert sum(w["tasks_done"] for w in m["workers"]) == 50
        assert m["queue_depth"] == 0 and m["in_flight"] == 0
        assert all(w["device"] == "cpu" and w["pid"] for w in m["workers"])


def test_worker_killed_mid_batch_loses_nothing():
    with make_pool(max_batch=3) as pool:
        futures = [pool.submit(task(pool, f"slow:0.05:item{i}")) for i in range(60)]
        victim = wait_until(
            lambda: next((w for w in pool.metrics()["workers"] if w["state"] == "busy"), None)
        )
        os.kill(victim["pid"], signal.SIGKILL)
        assert texts(futures) == [f"item{i}" for i in range(60)]
        m = pool.metrics()
        assert m["restarts"].get("crash", 0) >= 1
        assert victim["pid"] not in [w["pid"] for w in m["workers"]]
        assert len(m["workers"]) == 2


def test_input_that_always_crashes_is_reported_and_others_survive():
    with make_pool(max_retries=1) as pool:
        futures = [pool.submit(task(pool, p)) for p in ["ok:a", "crash", "ok:b", "ok:c"]]
        assert texts(futures) == ["a", "<worker_crashed>", "b", "c"]
        assert "SIGKILL" in futures[1].result().message
        # The pool is still usable afterwards (unlike concurrent.futures).
        assert texts([pool.submit(task(pool, "ok:after"))]) == ["after"]


def test_crash_once_is_retried_successfully(tmp_path):
    marker = tmp_path / "crashed-once"
    with make_pool(max_retries=1) as pool:
        futures = [pool.submit(task(pool, f"crash-once:{marker}"))]
        assert texts(futures) == ["survived"]
        assert pool.metrics()["restarts"]["crash"] == 1


def test_hanging_input_times_out_and_the_batch_finishes():
    with make_pool(task_timeout_s=1.5, max_retries=1, max_batch=4) as pool:
        payloads = ["ok:a", "hang", "ok:b", "ok:c", "ok:d", "ok:e"]
        started = time.monotonic()
        futures = [pool.submit(task(pool, p)) for p in payloads]
        assert texts(futures) == ["a", "<timeout>", "b", "c", "d", "e"]
        assert time.monotonic() - started < 20
        assert "1.5 s" in futures[1].result().message
        assert pool.metrics()["restarts"]["timeout"] >= 2  # batch run + solo retry


def test_big_pages_get_a_deadline_scaled_to_their_size(tmp_path):
    """The same 3 s of work times out on a small page (deadline 1.5 s) and finishes on a
    144-megapixel page (deadline 1.5 s x 4); the worker tells the page size from its header."""
    from PIL import Image, PngImagePlugin

    def page(path, size):
        info = PngImagePlugin.PngInfo()
        info.add_text("command", "slow:3:done")
        Image.new("1", size, 1).save(path, pnginfo=info)
        return str(path)

    small, big = (
        page(tmp_path / "small.png", (100, 100)),
        page(tmp_path / "big.png", (12000, 12000)),
    )
    with make_pool(workers=2, task_timeout_s=1.5, max_retries=0, max_batch=1) as pool:
        futures = [pool.submit(Task(id=i, source=p, name=p)) for i, p in enumerate((small, big))]
        small_result, big_result = (f.result(timeout=60) for f in futures)
    assert not small_result.ok and small_result.code == "timeout"
    assert "1.5 s" in small_result.message
    assert big_result.ok and big_result.text == "done"


def test_scaled_timeout_rule():
    from ocrmill.runtime.tasks import TIMEOUT_REFERENCE_PIXELS, scaled_timeout

    assert scaled_timeout(600, 1000 * 1000) == 600
    assert scaled_timeout(600, TIMEOUT_REFERENCE_PIXELS) == 600
    assert scaled_timeout(600, 16000 * 16000) == pytest.approx(600 * 256 / 36)


def test_recycling_after_n_tasks_loses_nothing():
    with make_pool(max_tasks_per_worker=5, max_batch=2) as pool:
        futures = [pool.submit(task(pool, f"ok:{i}")) for i in range(40)]
        assert texts(futures) == [str(i) for i in range(40)]
        assert pool.metrics()["restarts"]["recycle_tasks"] >= 6


def test_leaking_worker_is_recycled_by_rss():
    with make_pool(workers=1, max_worker_rss_bytes=250 * 1024**2, max_batch=1) as pool:
        futures = [pool.submit(task(pool, f"leak:40:{i}")) for i in range(12)]
        assert texts(futures) == [str(i) for i in range(12)]
        m = pool.metrics()
        assert m["restarts"]["recycle_rss"] >= 1
        assert m["workers"][0]["rss_bytes"] < 400 * 1024**2


def test_a_worker_left_without_work_hands_back_its_engines_buffers():
    with make_pool(workers=1, max_batch=1, release_after_idle_s=0.2) as pool:
        assert pool.submit(task(pool, "buffer:300:x")).result(timeout=60).text == "x"
        holding = pool.metrics()["workers"][0]["rss_bytes"]
        assert holding > 300 * 1024**2
        # The worker reports its RSS again once it has handed the buffers back.
        wait_until(lambda: pool.metrics()["workers"][0]["rss_bytes"] < holding - 250 * 1024**2)
        assert pool.submit(task(pool, "released")).result(timeout=60).text == "1"


def test_a_worker_given_work_in_time_keeps_its_engines_buffers():
    with make_pool(workers=1, max_batch=1, release_after_idle_s=60) as pool:
        first = pool.submit(task(pool, "buffer:50:x"))
        second = pool.submit(task(pool, "released"))
        assert texts([first, second]) == ["x", "0"]


def test_bounded_queue_fails_fast_when_asked():
    with make_pool(workers=1, queue_size=3, max_batch=1) as pool:
        first = pool.submit(task(pool, "slow:2:x"))
        wait_until(lambda: pool.metrics()["in_flight"] == 1)  # taken; now fill the queue
        for i in range(3):
            pool.submit(task(pool, f"ok:{i}"))
        with pytest.raises(QueueFullError):
            pool.submit(task(pool, "ok:overflow"), block=False)
        assert pool.metrics()["queue_depth"] == 3
        assert first.result(timeout=30).text == "x"


def test_engine_that_cannot_start_fails_the_pool_clearly():
    plan = WorkerPlan((WorkerSlot("cpu", 1),), ())
    cfg = PoolConfig(engine_factory="tests.fault.engines:failing_at_start", warmup=False)
    with pytest.raises(Exception, match=r"missing_rec\.onnx"):
        WorkerPool(plan, Config(), cfg).start()
    cfg = PoolConfig(engine_factory="tests.fault.engines:crashing_at_start", warmup=False)
    with pytest.raises(PoolStartError, match=r"dying before they are ready"):
        WorkerPool(plan, Config(), cfg).start()


@pytest.mark.slow
def test_real_engine_in_workers_and_parent_stays_clean(tmp_path):
    """The parent never imports an inference runtime nor touches CUDA; workers do the work."""
    from .. import conftest

    img = tmp_path / "line.png"
    conftest.render_text("Pool reads this line", size=32).save(img)
    code = f"""
import sys
from ocrmill.config import Config
from ocrmill.runtime.plan import WorkerPlan, WorkerSlot
from ocrmill.runtime.pool import WorkerPool
from ocrmill.tasks import Task
plan = WorkerPlan((WorkerSlot("cpu", 1), WorkerSlot("cpu", 1)), ())
with WorkerPool(plan, Config()) as pool:
    futures = [pool.submit(Task(id=i, source={str(img)!r}, name="line")) for i in range(4)]
    texts = [f.result(timeout=120).text for f in futures]
print(texts)
banned = [m for m in ("onnxruntime", "torch", "cupy", "pycuda", "tensorflow", "paddle") if m in sys.modules]
print("banned:", banned)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (
        "['Pool reads this line', 'Pool reads this line', 'Pool reads this line', 'Pool reads this line']"
        in proc.stdout
    )
    assert "banned: []" in proc.stdout


def test_worker_hanging_at_start_is_killed_and_reported():
    """The pool itself kills a worker that does not get ready in time (not the caller's
    wait giving up): after ``max_start_failures`` such kills it fails."""
    plan = WorkerPlan((WorkerSlot("cpu", 1),), ())
    cfg = PoolConfig(
        engine_factory="tests.fault.engines:hanging_at_start",
        warmup=False,
        start_timeout_s=1.0,
        max_start_failures=2,
    )
    pool = WorkerPool(plan, Config(), cfg).start(wait_ready=False)
    try:
        with pytest.raises(PoolStartError, match="keep dying before they are ready"):
            pool.wait_ready(timeout=120)
        assert pool.metrics()["restarts"].get("start_timeout") == 1
    finally:
        pool.shutdown(wait=False, kill=True)


def test_a_replacement_worker_hanging_at_start_is_killed(tmp_path, monkeypatch):
    """A worker dies on a task; its replacement hangs while loading: it is killed after
    ``start_timeout_s`` like a first worker, and the task does not wait forever."""
    monkeypatch.setenv("OCRMILL_TEST_STARTED", str(tmp_path / "started"))
    plan = WorkerPlan((WorkerSlot("cpu", 1),), ())
    cfg = PoolConfig(
        engine_factory="tests.fault.engines:hanging_at_restart",
        warmup=False,
        start_timeout_s=1.0,
        max_start_failures=2,
    )
    with WorkerPool(plan, Config(), cfg) as pool:
        future = pool.submit(Task(id=pool.new_task_id(), source=b"crash", name="crash"))
        with pytest.raises(PoolStartError, match="not ready in time"):
            future.result(timeout=120)
        restarts = pool.metrics()["restarts"]
        assert (restarts["crash"], restarts["start_timeout"]) == (1, 1)  # then it gave up


def test_workers_die_with_a_killed_parent():
    psutil = pytest.importorskip("psutil")
    code = """
import sys, time
from ocrmill.config import Config
from ocrmill.runtime.plan import WorkerPlan, WorkerSlot
from ocrmill.runtime.pool import PoolConfig, WorkerPool
from ocrmill.tasks import Task
plan = WorkerPlan((WorkerSlot("cpu", 1), WorkerSlot("cpu", 1)), ())
pool = WorkerPool(plan, Config(), PoolConfig(engine_factory="tests.fault.engines:fake_engine", warmup=False)).start()
pool.submit(Task(id=1, source=b"hang", name="hang"))
time.sleep(0.5)
print(" ".join(str(w["pid"]) for w in pool.metrics()["workers"]), flush=True)
time.sleep(600)
"""
    root = str(__import__("pathlib").Path(__file__).resolve().parents[2])
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=root
    )
    pids = [int(p) for p in proc.stdout.readline().split()]
    assert len(pids) == 2
    proc.kill()  # SIGKILL: no cleanup code runs in the parent
    proc.wait(timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(
        psutil.pid_exists(p) and psutil.Process(p).status() != "zombie" for p in pids
    ):
        time.sleep(0.1)
    alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
    assert alive == [], "workers outlived their parent (one was hung in a task)"


def _gpu_pool(slots: tuple[WorkerSlot, ...]) -> WorkerPool:
    # A fake engine on a "cuda:0" slot: no CUDA is touched, the device only picks behaviour.
    cfg = PoolConfig(engine_factory=FAKE, warmup=False)
    return WorkerPool(WorkerPlan(slots, ()), Config(), cfg)


def test_gpu_out_of_memory_goes_to_a_cpu_worker():
    with _gpu_pool((WorkerSlot("cuda:0", 1), WorkerSlot("cpu", 1))) as pool:
        futures = [pool.submit(task(pool, f"gpu-oom:big{i}")) for i in range(3)]
        futures += [pool.submit(task(pool, f"ok:small{i}")) for i in range(6)]
        got = texts(futures)
        assert got[:3] == [f"big{i} on cpu" for i in range(3)]
        assert got[3:] == [f"small{i}" for i in range(6)]
        m = pool.metrics()
        # Each big task that reached the GPU worker was moved once; the CPU worker may take
        # one straight from the queue when it is idle first (a loaded machine).
        assert 1 <= m["restarts"]["gpu_oom_to_cpu"] <= 3
        gpu = next(w for w in m["workers"] if w["device"] == "cuda:0")
        assert gpu["state"] == "idle"  # the GPU worker was not killed for an OOM


def test_gpu_out_of_memory_without_a_cpu_worker_is_a_resource_limit_record():
    with _gpu_pool((WorkerSlot("cuda:0", 1),)) as pool:
        futures = [pool.submit(task(pool, "gpu-oom:big")), pool.submit(task(pool, "ok:next"))]
        assert texts(futures) == ["<resource_limit>", "next"]
        assert "gpu_oom_to_cpu" not in pool.metrics()["restarts"]


def test_a_cpu_worker_gets_the_pages_of_a_document_one_at_a_time(tmp_path, monkeypatch):
    """Pages queued behind a busy worker: the images go in one batch, each PDF page alone."""
    import pikepdf

    from tests.fault.engines import BATCH_LOG_ENV

    doc = tmp_path / "doc.pdf"
    pdf = pikepdf.new()
    for _ in range(3):
        pdf.add_blank_page(page_size=(72, 36))
    pdf.save(doc)
    batches = tmp_path / "batches.log"
    gate = tmp_path / "gate"
    monkeypatch.setenv(BATCH_LOG_ENV, str(batches))
    with make_pool(workers=1, max_batch=4) as pool:
        wait_until(lambda: pool.metrics()["ready"])
        first = pool.submit(task(pool, f"wait:{gate}:first"))
        wait_until(lambda: pool.metrics()["in_flight"] == 1 and not pool.metrics()["queue_depth"])
        pages = [
            pool.submit(
                Task(
                    id=pool.new_task_id(),
                    source=str(doc),
                    name="doc.pdf",
                    kind="pdf",
                    page=i,
                    pdf_dpi=72,
                )
            )
            for i in range(3)
        ]
        images = [pool.submit(task(pool, f"ok:image{i}")) for i in range(3)]
        gate.touch()
        assert texts([first, *pages, *images]) == ["first"] + ["page 72x36"] * 3 + [
            f"image{i}" for i in range(3)
        ]
    assert batches.read_text().split() == ["1", "1", "1", "1", "3"]


def test_few_tasks_are_shared_among_idle_workers():
    """Two slow tasks and two idle workers: one each, not both in one worker's batch."""
    with make_pool(workers=2, max_batch=4) as pool:
        wait_until(lambda: pool.metrics()["ready"])
        futures = [pool.submit(task(pool, f"slow:0.5:t{i}")) for i in range(2)]
        assert texts(futures) == ["t0", "t1"]
        done = sorted(w["tasks_done"] for w in pool.metrics()["workers"])
    assert done == [1, 1]
