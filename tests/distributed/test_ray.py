"""The Ray Data stage and `ocrmill run --ray`: plans, the stage in-process, and a real local
Ray cluster (one per module) with the real engine, fault engines and killed actors."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import pytest

from ocrmill import cli
from ocrmill.errors import ExitCode
from ocrmill.runtime.devices import GpuInfo, Inventory
from ocrmill.runtime.plan import GIB, plan_workers

from ..conftest import render_text, three_page_tiff, write_text_pdf

ROOT = Path(__file__).resolve().parents[2]
FAKE = "tests.fault.engines:fake_engine"
NO_RAY = "Ray Data is not installed (pip install 'ocrmill[ray]')"
# Ray's own DataContext warns about its deprecated settings on first use: not ours.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def write_inputs(root: Path, contents: dict[str, str]) -> list[str]:
    """Files whose bytes are commands for the fake engine; returns their paths."""
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, command in contents.items():
        path = root / name
        path.write_bytes(command.encode())
        paths.append(str(path))
    return paths


def inventory(cpus: int = 8, gpus: tuple[GpuInfo, ...] = ()) -> Inventory:
    return Inventory(cpus=cpus, memory_available_bytes=64 * GIB, gpus=gpus)


# -- without Ray ----------------------------------------------------------------------------


def test_run_ray_without_ray_is_a_usage_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    monkeypatch.setitem(sys.modules, "ray.data", None)
    image = tmp_path / "a.png"
    render_text("abc").save(image)
    out = tmp_path / "out.jsonl"
    code = cli.main(["run", "--ray", str(image), "-o", str(out), "-q"])
    assert code == ExitCode.USAGE == 2
    err = capsys.readouterr().err
    assert "Ray Data is not installed" in err and "pip install 'ocrmill[ray]'" in err
    assert not out.exists()


def test_run_parser_has_the_ray_flags():
    args = cli.build_parser().parse_args(["run", "x", "-o", "o.jsonl", "--ray-address", "auto"])
    assert args.ray is False and args.ray_address == "auto"
    args = cli.build_parser().parse_args(["run", "x", "-o", "o.jsonl", "--ray"])
    assert args.ray is True and args.ray_address is None


# -- the actor plan (pure) ------------------------------------------------------------------


def test_cpu_plan_gives_no_gpus_and_the_plan_threads():
    from ocrmill.distributed.ray import plan_actors

    plan = plan_workers(inventory(cpus=8), device="cpu", workers=2)
    actors = plan_actors(plan, fixed=True)
    assert (actors.min_actors, actors.max_actors) == (2, 2)
    assert actors.num_gpus == 0 and actors.device == "cpu"
    assert actors.num_cpus == actors.threads == 4


def test_gpu_fraction_comes_from_the_vram_plan():
    from ocrmill.distributed.ray import plan_actors

    gpus = (GpuInfo(0, "G", 24 * GIB, 9 * GIB), GpuInfo(1, "G", 24 * GIB, 9 * GIB))
    # (9 GiB free - 1 reserve) / 2 GiB per engine = 4 engines per GPU -> 0.25 GPU each
    plan = plan_workers(inventory(gpus=gpus), device="cuda", gpu_backend="onnxruntime-gpu")
    actors = plan_actors(plan, fixed=False, cluster_resources={"CPU": 64.0, "GPU": 4.0})
    assert actors.device == "cuda" and actors.num_gpus == 0.25
    assert actors.min_actors == 8  # what this machine would start
    assert actors.max_actors == 16  # 4 GPUs in the cluster x 4 engines each
    assert any("num_gpus=0.25" in r for r in actors.reasons)
    # Without a CUDA-capable backend the plan is CPU: no GPU is reserved.
    cpu = plan_actors(plan_workers(inventory(gpus=gpus), device="cuda"), fixed=True)
    assert cpu.num_gpus == 0 and cpu.device == "cpu"


def test_fractions_always_fit_on_one_gpu():
    from ocrmill.distributed.ray import gpu_fraction

    for n in range(1, 9):
        assert n * gpu_fraction(n) <= 1.0
        assert gpu_fraction(n) > 1.0 / n - 1e-4


def test_auto_scales_to_the_cluster_cpus():
    from ocrmill.distributed.ray import plan_actors

    plan = plan_workers(inventory(cpus=2), device="cpu")  # auto: 1 x 2 threads
    actors = plan_actors(plan, fixed=False, cluster_resources={"CPU": 48.0})
    assert (actors.min_actors, actors.max_actors, actors.num_cpus) == (1, 24, 2.0)
    small = plan_actors(plan, fixed=False, cluster_resources={"CPU": 1.0})
    assert (small.min_actors, small.max_actors) == (1, 1)


# -- the stage, in this process (no cluster) --------------------------------------------------


@pytest.fixture
def pa():
    return pytest.importorskip("pyarrow", reason=NO_RAY)


def test_stage_makes_one_row_per_input_and_error_rows(pa, tmp_path):
    from ocrmill.distributed.ray import RESULT_COLUMNS, OcrStage

    good, bad = write_inputs(tmp_path, {"good.png": "ok:hello", "bad.png": "bad"})
    stage = OcrStage(engine_factory=FAKE)
    batch = pa.table(
        {
            "path": [good, bad, None, None, None],
            "bytes": [None, None, b"ok:from bytes", None, None],
            "input": [None, None, "mem-1", "gone.png", "nothing"],
            "error_code": [None, None, None, "input_not_found", None],
            "error_message": [None, None, None, "gone.png: no such file", None],
            "id": [10, 11, 12, 13, 14],
        }
    )
    out = stage(batch).to_pylist()
    assert [r["id"] for r in out] == [10, 11, 12, 13, 14]  # other columns are kept
    assert set(out[0]) == {*RESULT_COLUMNS, "id", "path"}  # `bytes` is not
    assert [r["input"] for r in out] == [good, bad, "mem-1", "gone.png", "nothing"]
    assert [r["ok"] for r in out] == [True, False, True, False, False]
    assert out[0]["text"] == "hello" and out[2]["text"] == "from bytes"
    assert [r["error_code"] for r in out[1:]] == [
        "corrupt_image",
        None,
        "input_not_found",
        "input_error",
    ]
    assert out[1]["text"] is None and out[3]["error_message"] == "gone.png: no such file"
    first = json.loads(out[0]["result"])  # the record `ocrmill run` writes
    assert first["schema"] == 1 and first["text"] == "hello" and first["page"] is None


def test_an_engine_exception_becomes_internal_rows_and_the_stage_goes_on(pa, tmp_path):
    from ocrmill.distributed.ray import OcrStage

    paths = write_inputs(tmp_path, {"a.png": "ok:a", "b.png": "ok:b"})
    # The fake engine reads the file itself: a missing one makes read_many raise, which
    # fails the engine call it is in (alone, or with what the worker batched with it).
    paths.append(str(tmp_path / "missing.png"))
    stage = OcrStage(engine_factory=FAKE)
    out = stage(pa.table({"path": paths})).to_pylist()
    assert len(out) == 3
    assert out[2]["error_code"] == "internal" and "FileNotFoundError" in out[2]["error_message"]
    for row, text in zip(out[:2], ["a", "b"]):
        assert (row["ok"], row["text"]) == (True, text) or row["error_code"] == "internal"
    again = stage(pa.table({"path": paths[:2]})).to_pylist()  # the stage still reads
    assert [(r["ok"], r["text"]) for r in again] == [(True, "a"), (True, "b")]


def test_a_broken_pdf_row_is_one_error_row_naming_the_input(pa, tmp_path):
    from ocrmill.distributed.ray import OcrStage

    broken = b"%PDF-1.4 not really a document"
    (path,) = write_inputs(tmp_path, {"broken.pdf": broken.decode()})
    stage = OcrStage(engine_factory=FAKE)
    batch = pa.table({"path": [path, None], "bytes": [None, broken], "input": [None, "mem.pdf"]})
    out = stage(batch).to_pylist()
    assert [(r["input"], r["ok"], r["page"]) for r in out] == [
        (path, False, None),
        ("mem.pdf", False, None),
    ]
    assert [r["error_code"] for r in out] == ["corrupt_image", "corrupt_image"]
    # The PDF bytes went to a temporary file: the message names the input instead.
    assert "mem.pdf" in out[1]["error_message"] and "ocrmill-" not in out[1]["error_message"]


def test_a_multi_page_tiff_row_is_one_row_per_page(pa, tmp_path):
    """Paths and bytes alike: the stage expands a TIFF's pages as ``ocrmill run`` does."""
    from PIL import Image

    from ocrmill.distributed.ray import OcrStage

    tiff = tmp_path / "scan.tif"
    pages = []
    for i in range(3):
        page = Image.new("RGB", (120, 80), (255, 255, 255))
        page.paste((0, 0, 0), (10 + 20 * i, 20, 40 + 20 * i, 50))
        pages.append(page)
    pages[0].save(tiff, save_all=True, append_images=pages[1:])
    stage = OcrStage(engine_factory="tests.fault.engines:box_engine")
    batch = pa.table(
        {"path": [str(tiff), None], "bytes": [None, tiff.read_bytes()], "input": [None, "mem.tif"]}
    )
    out = stage(batch).to_pylist()
    assert sorted((r["input"], r["page"], r["ok"]) for r in out) == [
        *((str(tiff), i, True) for i in range(3)),
        *(("mem.tif", i, True) for i in range(3)),
    ]


