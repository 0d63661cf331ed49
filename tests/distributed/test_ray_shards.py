"""Sharded Ray runs (``ocrmill run --ray ... -o DIR/``): inputs listed on the cluster in
chunks, shards and documents written by the actors, resume from the shards' manifests, and
every input exactly once when an actor or the driver is killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from ocrmill import cli
from ocrmill.batch.sources import iter_tasks
from ocrmill.distributed.listing import Chunk, plan_units, unit_chunks, unit_names
from ocrmill.distributed.shards import Manifest, shards, temporary_files
from ocrmill.errors import ConfigError, ExitCode
from ocrmill.results import PageFailure

from ..conftest import three_page_tiff, write_text_pdf
from .test_ray import ocr_actor_pids, write_inputs

FAKE = "tests.fault.engines:fake_engine"
BOXES = "tests.fault.engines:box_engine"
ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")


def listed(specs: list[str], base: Path, **kwargs) -> list[str]:
    """Every name the units of ``specs`` list, in order (failures as ``!code:name``)."""
    names = []
    for unit in plan_units(specs, str(base), **kwargs):
        for found in unit_names(unit, str(base)):
            names.append(
                f"!{found.code}:{found.input}" if isinstance(found, PageFailure) else found
            )
    return names


def locally(specs: list[str]) -> list[str]:
    """The names a local run gives the same specs (from the current directory)."""
    names = []
    for task in iter_tasks(specs):
        if task.failure is not None:
            names.append(f"!{task.failure.code}:{task.name}")
        elif task.page in (None, 0):
            names.append(task.name)
    return names


# -- listing (no Ray) -----------------------------------------------------------------------


@pytest.mark.parametrize("range_bytes", [1, 5, 17, 64, 1 << 20])
def test_list_ranges_read_every_line_once_in_order(tmp_path, monkeypatch, range_bytes):
    monkeypatch.chdir(tmp_path)
    write_inputs(tmp_path / "in", {f"{'x' * (i % 7)}{i}.png": "ok:a" for i in range(40)})
    lines = sorted(f"in/{p.name}" for p in (tmp_path / "in").iterdir())
    lines[5:5] = ["", "# a comment", "in/missing.png", "  in/0.png  "]
    (tmp_path / "list.txt").write_text("\n".join(lines) + "\n")

    got = listed(["@list.txt"], tmp_path, range_bytes=range_bytes)

    assert got == locally(["@list.txt"])
    assert len(got) == 42 and "!input_not_found:in/missing.png" in got
    for ending in ("\r\n", "\r"):  # Windows and old Mac lists read as text mode reads them
        (tmp_path / "list.txt").write_text(ending.join(lines) + ending, newline="")
        assert listed(["@list.txt"], tmp_path, range_bytes=range_bytes) == got


def test_units_name_inputs_as_a_local_run_does(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_inputs(tmp_path / "scans" / "deep", {"a.png": "ok:a", "b.txt": "not an input"})
    write_inputs(tmp_path / "scans", {"c.png": "ok:c"})
    write_inputs(tmp_path, {"d.png": "ok:d", "e.png": "ok:e"})
    (tmp_path / "list.txt").write_text("scans\nd.png\n")
    specs = ["d.png", "e.png", "scans", "*.png", "nothing-*.png", "gone.png", "@list.txt"]
    specs.append(str(tmp_path / "scans"))  # absolute: named as written

    units = plan_units(specs, str(tmp_path))

    assert [u.kind for u in units] == ["paths", "path", "glob", "glob", "paths", "list", "path"]
    assert listed(specs, tmp_path) == locally(specs)
    here = listed(specs, tmp_path)
    monkeypatch.chdir("/")  # listing never looks at the current directory
    assert listed(specs, tmp_path) == here
    assert here.count("d.png") == 3 and "scans/deep/a.png" in here
    assert "!input_not_found:nothing-*.png" in here and "!input_not_found:gone.png" in here
    assert str(tmp_path / "scans" / "deep" / "a.png") in here  # absolute: named as written


def test_stdin_cannot_be_listed_on_a_cluster(tmp_path):
    with pytest.raises(ConfigError, match="@FILE"):
        plan_units(["a.png", "-"], str(tmp_path))


def test_chunks_have_stable_ids_and_round_trip_through_arrow(tmp_path):
    pytest.importorskip("ray.data", reason="Ray Data is not installed")
    from ocrmill.distributed.input_source import chunk_table, chunks_of

    write_inputs(tmp_path, {f"{i:02d}.png": "ok" for i in range(5)})
    with open(os.path.join(os.fsencode(tmp_path), b"caf\xe9.png"), "wb") as fh:
        fh.write(b"ok:odd")  # a name no UTF-8 can hold
    (unit,) = plan_units([".", "missing.png"], str(tmp_path))[:1]
    chunks = list(unit_chunks(unit, str(tmp_path), 4))

    assert "./" + os.fsdecode(b"caf\xe9.png") in chunks[0].names + chunks[1].names
    assert [c.id for c in chunks] == ["0000-000000-00000000", "0000-000000-00000001"]
    assert [len(c.names) for c in chunks] == [4, 2]
    assert [c.id for c in unit_chunks(unit, str(tmp_path), 4)] == [c.id for c in chunks]
    failed = Chunk("x", ("a.png", "b.png"), (None, PageFailure("b.png", "input_not_found", "b")))
    for chunk in [*chunks, failed]:
        (back,) = chunks_of(chunk_table(chunk))
        assert back == chunk and back.digest() == chunk.digest()


def test_a_manifest_holds_its_chunk_until_a_failure_is_worth_reading_again():
    done = Manifest("c", "abc", 3, 3, {"corrupt_image": 1}, {"hocr": "/out/hocr"})
    docs = {"hocr": "/out/hocr"}
    assert done.holds("abc", docs, retry_failed=False)
    assert not done.holds("abd", docs, retry_failed=False)  # the listing changed
    assert not done.holds("abc", {}, retry_failed=False)  # other documents asked for
    assert not done.holds("abc", docs, retry_failed=True)
    assert not Manifest("c", "abc", 3, 3, {"timeout": 1}).holds("abc", {}, retry_failed=False)


# -- the shard stage, in this process (no cluster) ------------------------------------------


def stage_for(tmp_path: Path, **kwargs):
    pytest.importorskip("ray.data", reason="Ray Data is not installed")
    from ocrmill.distributed.shard_stage import ShardStage

    return ShardStage(str(tmp_path / "out"), str(tmp_path), engine_factory=FAKE, **kwargs)


def chunk_of(tmp_path: Path, names: list[str]) -> Chunk:
    (unit,) = plan_units(names, str(tmp_path))
    (chunk,) = unit_chunks(unit, str(tmp_path), len(names))
    return chunk


def test_a_shard_that_lacks_an_input_is_never_sealed(tmp_path, monkeypatch):
    """A record the shard could not take (a full disk, a failed write) is a failure record
    the run counts and goes on from: the chunk then raises, and neither its shard nor its
    manifest exists, so a resume reads it again."""
    from ocrmill.batch.sinks import JsonlSink
    from ocrmill.distributed.input_source import chunk_table

    write_inputs(tmp_path, {"a.png": "ok:a", "b.png": "ok:b", "c.png": "ok:c"})
    chunk = chunk_of(tmp_path, ["a.png", "b.png", "c.png"])
    stage = stage_for(tmp_path)
    write = JsonlSink.write

    def failing(self, result, task=None):
        if result.input == "b.png":
            raise OSError(28, "No space left on device")
        write(self, result, task)

    monkeypatch.setattr(JsonlSink, "write", failing)
    with pytest.raises(OSError, match="lacks 1 of its 3 inputs"):
        stage(chunk_table(chunk))
    assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file()]

    monkeypatch.setattr(JsonlSink, "write", write)
    (row,) = stage(chunk_table(chunk)).to_pylist()
    assert (row["read"], json.loads(row["failed"])) == (3, {})
    assert len(shard_records(tmp_path / "out")) == 3


def test_a_chunk_read_again_loses_its_manifest_before_its_shard_changes(tmp_path, monkeypatch):
    """--retry-failed killed between the new shard and its manifest: the old manifest must
    not vouch for the new shard (the next resume reads the chunk again)."""
    from ocrmill.distributed import shard_stage
    from ocrmill.distributed.input_source import chunk_table

    (tmp_path / "a.png").write_bytes(b"bad")
    chunk = chunk_of(tmp_path, ["a.png"])
    stage_for(tmp_path)(chunk_table(chunk))
    (manifest,) = (tmp_path / "out").rglob("*.json")
    assert json.loads(manifest.read_text())["failed"] == {"corrupt_image": 1}

    (tmp_path / "a.png").write_bytes(b"ok:fixed")

    def killed(*args: object) -> None:
        raise RuntimeError("killed before the manifest")

    monkeypatch.setattr(shard_stage, "write_manifest", killed)
    with pytest.raises(RuntimeError, match="killed before"):
        stage_for(tmp_path, resume=True, retry_failed=True)(chunk_table(chunk))
    assert not manifest.exists()
    assert [r.get("text") for r in shard_records_any(tmp_path / "out")] == ["fixed"]


def shard_records_any(out: Path) -> list[dict]:
    """Records of every shard, with or without a manifest."""
    return [
        json.loads(line)
        for p in sorted(out.rglob("*.jsonl"))
        for line in p.read_text().splitlines()
    ]


# -- on a local Ray cluster -----------------------------------------------------------------


def shard_records(out: Path) -> list[dict]:
    return [json.loads(line) for shard in shards(out) for line in shard.read_text().splitlines()]


def sharded_args(inputs: list[str], out: Path, *extra: str, engine: str = FAKE) -> list[str]:
    return ["run", "--ray", *inputs, "-o", f"{out}/", "--workers", "2", "--engine-factory", engine,
            "-q", *extra]  # fmt: skip


@pytest.mark.slow
def test_a_sharded_run_writes_every_record_once_into_shards_with_manifests(
    ray_cluster, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    paths = write_inputs(tmp_path / "in", {f"f{i:03d}.png": f"ok:text {i}" for i in range(70)})
    paths += write_inputs(tmp_path / "in", {"bad.png": "bad"})
    (tmp_path / "list.txt").write_text(
        "\n".join(os.path.relpath(p) for p in paths) + "\ngone.png\n"
    )
    out = tmp_path / "out"

    code = cli.main([*sharded_args(["@list.txt"], out), "--shard-size", "16"])

    assert code == ExitCode.SOME_INPUTS_FAILED  # bad.png and gone.png
    recs = shard_records(out)
    assert Counter(r["input"] for r in recs) == Counter([f"in/f{i:03d}.png" for i in range(70)]
                                                       + ["in/bad.png", "gone.png"])  # fmt: skip
    assert all(r["text"] == f"text {int(r['input'][4:7])}" for r in recs if r["ok"])
    manifests = [json.loads(p.with_suffix(".json").read_text()) for p in shards(out)]
    assert [m["inputs"] for m in manifests] == [16, 16, 16, 16, 8]
    assert sum(m["records"] for m in manifests) == 72
    assert Counter(c for m in manifests for c in m["failed"]) == {
        "corrupt_image": 1,
        "input_not_found": 1,
    }
    summary = json.loads((out / "run.json").read_text())
    assert summary["records_read"] == 72 and summary["failed"] == {
        "corrupt_image": 1,
        "input_not_found": 1,
    }
    # Without --resume a folder holding shards is not overwritten.
    assert cli.main(sharded_args(["@list.txt"], out)) == ExitCode.USAGE

    # Resume: the chunk holding the missing input (a transient failure) is read again.
    (tmp_path / "gone.png").write_bytes(b"ok:back")
    assert cli.main([*sharded_args(["@list.txt"], out), "--resume", "--shard-size", "16"]) == 3
    again = shard_records(out)
    assert Counter(r["input"] for r in again) == Counter(r["input"] for r in recs)
    assert {r["input"]: r.get("text") for r in again}["gone.png"] == "back"
    summary = json.loads((out / "run.json").read_text())
    # 64 in the four chunks left whole, 7 kept in the last one; only gone.png is read.
    assert (summary["records_read"], summary["records_skipped"]) == (1, 71)
    assert summary["kept_failed"] == {"corrupt_image": 1}


@pytest.mark.slow
def test_a_sharded_run_writes_every_page_of_every_document_from_the_actors(
    ray_cluster, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in").mkdir()
    for i in range(3):
        write_text_pdf(tmp_path / "in" / f"doc{i}.pdf", texts=[f"page {p}" for p in range(i + 1)])
        three_page_tiff(tmp_path / "in" / f"scan{i}.tif")
    out, hocr, pdfs = tmp_path / "out", tmp_path / "hocr", tmp_path / "pdf"
    args = sharded_args(["in"], out, "--hocr-dir", "hocr", "--pdf-dir", "pdf", engine=BOXES)

    assert cli.main([*args, "--shard-size", "2"]) == ExitCode.OK

    pages = {p.relative_to(hocr).as_posix(): p.read_text().count('class="ocr_page"')
             for p in hocr.rglob("*.hocr")}  # fmt: skip
    assert pages == {
        **{f"in/doc{i}.pdf.hocr": i + 1 for i in range(3)},
        **{f"in/scan{i}.tif.hocr": 3 for i in range(3)},
    }
    assert len(list(pdfs.rglob("*.pdf"))) == 6
    assert len(shard_records(out)) == 6 + 9


def test_what_a_dead_try_left_is_found_for_the_shard_and_for_its_manifest(tmp_path):
    """An actor killed while it wrote the shard, rewrote it on resume, or sealed it with its
    manifest leaves a temporary file of each; the next try removes them all, and nothing
    of another chunk's or the finished files."""
    left = [
        ".00000001.jsonl.ab12.tmp",
        "..00000001.jsonl.ab12.tmp.cd34.tmp",
        ".00000001.json.ef56.tmp",
    ]
    kept = ["00000001.jsonl", "00000001.json", ".00000002.jsonl.ab12.tmp", ".00000002.json.gh.tmp"]
    for name in left + kept:
        (tmp_path / name).touch()
    found = temporary_files(tmp_path / "00000001.jsonl")
    assert sorted(p.name for p in found) == sorted(left)


