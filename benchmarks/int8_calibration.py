"""Measure the activation ranges the int8 models are built from (``ocrmill/backends/int8.py``).

    python -m benchmarks.int8_calibration [--roles rec] [--rows 300] [--data DIR]
                                          [--unlabeled ../shared/data/docs/unlabeled]

The calibration pages are ones the accuracy benchmarks never score: the dev split of the
real-page set (``benchmarks/real_pages.py --build`` makes it) and the unlabeled document
images of the shared data. ocrmill reads them at f32 (ONNX Runtime) while the inputs its
models are given are recorded; ``--rows`` of them (per role, drawn with a fixed seed) are run
through ONNX Runtime's MinMax calibrator on the model prepared as ``int8.py`` prepares it,
and the ranges of the tensors around its convolutions and matrix products are written to
``src/ocrmill/backends/int8_ranges/<model>.json``, with the fingerprint the model is matched
by. Which convolutions stay f32 (``f32_nodes``) is not calibrated but measured, by page
CER with and without them quantized, and kept when the ranges are measured again. The int8
model's accuracy is then measured like any other change: the labelled images
(``benchmarks.eval_docs``, ``benchmarks.run_throughput``) and the real-page set
(``benchmarks.real_pages``), with ``OCRMILL_BACKEND_NAME=openvino`` and
``OCRMILL_BACKEND_OPENVINO_PRECISION=int8`` against ``f32``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.real_pages import DEFAULT_DATA, image_name, load_manifest

ROOT = Path(__file__).resolve().parents[1]
RANGES_DIR = ROOT / "src" / "ocrmill" / "backends" / "int8_ranges"
DEFAULT_UNLABELED = ROOT.parent / "shared" / "data" / "docs" / "unlabeled"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}


class Recording:
    """A backend that keeps a copy of every row it is given, then runs the real one."""

    def __init__(self, backend: Any, rows: list[np.ndarray]) -> None:
        self._backend = backend
        self.rows = rows

    def _keep(self, batch: np.ndarray) -> None:
        self.rows.extend(np.array(row[None], copy=True) for row in batch)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._backend, name)
        if name in ("run", "run_all", "run_top1"):

            def recorded(batch: np.ndarray, *args: Any, **kwargs: Any) -> Any:
                self._keep(batch)
                return attr(batch, *args, **kwargs)

            return recorded
        return attr


def calibration_pages(data: Path, unlabeled: Path) -> list[Path]:
    pages = [data / image_name(p) for p in load_manifest()["pages"] if p["split"] == "dev"]
    missing = [p for p in pages if not p.is_file()]
    if missing:
        sys.exit(f"{len(missing)} dev pages missing in {data}: run benchmarks.real_pages --build")
    if unlabeled.is_dir():
        pages += sorted(p for p in unlabeled.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    return pages


def record_inputs(pages: list[Path], roles: list[str]) -> tuple[dict[str, list], Any]:
    from ocrmill.config import BackendConfig, Config
    from ocrmill.engine import Engine

    engine = Engine(Config(backend=BackendConfig(name="onnxruntime")))
    rows: dict[str, list[np.ndarray]] = {role: [] for role in roles}
    for role in roles:
        attr = f"_{role}"
        setattr(engine, attr, Recording(getattr(engine, attr), rows[role]))
    for page in pages:
        engine.read(str(page))
        print(f"{page.name}: {', '.join(f'{r} {len(v)}' for r, v in rows.items())}")
    return rows, engine


def measure_ranges(model_path: Path, rows: list[np.ndarray]) -> tuple[str, dict[str, list]]:
    import onnx
    from onnxruntime.quantization.calibrate import CalibrationMethod, create_calibrator

    from ocrmill.backends.int8 import activations, prepared, weights_fingerprint

    model = onnx.load(str(model_path))
    fingerprint = weights_fingerprint(model)
    model = prepared(model)
    name = model.graph.input[0].name
    wanted = {t for tensors in activations(model).values() for t in tensors}
    with tempfile.TemporaryDirectory(prefix="ocrmill-calib-") as tmp:
        source = Path(tmp) / "model.onnx"
        onnx.save(model, str(source))
        calibrator = create_calibrator(
            source,
            augmented_model_path=str(Path(tmp) / "augmented.onnx"),
            calibrate_method=CalibrationMethod.MinMax,
            # Ranges merged every few inputs: a page's detector activations take GBs.
            extra_options={"max_intermediate_outputs": 4},
        )
        feed = iter(rows)

        class Reader:
            def get_next(self) -> dict[str, np.ndarray] | None:
                row = next(feed, None)
                return None if row is None else {name: row}

        calibrator.collect_data(Reader())
        measured = calibrator.compute_data()
    ranges = {
        k: [float(np.ravel(v.range_value[0])[0]), float(np.ravel(v.range_value[1])[0])]
        for k, v in measured.data.items()
        if k in wanted
    }
    return fingerprint, dict(sorted(ranges.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--roles", default="rec", help="comma-separated: rec, det")
    parser.add_argument("--rows", type=int, default=300, help="inputs per role")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--unlabeled", type=Path, default=DEFAULT_UNLABELED)
    args = parser.parse_args()
    roles = [r for r in args.roles.split(",") if r]
    pages = calibration_pages(args.data.expanduser(), args.unlabeled)
    rows, engine = record_inputs(pages, roles)
    from ocrmill.models import resolve_models

    shipped = resolve_models(engine.config.models)
    RANGES_DIR.mkdir(parents=True, exist_ok=True)
    for role in roles:
        model_path = Path(getattr(engine.files, role))
        random.Random(0).shuffle(rows[role])
        chosen = rows[role][: args.rows]
        fingerprint, ranges = measure_ranges(model_path, chosen)
        out = RANGES_DIR / f"{Path(getattr(shipped, role)).stem}.json"
        record = {
            "model": f"{Path(getattr(shipped, role)).name} (as the engine loads it: "
            f"{model_path.name})",
            "fingerprint": fingerprint,
            "method": "MinMax",
            "calibrated_on": (
                f"{len(chosen)} of {len(rows[role])} {role} inputs from {len(pages)} "
                "pages: the real-page set's dev split and the unlabeled document images"
            ),
        }
        if out.is_file():  # which nodes stay f32 is measured, not calibrated: kept as it is
            earlier = json.loads(out.read_text())
            record.update({k: earlier[k] for k in ("f32_nodes", "f32_why") if k in earlier})
        lines = [f" {json.dumps(k)}: {json.dumps(v)}," for k, v in record.items()]
        lines += [f"  {json.dumps(k)}: {json.dumps(v)}," for k, v in ranges.items()]
        lines[-1] = lines[-1].rstrip(",")
        text = "\n".join(["{", *lines[: len(record)], ' "ranges": {', *lines[len(record) :]])
        out.write_text(text + "\n }\n}\n")  # one range per line
        print(f"{role}: {len(ranges)} ranges from {len(chosen)} inputs -> {out}")


if __name__ == "__main__":
    main()