def test_a_cuda_stage_never_guesses_its_gpu(monkeypatch):
    """The GPU is the one Ray assigned to the actor; without one the stage fails clearly
    (it used to take cuda:0, which may be another actor's)."""
    ray = pytest.importorskip("ray", reason=NO_RAY)
    from ocrmill.distributed import stage
    from ocrmill.distributed.ray import OcrStage
    from ocrmill.errors import ConfigError

    with pytest.raises(ConfigError, match="assigned this one none"):
        OcrStage(device="cuda", engine_factory=FAKE)  # outside a Ray actor
    assert not ray.is_initialized()  # asking did not start a Ray in this process
    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    monkeypatch.setattr(ray, "get_gpu_ids", lambda: [])
    with pytest.raises(ConfigError, match=r"num_gpus > 0"):
        stage._actor_gpu()
    monkeypatch.setattr(ray, "get_gpu_ids", lambda: ["3"])
    assert stage._actor_gpu() == "cuda:3"
    monkeypatch.setattr(ray, "get_gpu_ids", lambda: [2])
    assert stage._actor_gpu() == "cuda:2"
    monkeypatch.setattr(ray, "get_gpu_ids", lambda: ["GPU-5f2c"])
    with pytest.raises(ConfigError, match="GPU-5f2c"):
        stage._actor_gpu()


