"""The run API (ocrmill.batch.run): sinks, resume, executors, stopping, memory."""

from __future__ import annotations

import json
import threading
import tracemalloc
from pathlib import Path

import pytest

from ocrmill.batch import run
from ocrmill.batch.executors import PoolExecutor, SerialExecutor
from ocrmill.config import Config
from ocrmill.errors import ExitCode
from ocrmill.results import PageResult
from ocrmill.runtime.plan import WorkerPlan, WorkerSlot
from ocrmill.runtime.pool import PoolConfig

FAKE = "tests.fault.engines:fake_engine"


def write_inputs(root: Path, commands: dict[str, str]) -> list[str]:
    """Files whose bytes are commands for the fake engine (see tests/fault/engines.py)."""
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, command in commands.items():
        (root / name).write_bytes(command.encode())
        paths.append(str(root / name))
    return paths


def pool_executor(workers: int = 2, **changes) -> PoolExecutor:
    plan = WorkerPlan(tuple(WorkerSlot("cpu", 1) for _ in range(workers)), ())
    return PoolExecutor.start(
        plan, Config(), PoolConfig(engine_factory=FAKE, warmup=False, **changes)
    )


def view(records: list) -> dict:
    return {
        (r.input, r.page): (r.ok, r.text if r.ok else None, None if r.ok else r.code)
        for r in records
    }


def test_serial_run_writes_every_record_in_input_order(tmp_path):
    paths = write_inputs(tmp_path, {"a.png": "ok:alpha", "b.png": "bad", "c.png": "ok:gamma"})
    missing = str(tmp_path / "missing.png")
    got: list = []
    out = tmp_path / "out.jsonl"
    summary = run(
        [paths[0], missing, *paths[1:]],
        [out, got.append],
        executor=SerialExecutor(engine_factory=FAKE),
    )
    assert [r.input for r in got] == [paths[0], missing, paths[1], paths[2]]
    assert [r.ok for r in got] == [True, False, False, True]
    assert got[1].code == "input_not_found" and got[2].code == "corrupt_image"
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["input"] for r in lines] == [r.input for r in got]
    assert (summary.read, summary.failed, summary.skipped) == (4, 2, 0)
    assert summary.failures == {"input_not_found": 1, "corrupt_image": 1}
    assert summary.exit_code == ExitCode.SOME_INPUTS_FAILED


def test_workers_zero_reads_in_this_process(tmp_path):
    paths = write_inputs(tmp_path, {"a.png": "ok:here"})
    got: list = []
    summary = run(paths, got.append, workers=0, engine_factory=FAKE)
    assert [r.text for r in got] == ["here"] and summary.exit_code == ExitCode.OK


def test_resume_skips_what_every_output_holds(tmp_path):
    paths = write_inputs(tmp_path / "in", {f"{i}.png": f"ok:t{i}" for i in range(6)})
    out = tmp_path / "out.jsonl"
    first = run(paths[:4], out, executor=SerialExecutor(engine_factory=FAKE))
    assert first.read == 4
    again = run(paths, out, executor=SerialExecutor(engine_factory=FAKE), resume=True)
    assert (again.read, again.skipped) == (2, 4)
    names = [json.loads(line)["input"] for line in out.read_text().splitlines()]
    assert sorted(names) == sorted(paths)  # each once


def test_resume_reads_transient_failures_again_and_replaces_their_records(tmp_path):
    """A file that was missing is put in place; a corrupt one stays corrupt: resuming reads
    the first again (its record replaced: one record per input) and keeps the second's
    failure, which still makes the exit code 3; retry_failed reads that one again too."""
    root = tmp_path / "in"
    paths = write_inputs(root, {"a.png": "ok:alpha", "b.png": "bad"})
    missing = str(root / "late.png")
    inputs = [*paths, missing]
    out = tmp_path / "out.jsonl"
    serial = SerialExecutor(engine_factory=FAKE)

    def held() -> dict:
        records = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(records) == len({r["input"] for r in records}), "one record per input"
        return {
            Path(r["input"]).name: r.get("text", r.get("error", {}).get("code")) for r in records
        }

    first = run(inputs, out, executor=serial)
    assert first.exit_code == ExitCode.SOME_INPUTS_FAILED
    assert held() == {"a.png": "alpha", "b.png": "corrupt_image", "late.png": "input_not_found"}

    write_inputs(root, {"late.png": "ok:late"})
    again = run(inputs, out, executor=serial, resume=True)
    assert (again.read, again.skipped, again.kept_failures) == (1, 2, 1)
    assert again.exit_code == ExitCode.SOME_INPUTS_FAILED  # b.png still failed
    assert held() == {"a.png": "alpha", "b.png": "corrupt_image", "late.png": "late"}

    write_inputs(root, {"b.png": "ok:bravo"})
    fixed = run(inputs, out, executor=serial, resume=True, retry_failed=True)
    assert (fixed.read, fixed.skipped, fixed.exit_code) == (1, 2, ExitCode.OK)
    assert held() == {"a.png": "alpha", "b.png": "bravo", "late.png": "late"}


