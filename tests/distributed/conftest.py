"""One local Ray cluster for the distributed tests (started by the first test that asks)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NO_RAY = "Ray Data is not installed (pip install 'ocrmill[ray]')"


@pytest.fixture(scope="package")
def ray_cluster():
    ray = pytest.importorskip("ray", reason=NO_RAY)
    pytest.importorskip("ray.data", reason=NO_RAY)
    # Every worker of every job imports the fault engines as `tests.fault.engines`: the
    # cluster's own processes get the path too, for drivers started in subprocesses.
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), before]))
    try:
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            logging_level="warning",
            runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}},
        )
    finally:
        if before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = before
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        yield ray
    finally:
        ray.shutdown()