@pytest.mark.slow
def test_an_actor_killed_mid_chunk_leaves_every_input_exactly_once(ray_cluster, tmp_path):
    paths = write_inputs(
        tmp_path / "in", {f"s{i:02d}.png": f"slow:0.1:s{i:02d}" for i in range(48)}
    )
    (tmp_path / "list.txt").write_text("\n".join(paths) + "\n")
    out = tmp_path / "out"
    killed: list[int] = []

    def kill_one_actor_once_a_shard_is_done() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            pids = ocr_actor_pids("ShardStage")
            if pids and any(True for _ in shards(out)):
                os.kill(pids[0], signal.SIGKILL)  # as the OOM killer would, mid-chunk
                killed.append(pids[0])
            time.sleep(0.05)

    import threading

    killer = threading.Thread(target=kill_one_actor_once_a_shard_is_done, daemon=True)
    killer.start()
    code = cli.main([*sharded_args([f"@{tmp_path / 'list.txt'}"], out), "--shard-size", "8"])
    killer.join(timeout=5)

    assert killed, "no OCR actor process was found to kill"
    assert code == ExitCode.OK
    recs = shard_records(out)
    assert Counter(r["input"] for r in recs) == Counter(paths)
    assert all(r["text"] == Path(r["input"]).stem for r in recs)
    assert not list(out.rglob("*.tmp"))  # the dead try's temporary shard was removed