def test_pool_and_serial_executors_give_the_same_records(tmp_path):
    commands = {"a.png": "ok:alpha", "b.png": "bad", "c.png": "ok:gamma", "d.png": "ok:delta"}
    paths = write_inputs(tmp_path, commands)
    inputs = [*paths, str(tmp_path / "gone.png")]
    serial: list = []
    run(inputs, serial.append, executor=SerialExecutor(engine_factory=FAKE))
    pooled: list = []
    executor = pool_executor()
    try:
        run(inputs, pooled.append, executor=executor)
    finally:
        executor.close()
    assert len(pooled) == len(serial) == 5
    assert view(pooled) == view(serial)


def one_worker_not_waited_for(factory: str) -> PoolExecutor:
    plan = WorkerPlan((WorkerSlot("cpu", 1),), ())
    pool_config = PoolConfig(engine_factory=f"tests.fault.engines:{factory}", warmup=False)
    return PoolExecutor.start(plan, Config(), pool_config, wait_ready=False)


def test_a_run_starts_while_the_workers_still_load(tmp_path):
    paths = write_inputs(tmp_path, {"a.png": "ok:alpha", "b.png": "bad", "c.png": "ok:gamma"})
    executor = one_worker_not_waited_for("slow_to_start")  # its engine takes a second
    try:
        assert not executor.pool.ready
        got: list = []
        run(paths, got.append, executor=executor)
    finally:
        executor.close()
    assert view(got) == {
        (paths[0], None): (True, "alpha", None),
        (paths[1], None): (False, None, "corrupt_image"),
        (paths[2], None): (True, "gamma", None),
    }


def test_workers_that_cannot_start_fail_a_run_that_did_not_wait(tmp_path):
    paths = write_inputs(tmp_path, {"a.png": "ok:alpha"})
    executor = one_worker_not_waited_for("failing_at_start")
    try:
        with pytest.raises(Exception, match=r"missing_rec\.onnx"):
            run(paths, [].append, executor=executor)
    finally:
        executor.close()


def test_a_set_stop_event_reads_nothing_more(tmp_path):
    paths = write_inputs(tmp_path, {f"{i}.png": f"slow:0.2:t{i}" for i in range(40)})
    stop = threading.Event()
    got: list = []

    def record(result):
        got.append(result)
        if len(got) == 3:
            stop.set()

    executor = pool_executor(workers=1, max_batch=1)
    try:
        summary = run(paths, record, executor=executor, stop=stop)
    finally:
        executor.close()
    assert summary.interrupted and summary.exit_code == ExitCode.INTERRUPTED
    # The running task (and at most a queued one a worker had taken) finish; nothing else.
    assert 3 <= len(got) <= 5
    assert len({r.input for r in got}) == len(got)


def test_5000_inputs_keep_parent_memory_flat(tmp_path):
    """Python memory the parent holds after 1,000 and after 5,000 records, measured at those
    records exactly (tracemalloc), so the check does not depend on the machine's speed."""
    item = tmp_path / "item.png"
    item.write_bytes(b"ok:same")
    links = tmp_path / "links"
    links.mkdir()
    for i in range(5000):  # distinct names (symlinks to one tiny file): one record each
        (links / f"{i}.png").symlink_to(item)
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{links / f'{i}.png'}\n" for i in range(5000)))
    seen: dict[int, int] = {}
    count = 0

    def measure(result) -> None:
        nonlocal count
        count += 1
        if count in (1000, 5000):
            seen[count] = tracemalloc.get_traced_memory()[0]

    executor = pool_executor()
    tracemalloc.start()
    try:
        summary = run(f"@{listing}", [tmp_path / "out.jsonl", measure], executor=executor)
    finally:
        tracemalloc.stop()
        executor.close()
    assert summary.read == 5000 and summary.failed == 0
    growth = seen[5000] - seen[1000]
    print(f"traced parent memory: +{growth / 1024:.0f} KiB from record 1,000 to 5,000")
    assert growth < 1024 * 1024, growth  # nothing kept per input


def test_results_are_page_results_with_the_task_name(tmp_path):
    paths = write_inputs(tmp_path, {"a.png": "ok:alpha"})
    got: list = []
    run(paths, got.append, executor=SerialExecutor(engine_factory=FAKE))
    assert isinstance(got[0], PageResult) and got[0].input == paths[0]
