"""Ray Data for Python users: the public names of :mod:`ocrmill.distributed` in one place.

``OcrStage`` (a callable class for ``Dataset.map_batches``), ``ocr_dataset`` (maps it with
the right actor resources), ``ActorPlan`` / ``plan_actors`` (actor sizing from the local
worker plan), ``RaySession`` and ``RayExecutor`` (``ocrmill run --ray`` through the run
layer), ``run_sharded`` (a run listed and written on the cluster, as ``ocrmill run --ray -o
DIR/``). Importing this module does not import Ray.
"""

from __future__ import annotations

from ocrmill.distributed.dataset import (
    DEFAULT_BATCH_SIZE,
    INSTALL_HINT,
    RaySession,
    import_ray,
    ocr_dataset,
    task_dataset,
)
from ocrmill.distributed.executor import RayExecutor
from ocrmill.distributed.plan import ActorPlan, gpu_fraction, plan_actors
from ocrmill.distributed.sharded import run_sharded
from ocrmill.distributed.stage import RESULT_COLUMNS, OcrStage

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "INSTALL_HINT",
    "RESULT_COLUMNS",
    "ActorPlan",
    "OcrStage",
    "RayExecutor",
    "RaySession",
    "gpu_fraction",
    "import_ray",
    "ocr_dataset",
    "plan_actors",
    "run_sharded",
    "task_dataset",
]
