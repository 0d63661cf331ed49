"""The `ocrmill` command as a user runs it: in-process through ``ocrmill.cli.main`` where a
process proves nothing more, real processes for the entry point, exit codes and imports."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from ocrmill.cli import main

from ..conftest import render_text

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_cli(
    *args: str, timeout: float = 120, env_extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "ocrmill", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    good = root / "hello.png"
    render_text("Hello from ocrmill 7", size=32).save(good)
    other = root / "second.jpg"
    render_text("Second image reads too", size=32).save(other, quality=95)
    broken = root / "broken.jpg"
    broken.write_bytes(other.read_bytes()[:300])
    return good, other, broken


def test_read_prints_text(images):
    good, _, _ = images
    proc = run_cli("read", str(good))  # the entry point itself, once
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "Hello from ocrmill 7"


def test_read_json_one_record_per_input_and_bad_file_does_not_stop(images, capsys):
    good, other, broken = images
    code = main(["read", "--json", str(good), str(broken), str(other), "missing.png"])
    out, err = capsys.readouterr()
    assert code == 3, err
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["input"] for r in records] == [str(good), str(broken), str(other), "missing.png"]
    assert [r["ok"] for r in records] == [True, False, True, False]
    assert records[1]["error"]["code"] == "corrupt_image"
    assert records[3]["error"]["code"] == "input_not_found"
    assert records[2]["text"] == "Second image reads too"
    assert "broken.jpg" in err and "missing.png" in err


def test_read_prints_every_pdf_page_in_order(tmp_path, capsys):
    from ..conftest import write_text_pdf

    pdf = tmp_path / "doc.pdf"
    write_text_pdf(pdf)
    assert main(["read", str(pdf), "--pdf-dpi", "150"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == [
        f"==> {pdf} (page 1) <==",
        "First page text",
        f"==> {pdf} (page 2) <==",
        "Second page text",
    ]


def test_the_readme_first_run_reads_the_sample_page(capsys, monkeypatch):
    """The README's main job, exactly as written, from the repository root."""
    monkeypatch.chdir(ROOT)
    assert main(["read", "examples/sample.png"]) == 0
    text = capsys.readouterr().out
    for line in ("The Mill Gazette", "Scans become text in", "rest of the run.", "Page 1 of 1"):
        assert line in text


def test_usage_errors_exit_2():
    proc = run_cli("read")
    assert proc.returncode == 2
    proc = run_cli("read", "--det-limit", "-5", "x.png")
    assert proc.returncode == 2


def test_missing_model_exits_4_naming_it(images, tmp_path, capsys):
    good, _, _ = images
    assert main(["read", "--rec-model", str(tmp_path / "absent_rec.onnx"), str(good)]) == 4
    assert "absent_rec.onnx" in capsys.readouterr().err


def test_help_is_fast_and_lazy():
    code = "import sys, ocrmill.cli; print('numpy' in sys.modules, 'onnxruntime' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.split() == ["False", "False"]


def test_version_is_printed():
    proc = run_cli("--version")
    assert proc.returncode == 0
    assert re.fullmatch(r"ocrmill \S+\n", proc.stdout), proc.stdout


def test_workers_are_planned_before_numpy_is_imported():
    # A worker pool starts as soon as its plan is made: without a GPU, planning must not
    # import numpy or an inference runtime in the parent first.
    code = (
        "import sys\n"
        "from ocrmill.config import Config\n"
        "from ocrmill.runtime.devices import Inventory\n"
        "from ocrmill.runtime.plan import plan_for\n"
        "from ocrmill.batch.executors import PoolExecutor\n"
        "plan = plan_for(Config(), 'auto', 'auto', inventory=Inventory(cpus=2, "
        "memory_available_bytes=8 << 30))\n"
        "print(plan.slots[0].device, 'numpy' in sys.modules, 'onnxruntime' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.split() == ["cpu", "False", "False"]


def test_doctor_names_the_backends_that_really_loaded(capsys):
    assert main(["doctor", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    loaded = re.search(r"engine on cpu: det=(\S+), rec=(\S+), cls=(\S+)\n", out)
    assert loaded, out
    names = {
        ("openvino", "f32"): "OpenVINO:CPU",
        ("openvino-bf16", "bf16"): "OpenVINO:CPU:bf16",
        ("openvino-int8", "int8"): "OpenVINO:CPU:int8",
        ("onnxruntime", "f32"): "CPUExecutionProvider",
    }
    for role, provider in zip(("det", "rec", "cls"), loaded.groups()):
        # The backend the measurement chose (and shows) is the one that loaded.
        chosen = re.search(
            rf"  {role} on \d+ thread\(s\): ([\w-]+), (\w+) \(cached: onnxruntime", out
        )
        assert chosen and names[chosen.groups()] == provider, out
    assert "OpenVINO CPU capabilities: " in out and "FP32" in out
    assert "workers:" in out and "device=cpu" in out
    assert re.search(r"  charset auto: Latin head first.*; rec model \S+-auto-\S+\.onnx\n", out)
    forced = run_cli("doctor", "--device", "cpu", env_extra={"OCRMILL_BACKEND_NAME": "onnxruntime"})
    assert "det=CPUExecutionProvider" in forced.stdout


def test_a_cpu_run_says_nothing_when_all_is_well(tmp_path):
    """No GPU is normal: after the first start, ``read`` and ``run``/``pdf -q`` write
    nothing on stderr, a plain ``run`` one line of plan and one of summary, and nothing but
    ``doctor`` speaks of NVML."""
    sample = os.path.join(ROOT, "examples", "sample.png")
    first = run_cli("read", sample, timeout=300)  # the first start measures backends
    assert first.returncode == 0, first.stderr
    assert "NVML" not in first.stderr
    checks = {
        "read": ["read", sample],
        "run -q": ["run", "-q", sample, "-o", str(tmp_path / "q.jsonl")],
        "pdf -q": ["pdf", "-q", sample, str(tmp_path / "q.pdf")],
    }
    for what, args in checks.items():
        proc = run_cli(*args, timeout=300)
        assert proc.returncode == 0, (what, proc.stderr)
        assert proc.stderr == "", (what, proc.stderr)
    plain = run_cli("run", sample, "-o", str(tmp_path / "p.jsonl"), timeout=300)
    assert plain.returncode == 0, plain.stderr
    lines = plain.stderr.splitlines()
    assert len(lines) == 2 and "worker" in lines[0] and "1 read" in lines[1], lines
    assert "NVML" not in plain.stderr
