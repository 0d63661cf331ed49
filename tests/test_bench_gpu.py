"""The GPU benchmark script runs end to end (as a CPU dry run: CI has no GPU)."""

from __future__ import annotations

import json

import pytest

from .conftest import render_page

pytestmark = pytest.mark.slow


def test_gpu_benchmark_dry_run_on_cpu(tmp_path):
    from benchmarks import gpu_throughput

    docs = tmp_path / "docs"
    docs.mkdir()
    with (docs / "labels.jsonl").open("w") as fh:
        for i in range(2):
            render_page([f"Page {i} total 12.50"], size=24, width=400).save(docs / f"p{i}.png")
            fh.write(json.dumps({"image": f"docs/p{i}.png", "source": "t", "lines": []}) + "\n")
    out = tmp_path / "report.md"
    args = ["--labels", str(docs / "labels.jsonl"), "--repeat", "1", "--workers", "1"]
    assert gpu_throughput.main([*args, "--dry-run-on-cpu", "--out", str(out)]) == 0
    report = out.read_text()
    rows = [line for line in report.splitlines() if line.startswith("| 1 worker")]
    assert len(rows) == 3 and all(row.endswith("| 2/2 |") for row in rows)
    assert "1.0x" in rows[0]


def test_gpu_benchmark_without_a_gpu_says_so(tmp_path, monkeypatch):
    from benchmarks import gpu_throughput

    from ocrmill.runtime import devices

    monkeypatch.setattr(devices, "probe_gpus", lambda: ((), "NVML Shared Library Not Found"))
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "labels.jsonl").write_text("")
    with pytest.raises(SystemExit, match="no GPU: NVML Shared Library Not Found"):
        gpu_throughput.main(["--labels", str(docs / "labels.jsonl")])