# -- a local Ray cluster ----------------------------------------------------------------------


def actor_plan(n: int):
    from ocrmill.distributed.ray import ActorPlan

    return ActorPlan(n, n, 1.0, 0.0, 1, "cpu")


def run_on_ray(
    specs: list[str],
    out: Path,
    *,
    actors: int = 2,
    engine_factory: str | None = None,
    batch_size: int = 4,
    timeout_s: float = 600.0,
    pdf_dpi: int = 200,
) -> list[dict]:
    """``ocrmill.run`` on the Ray executor (the module's cluster), into ``out``."""
    from ocrmill.batch import run
    from ocrmill.config import Config
    from ocrmill.distributed.ray import RayExecutor
    from ocrmill.runtime.pool import PoolConfig

    pool_config = PoolConfig(task_timeout_s=timeout_s)
    if engine_factory:
        pool_config = PoolConfig(task_timeout_s=timeout_s, engine_factory=engine_factory)
    executor = RayExecutor(actor_plan(actors), Config(), pool_config, batch_size=batch_size)
    run(specs, out, executor=executor, pdf_dpi=pdf_dpi)
    return records(out)


@pytest.mark.slow
def test_real_engine_on_ray_reads_what_the_local_pool_reads(ray_cluster, tmp_path):
    from ocrmill.batch import run
    from ocrmill.batch.executors import PoolExecutor
    from ocrmill.config import Config

    data = tmp_path / "in"
    data.mkdir()
    for i, text in enumerate(["Alpha 101", "Bravo 202", "Charlie 303", "Delta 404"]):
        render_text(text, size=28).save(data / f"img_{i}.png")
    (data / "corrupt.jpg").write_bytes((data / "img_0.png").read_bytes()[:150])
    write_text_pdf(data / "doc.pdf")
    (data / "broken.pdf").write_bytes((data / "doc.pdf").read_bytes()[:400])
    specs = [str(data)]

    on_ray = run_on_ray(specs, tmp_path / "ray.jsonl", pdf_dpi=150)
    local_out = tmp_path / "local.jsonl"
    plan = plan_workers(inventory(cpus=1), device="cpu", workers=1)
    executor = PoolExecutor.start(plan, Config())
    try:
        run(specs, local_out, executor=executor, pdf_dpi=150)
    finally:
        executor.close()
    local = records(local_out)

    def view(recs: list[dict]) -> dict:
        return {
            (r["input"], r["page"]): (r["ok"], r.get("text"), r.get("error", {}).get("code"))
            for r in recs
        }

    assert len(on_ray) == len(local) == 8  # 4 images, 1 corrupt, 2 PDF pages, 1 broken PDF
    assert view(on_ray) == view(local)
    texts = {Path(r["input"]).name: r["text"] for r in on_ray if r["ok"] and r["page"] is None}
    assert texts["img_2.png"] == "Charlie 303"
    by_key = {(Path(r["input"]).name, r["page"]): r for r in on_ray}
    assert by_key[("doc.pdf", 1)]["text"] == "Second page text"
    assert by_key[("corrupt.jpg", None)]["error"]["code"] == "corrupt_image"
    assert not by_key[("broken.pdf", None)]["ok"]
    fields = {(r["input"], r["page"]): set(r) for r in local}
    assert all(set(r) == fields[(r["input"], r["page"])] for r in on_ray)  # same record shape