@pytest.mark.slow
def test_a_killed_driver_is_resumed_with_every_input_exactly_once(ray_cluster, tmp_path):
    paths = write_inputs(
        tmp_path / "in", {f"k{i:03d}.png": f"slow:0.05:k{i:03d}" for i in range(120)}
    )
    (tmp_path / "list.txt").write_text("\n".join(paths) + "\n")
    out = tmp_path / "out"
    address = ray_cluster.get_runtime_context().gcs_address
    args = ["--ray-address", address, *sharded_args([f"@{tmp_path / 'list.txt'}"], out)[2:]]
    driver = subprocess.Popen(
        [sys.executable, "-m", "ocrmill", "run", *args, "--shard-size", "8"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while sum(1 for _ in shards(out)) < 3 and time.monotonic() < deadline:
            assert driver.poll() is None, "the driver ended before it could be killed"
            time.sleep(0.05)
        driver.send_signal(signal.SIGKILL)
    finally:
        driver.wait(timeout=30)
    done_before = sum(1 for _ in shards(out))
    assert 3 <= done_before < 15, "the driver was not killed mid-run"

    code = cli.main([*sharded_args([f"@{tmp_path / 'list.txt'}"], out), "--resume",
                     "--shard-size", "8"])  # fmt: skip

    assert code == ExitCode.OK
    recs = shard_records(out)
    assert Counter(r["input"] for r in recs) == Counter(paths)
    summary = json.loads((out / "run.json").read_text())
    assert summary["records_skipped"] >= 8 * done_before  # finished chunks were not redone


@pytest.mark.slow
def test_a_resumed_run_whose_listing_shrank_or_grew_keeps_each_input_once(
    ray_cluster, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    write_inputs(tmp_path / "in", {f"g{i:02d}.png": f"ok:g{i:02d}" for i in range(40)})
    out = tmp_path / "out"
    args = [*sharded_args(["in"], out), "--shard-size", "16"]
    assert cli.main(args) == ExitCode.OK
    assert len(list(shards(out))) == 3

    for i in range(0, 40, 2):  # half the folder goes, two files arrive
        (tmp_path / "in" / f"g{i:02d}.png").unlink()
    write_inputs(tmp_path / "in", {"new1.png": "ok:new1", "new2.png": "ok:new2"})
    assert cli.main([*args, "--resume"]) == ExitCode.OK

    now = sorted(f"in/{p.name}" for p in (tmp_path / "in").iterdir())
    recs = shard_records_any(out)  # every file left, manifest or not
    assert Counter(r["input"] for r in recs) == Counter(now)
    assert len(list(shards(out))) == 2

    # Another shard size (or other inputs) would number the chunks differently: refused.
    assert cli.main([*sharded_args(["in"], out), "--resume", "--shard-size", "8"]) == 2


@pytest.mark.slow
def test_a_resume_that_asks_for_documents_writes_them_for_every_chunk(
    ray_cluster, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in").mkdir()
    for i in range(4):
        three_page_tiff(tmp_path / "in" / f"scan{i}.tif")
    out = tmp_path / "out"
    args = [*sharded_args(["in"], out, engine=BOXES), "--shard-size", "2"]
    assert cli.main(args) == ExitCode.OK
    assert cli.main([*args, "--resume", "--hocr-dir", "hocr"]) == ExitCode.OK
    assert len(list((tmp_path / "hocr").rglob("*.hocr"))) == 4
    (tmp_path / "hocr" / "in" / "scan2.tif.hocr").unlink()  # a document lost since
    assert cli.main([*args, "--resume", "--hocr-dir", "hocr"]) == ExitCode.OK
    assert len(list((tmp_path / "hocr").rglob("*.hocr"))) == 4
    assert Counter(r["page"] for r in shard_records(out)) == {0: 4, 1: 4, 2: 4}