@pytest.mark.slow
def test_killed_actors_are_restarted_and_no_row_is_lost(ray_cluster, tmp_path):
    commands = {f"t{i:02d}.png": f"ok:text{i}" for i in range(20)}
    for k in range(3):  # each kills its actor once; the retry reads it
        commands[f"crash_once_{k}.png"] = f"crash-once:{tmp_path / f'marker_{k}'}"
    commands["killer.png"] = "crash"  # kills its actor every time
    commands["hang.png"] = "hang"  # never returns
    commands["bad.png"] = "bad"
    paths = write_inputs(tmp_path / "in", commands)
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(paths) + "\n")

    recs = run_on_ray(
        [f"@{listing}"], tmp_path / "out.jsonl", engine_factory=FAKE, batch_size=4, timeout_s=3.0
    )

    counts = Counter(r["input"] for r in recs)
    assert sorted(counts) == sorted(paths) and set(counts.values()) == {1}  # each exactly once
    by_name = {Path(r["input"]).name: r for r in recs}
    for k in range(3):
        assert (tmp_path / f"marker_{k}").exists()  # it did kill its actor
        assert by_name[f"crash_once_{k}.png"]["text"] == "survived"
    assert by_name["killer.png"]["error"]["code"] == "worker_crashed"
    assert by_name["hang.png"]["error"]["code"] == "timeout"
    assert by_name["bad.png"]["error"]["code"] == "corrupt_image"
    for i in range(20):
        assert by_name[f"t{i:02d}.png"]["text"] == f"text{i}"


def ocr_actor_pids(stage: str = "OcrStage") -> list[int]:
    """Processes of this machine's OCR actors (Ray titles them after the stage)."""
    import psutil

    pids = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if f"MapBatches({stage})" in " ".join(proc.info["cmdline"] or ()):
            pids.append(proc.info["pid"])
    return pids


@pytest.mark.slow
def test_an_actor_killed_from_outside_mid_run_is_replaced_without_losing_rows(
    ray_cluster, tmp_path
):
    import os
    import signal
    import threading
    import time

    paths = write_inputs(
        tmp_path / "in", {f"s{i:02d}.png": f"slow:0.25:s{i:02d}" for i in range(24)}
    )
    out = tmp_path / "out.jsonl"
    killed: list[int] = []

    def kill_one_actor_mid_run() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            done = len(out.read_text().splitlines()) if out.exists() else 0
            pids = ocr_actor_pids()
            if done >= 4 and pids:
                os.kill(pids[0], signal.SIGKILL)  # as the OOM killer would
                killed.append(pids[0])
            time.sleep(0.05)

    killer = threading.Thread(target=kill_one_actor_mid_run, daemon=True)
    killer.start()
    recs = run_on_ray(paths, out, engine_factory=FAKE, batch_size=4)
    killer.join(timeout=5)

    assert killed, "no OCR actor process was found to kill"
    counts = Counter(r["input"] for r in recs)
    assert sorted(counts) == sorted(paths) and set(counts.values()) == {1}
    assert all(r["ok"] and r["text"] == Path(r["input"]).stem for r in recs)


@pytest.mark.slow
def test_read_binary_files_rows_keep_their_columns(ray_cluster, tmp_path):
    from ocrmill.distributed.ray import ocr_dataset

    paths = write_inputs(tmp_path, {f"b{i}.png": f"ok:bytes{i}" for i in range(6)})
    paths += write_inputs(tmp_path, {"worse.png": "bad"})
    ds = ray_cluster.data.read_binary_files(paths, include_paths=True)
    rows = ocr_dataset(ds, actor_plan(1), engine_factory=FAKE).take_all()
    assert len(rows) == 7
    assert "bytes" not in rows[0] and "result" in rows[0]
    by_path = {Path(r["path"]).name: r for r in rows}
    assert by_path["b3.png"]["text"] == "bytes3" and by_path["b3.png"]["ok"]
    assert by_path["worse.png"]["error_code"] == "corrupt_image"


@pytest.mark.slow
def test_cli_run_ray_writes_run_records_and_resumes(ray_cluster, tmp_path, capsys):
    paths = write_inputs(tmp_path / "in", {f"c{i:02d}.png": f"ok:cli{i}" for i in range(12)})
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(paths) + "\n")
    missing = str(tmp_path / "missing.png")
    out = tmp_path / "out.jsonl"
    args = ["run", "--ray", f"@{listing}", missing, "-o", str(out), "--workers", "2"]
    args += ["--engine-factory", FAKE]

    assert cli.main(args) == ExitCode.SOME_INPUTS_FAILED  # the missing input
    first = records(out)
    assert len(first) == 13
    assert {r["input"]: r["ok"] for r in first}[missing] is False
    assert "ray actors: 2 x cpu" in capsys.readouterr().err

    # A run killed after 5 records: --resume reads the other 8 and, wherever its record
    # is, the missing input again (a transient failure), with no duplicates.
    kept = out.read_text().splitlines()[:5]
    out.write_text("".join(line + "\n" for line in kept))
    assert cli.main([*args, "-q", "--resume"]) == ExitCode.SOME_INPUTS_FAILED
    final = records(out)
    counts = Counter(r["input"] for r in final)
    assert sorted(counts) == sorted([*paths, missing]) and set(counts.values()) == {1}
    assert "input_not_found=1" in capsys.readouterr().err  # -q still names failures


@pytest.mark.slow
def test_pool_ray_and_serial_executors_give_identical_records(ray_cluster, tmp_path):
    """The same inputs through the three executors: identical records. Crash and hang cases
    go to the pool and Ray only: in this process they would crash or hang the caller (the
    serial executor has no isolation, by design)."""
    from ocrmill.batch import run
    from ocrmill.batch.executors import PoolExecutor, SerialExecutor
    from ocrmill.config import Config
    from ocrmill.runtime.pool import PoolConfig

    safe = {"good.png": "ok:good text", "bad.png": "bad", "other.png": "ok:other"}
    unsafe = {"killer.png": "crash", "hang.png": "hang"}
    safe_paths = write_inputs(tmp_path / "in", safe)
    corrupt = tmp_path / "in" / "corrupt.pdf"
    corrupt.write_bytes(b"%PDF-1.4 not really")
    safe_paths.append(str(corrupt))
    unsafe_paths = write_inputs(tmp_path / "in", unsafe)
    once = write_inputs(tmp_path / "in", {"crash_once.png": f"crash-once:{tmp_path / 'marker'}"})

    def view(recs: list[dict]) -> dict:
        return {
            (Path(r["input"]).name, r["page"]): (
                r["ok"],
                r.get("text"),
                r.get("error", {}).get("code"),
            )
            for r in recs
        }

    on_ray = view(
        run_on_ray(
            [*safe_paths, *unsafe_paths, *once],
            tmp_path / "ray.jsonl",
            engine_factory=FAKE,
            timeout_s=3.0,
        )
    )
    (tmp_path / "marker").unlink()  # crash once again on the pool
    pool_config = PoolConfig(task_timeout_s=3.0, engine_factory=FAKE, warmup=False)
    plan = plan_workers(inventory(cpus=2), device="cpu", workers=2)
    executor = PoolExecutor.start(plan, Config(), pool_config)
    try:
        run([*safe_paths, *unsafe_paths, *once], tmp_path / "pool.jsonl", executor=executor)
    finally:
        executor.close()
    on_pool = view(records(tmp_path / "pool.jsonl"))
    run(safe_paths, tmp_path / "serial.jsonl", executor=SerialExecutor(engine_factory=FAKE))
    serial = view(records(tmp_path / "serial.jsonl"))

    assert on_ray == on_pool
    assert {k: v for k, v in on_pool.items() if k[0] in {*safe, "corrupt.pdf"}} == serial
    assert on_pool[("killer.png", None)][2] == "worker_crashed"
    assert on_pool[("hang.png", None)][2] == "timeout"
    assert on_pool[("crash_once.png", None)][:2] == (True, "survived")
    assert serial[("bad.png", None)][2] == "corrupt_image"
    assert serial[("corrupt.pdf", None)][2] == "corrupt_image"


def hocr_pages(folder: Path) -> dict[str, int]:
    """Pages in each hOCR file of ``folder``, by file name."""
    return {p.name: p.read_text().count('class="ocr_page"') for p in folder.rglob("*.hocr")}


@pytest.mark.slow
def test_run_ray_writes_every_page_of_every_document(ray_cluster, tmp_path):
    """Through the driver (-o FILE.jsonl): a 2-page PDF and a 3-page TIFF each get one hOCR
    file with all their pages (tasks rebuilt from rows once lost their page counts)."""
    data = tmp_path / "in"
    data.mkdir()
    write_text_pdf(data / "doc.pdf")
    three_page_tiff(data / "scan.tif")
    out, hocr = tmp_path / "out.jsonl", tmp_path / "hocr"
    args = ["run", "--ray", str(data), "-o", str(out), "--hocr-dir", str(hocr), "-q"]
    args += ["--workers", "2", "--engine-factory", "tests.fault.engines:box_engine"]
    assert cli.main(args) == ExitCode.OK
    assert len(records(out)) == 5
    assert hocr_pages(hocr) == {"doc.pdf.hocr": 2, "scan.tif.hocr": 3}
