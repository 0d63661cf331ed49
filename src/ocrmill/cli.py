"""The ``ocrmill`` command: subcommands, and the one place errors become exit codes.

Heavy modules (numpy, onnxruntime, the engine) are imported inside the subcommands so
``ocrmill --help`` answers instantly.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from ocrmill.errors import ConfigError, ExitCode, OcrmillError

if TYPE_CHECKING:
    from ocrmill.config import Config
    from ocrmill.runtime.pool import WorkerPool
    from ocrmill.video.filter import FilterSettings

READ_CHUNK = 8  # images per read_many call in `ocrmill read` (recognition batched across them)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def add_engine_options(parser: argparse.ArgumentParser) -> None:
    """Options that choose models and per-call settings; shared by every subcommand."""
    from ocrmill.config import PRESETS

    group = parser.add_argument_group("engine")
    group.add_argument(
        "--preset", choices=PRESETS, help="speed/accuracy preset (default: balanced)"
    )
    group.add_argument(
        "--det-limit",
        type=_positive_int,
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
        type=_positive_int,
        metavar="PX",
        help="tile pages above this long side (default 4000)",
    )
    group.add_argument(
        "--tile-size", type=_positive_int, metavar="PX", help="tile size (default 1280)"
    )
    group.add_argument(
        "--tile-overlap",
        type=_positive_int,
        metavar="PX",
        help="tile overlap, >= tallest line (default 256)",
    )
    group.add_argument("--det-model", type=Path, metavar="P", help="PP-OCR detection ONNX file")
    group.add_argument("--rec-model", type=Path, metavar="P", help="PP-OCR recognition ONNX file")
    group.add_argument(
        "--rec-dict", type=Path, metavar="P", help="character dictionary of --rec-model"
    )
    group.add_argument("--cls-model", type=Path, metavar="P", help="PP-OCR orientation ONNX file")
    group.add_argument(
        "--max-pixels", type=_positive_int, metavar="N", help="refuse images with more pixels"
    )
    group.add_argument(
        "--threads", type=int, metavar="N", help="inference threads per engine (0 = auto)"
    )


def config_from_args(args: argparse.Namespace) -> Config:
    """Defaults <- preset <- OCRMILL_* environment <- command-line flags."""
    from ocrmill.config import load_config, with_det_limit

    config = load_config(args.preset)
    read = config.read
    if args.det_limit:
        read = with_det_limit(read, args.det_limit)
    if args.det_limit_type:
        read = dataclasses.replace(
            read, det=dataclasses.replace(read.det, limit_type=args.det_limit_type)
        )
    if args.no_cls:
        read = dataclasses.replace(read, cls=dataclasses.replace(read.cls, enabled=False))
    tile_changes = {
        field: value
        for field, value in (
            ("huge", args.huge),
            ("tile_above", args.tile_above),
            ("tile_size", args.tile_size),
            ("overlap", args.tile_overlap),
        )
        if value is not None
    }
    if tile_changes:
        tile = dataclasses.replace(read.tile, **tile_changes)
        if tile.overlap >= tile.tile_size:
            raise ConfigError(
                f"--tile-overlap ({tile.overlap}) must be smaller than --tile-size ({tile.tile_size})"
            )
        read = dataclasses.replace(read, tile=tile)
    models = config.models
    for field in ("det", "rec", "cls"):
        path = getattr(args, f"{field}_model")
        if path is not None:
            models = dataclasses.replace(models, **{field: path})
    if args.rec_dict is not None:
        models = dataclasses.replace(models, rec_dict=args.rec_dict)
    decode = config.decode
    if args.max_pixels:
        decode = dataclasses.replace(decode, max_pixels=args.max_pixels)
    backend = config.backend
    if args.threads is not None:
        backend = dataclasses.replace(backend, threads=max(0, args.threads))
    return dataclasses.replace(config, read=read, models=models, decode=decode, backend=backend)


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def cmd_read(args: argparse.Namespace) -> int:
    """Read images and print their text (or one JSON record per input)."""
    from ocrmill.engine import Engine
    from ocrmill.results import PageFailure, result_to_json

    engine = Engine(config_from_args(args))
    failed = 0
    many = len(args.images) > 1
    for chunk in _chunks(args.images, READ_CHUNK):
        for result in engine.read_many(list(chunk), names=list(chunk)):
            if isinstance(result, PageFailure):
                failed += 1
                print(f"ocrmill: {result.input}: {result.code}: {result.message}", file=sys.stderr)
            if args.json:
                print(result_to_json(result), flush=True)
            elif not isinstance(result, PageFailure):
                if many:
                    print(f"==> {result.input} <==")
                print(result.text, flush=True)
    return ExitCode.SOME_INPUTS_FAILED if failed else ExitCode.OK


def _plan(args: argparse.Namespace, config: Config):
    """The worker plan for ``--device`` / ``--workers``, sized by a measured GPU footprint
    when an earlier run recorded one (see :func:`_record_footprint`)."""
    from ocrmill.backends.base import cuda_backend_name
    from ocrmill.runtime.devices import probe
    from ocrmill.runtime.plan import GPU_FOOTPRINT_ESTIMATE, plan_workers

    gpu_backend = cuda_backend_name(config.backend)
    footprint = GPU_FOOTPRINT_ESTIMATE
    if gpu_backend is not None:
        footprint = _footprints().get(_footprint_key(config, gpu_backend)) or footprint
    return plan_workers(
        probe(),
        device=args.device,
        workers=args.workers,
        gpu_backend=gpu_backend,
        footprint_bytes=footprint,
        cpu_workers=getattr(args, "cpu_workers", 0) or 0,
    )


def _footprints():
    from ocrmill.runtime.plan import FootprintCache

    return FootprintCache()


def _footprint_key(config: Config, backend: str) -> str:
    from ocrmill.models import resolve_models

    files = resolve_models(config.models)
    preset_key = f"{config.read.det.limit_side_len}/{config.read.rec.max_batch_size}"
    return _footprints().key([files.det, files.rec, files.cls], backend, preset_key)


def _record_footprint(config: Config, pool) -> None:
    """Remember the largest GPU memory a worker measured after warm-up, for the next plan."""
    from ocrmill.backends.base import cuda_backend_name

    measured = [w["gpu_bytes"] for w in pool.metrics()["workers"] if w.get("gpu_bytes")]
    backend = cuda_backend_name(config.backend)
    if measured and backend is not None:
        try:
            _footprints().put(_footprint_key(config, backend), max(measured))
        except OSError:
            pass  # a read-only home only costs the estimate next time


def _resume_keys(args: argparse.Namespace) -> set[tuple[str, int | None]]:
    """Keys of the records already in ``--output`` when ``--resume`` is given."""
    from ocrmill.batch.sinks import read_done_keys

    if not args.resume or args.output == "-":
        return set()
    done, unreadable = read_done_keys(Path(args.output))
    print(f"ocrmill: resuming: {len(done)} records already in {args.output}", file=sys.stderr)
    if unreadable:
        print(f"ocrmill: {unreadable} unreadable line(s) in {args.output} ignored", file=sys.stderr)
    return done


def cmd_run(args: argparse.Namespace) -> int:
    """Read many inputs with a pool of worker processes into a JSONL file."""

    from ocrmill.batch.progress import Progress
    from ocrmill.batch.runner import run_batch
    from ocrmill.batch.sinks import JsonlSink
    from ocrmill.runtime.pool import PoolConfig, WorkerPool

    config = config_from_args(args)
    if args.ray or args.ray_address:
        return _cmd_run_ray(args, config)
    plan = _plan(args, config)
    print(f"ocrmill: {plan.describe()}", file=sys.stderr)
    done = _resume_keys(args)
    pool_config = PoolConfig(
        task_timeout_s=args.timeout,
        max_retries=args.retries,
        max_tasks_per_worker=args.max_tasks_per_worker,
        max_worker_rss_bytes=args.max_worker_rss * 1024**2 if args.max_worker_rss else None,
        engine_factory=args.engine_factory,
    )
    progress = Progress(enabled=not args.quiet)
    pool = WorkerPool(plan, config, pool_config)
    with JsonlSink(args.output, append=args.resume) as sink:
        try:
            pool.start()
            _record_footprint(config, pool)
            summary = run_batch(
                args.inputs,
                pool,
                sink,
                done_keys=done,
                pdf_dpi=args.pdf_dpi,
                options=None,
                progress=progress,
                stdin=sys.stdin,
            )
        finally:
            pool.shutdown(wait=False, kill=True)
    print(f"ocrmill: {summary.summary_line}", file=sys.stderr)
    if summary.interrupted:
        print("ocrmill: interrupted; rerun with --resume to read the rest", file=sys.stderr)
        return ExitCode.INTERRUPTED
    return ExitCode.SOME_INPUTS_FAILED if summary.failed else ExitCode.OK


def _cmd_run_ray(args: argparse.Namespace, config: Config) -> int:
    """``ocrmill run --ray``: the same inputs, records and exit codes, read by Ray Data actors."""
    from ocrmill.batch.progress import Progress
    from ocrmill.batch.sinks import JsonlSink
    from ocrmill.distributed.ray import RaySession, import_ray, plan_actors, run_batch_on_ray
    from ocrmill.runtime.plan import parse_workers

    import_ray()  # missing: a usage error (exit 2) that says how to install it
    for flag, value in (
        ("--max-tasks-per-worker", args.max_tasks_per_worker),
        ("--max-worker-rss", args.max_worker_rss),
    ):
        if value:
            raise ConfigError(f"{flag} is not supported with --ray (Ray replaces actors itself)")
    plan = _plan(args, config)
    done = _resume_keys(args)
    progress = Progress(enabled=not args.quiet)
    with RaySession(args.ray_address) as session:
        actors = plan_actors(
            plan,
            fixed=parse_workers(args.workers) is not None,
            cluster_resources=session.cluster_resources(),
        )
        print(f"ocrmill: {actors.describe()}", file=sys.stderr)
        with JsonlSink(args.output, append=args.resume) as sink:
            summary = run_batch_on_ray(
                args.inputs,
                sink,
                actors,
                config=config,
                engine_factory=args.engine_factory,
                pdf_dpi=args.pdf_dpi,
                timeout_s=args.timeout,
                retries=args.retries,
                done_keys=done,
                progress=progress,
                stdin=sys.stdin,
            )
    print(f"ocrmill: {summary.summary_line}", file=sys.stderr)
    if summary.interrupted:
        print("ocrmill: interrupted; rerun with --resume to read the rest", file=sys.stderr)
        return ExitCode.INTERRUPTED
    return ExitCode.SOME_INPUTS_FAILED if summary.failed else ExitCode.OK


def cmd_video_filter(args: argparse.Namespace) -> int:
    """Score videos by the share of their frames text covers; keep or drop each sample."""
    import time

    from ocrmill.runtime.pool import PoolConfig, WorkerPool
    from ocrmill.video.filter import FilterSettings, video_paths
    from ocrmill.video.sampling import Sampling

    sampling = Sampling(None, args.every) if args.every is not None else Sampling(args.frames)
    settings = FilterSettings(
        sampling, args.min_ratio, args.max_ratio, args.mode, args.min_text_score
    )
    paths = video_paths(args.inputs)
    samples: list[list[str]] = [paths] if args.one_sample else [[p] for p in paths]
    config = config_from_args(args)
    plan = _plan(args, config)
    print(f"ocrmill: {plan.describe()}", file=sys.stderr)
    pool_config = PoolConfig(task_timeout_s=args.timeout, engine_factory=args.engine_factory)
    pool = WorkerPool(plan, config, pool_config)
    with _output_stream(args.output) as out:
        try:
            pool.start()
            started = time.monotonic()
            counts = _write_video_records(samples, pool, settings, out, quiet=args.quiet)
        finally:
            pool.shutdown(wait=False, kill=True)
    elapsed = max(time.monotonic() - started, 1e-9)
    videos, failed, kept, frames = counts
    print(
        f"ocrmill: {videos} videos ({failed} failed), {kept} of {len(samples)} samples kept, "
        f"{frames} frames in {elapsed:.1f} s ({frames / elapsed:.2f} frames/s)",
        file=sys.stderr,
    )
    return ExitCode.SOME_INPUTS_FAILED if failed else ExitCode.OK


def _write_video_records(
    samples: list[list[str]], pool: WorkerPool, settings: FilterSettings, out: TextIO, quiet: bool
) -> tuple[int, int, int, int]:
    """One JSONL line per video as each sample completes; returns (videos, failed, kept
    samples, frames read)."""
    import json

    from ocrmill.video.filter import iter_samples

    videos = failed = kept = frames = 0
    for sample in iter_samples(samples, pool, settings):
        kept += sample["keep"]
        for record in sample["videos"]:
            videos += 1
            failed += not record["ok"]
            frames += len(record.get("frames", ()))
            out.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
            out.flush()
            if not quiet:
                print(f"ocrmill: {_video_line(record)}", file=sys.stderr)
    return videos, failed, kept, frames


def _output_stream(path: str) -> contextlib.AbstractContextManager[TextIO]:
    if path == "-":
        return contextlib.nullcontext(sys.stdout)
    return open(path, "w", encoding="utf-8")


def _video_line(record: dict) -> str:
    if not record["ok"]:
        return f"{record['input']}: {record['error']['code']}: {record['error']['message']}"
    score = record["score"]
    verdict = "keep" if record["keep"] else "drop"
    return (
        f"{record['input']}: text area {score['mean']:.4f} (min {score['min']:.4f}, "
        f"max {score['max']:.4f}, {len(record['frames'])} frames): {verdict}"
    )


def _ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def _add_video_filter_parser(sub: argparse._SubParsersAction) -> None:
    video = sub.add_parser(
        "video-filter", help="keep or drop videos by how much of their frames text covers"
    )
    video.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="video files, or directories (recursive)"
    )
    video.add_argument("-o", "--output", required=True, help="JSONL output file ('-' = stdout)")
    how = video.add_mutually_exclusive_group()
    how.add_argument(
        "--frames",
        type=_positive_int,
        default=3,
        metavar="N",
        help="frames per video: 1 = middle, 2 = first + last, N = spread (default 3)",
    )
    how.add_argument("--every", type=float, metavar="S", help="one frame every S seconds")
    video.add_argument(
        "--min-ratio", type=_ratio, default=0.0, metavar="A", help="lowest score kept (0)"
    )
    video.add_argument(
        "--max-ratio", type=_ratio, default=1.0, metavar="B", help="highest score kept (1)"
    )
    mode = video.add_mutually_exclusive_group()
    mode.add_argument(
        "--any",
        dest="mode",
        action="store_const",
        const="any",
        help="keep a sample when any of its videos is in range (default)",
    )
    mode.add_argument(
        "--all",
        dest="mode",
        action="store_const",
        const="all",
        help="keep a sample only when all its videos are in range",
    )
    video.set_defaults(mode="any")
    video.add_argument(
        "--one-sample",
        action="store_true",
        help="all INPUTs form one sample (--any/--all apply across them); default: each "
        "video is its own sample",
    )
    video.add_argument(
        "--min-text-score",
        type=_ratio,
        default=0.0,
        metavar="S",
        help="recognition confidence a detected line needs to count (default 0: every box "
        "that reads as a character; lines taller than 0.2 of the frame need 0.9 regardless)",
    )
    video.add_argument(
        "--timeout", type=float, default=600.0, metavar="S", help="per-frame task timeout (s)"
    )
    video.add_argument("-q", "--quiet", action="store_true", help="no per-video lines on stderr")
    video.add_argument("--engine-factory", default=DEFAULT_FACTORY, help=argparse.SUPPRESS)
    add_device_options(video)
    add_engine_options(video)
    video.set_defaults(func=cmd_video_filter)


def cmd_doctor(args: argparse.Namespace) -> int:
    """Print what this machine offers, which backends really load, and the worker plan."""
    from ocrmill.backends.base import cuda_backend_name
    from ocrmill.engine import Engine
    from ocrmill.models import resolve_models
    from ocrmill.runtime.devices import probe

    inv = probe()
    print(f"ocrmill {_version()}, Python {sys.version.split()[0]}")
    print(
        f"CPUs usable: {inv.cpus}; memory available: {inv.memory_available_bytes / 1024**3:.1f} GiB"
    )
    if inv.gpus:
        for g in inv.gpus:
            print(
                f"GPU {g.index}: {g.name}, {g.free_bytes / 1024**3:.1f} of {g.total_bytes / 1024**3:.1f} GiB free"
            )
    else:
        print(f"GPUs: none ({inv.gpu_note})")
    for module in ("onnxruntime", "openvino", "torch", "onnx2torch"):
        print(f"{module}: {_module_version(module) or 'not installed'}")
    try:
        import onnxruntime as ort

        print(f"onnxruntime providers available: {', '.join(ort.get_available_providers())}")
    except ImportError:
        pass
    config = config_from_args(args)
    try:
        files = resolve_models(config.models)
        print(f"models: det={files.det}\n        rec={files.rec}\n        cls={files.cls}")
    except OcrmillError as exc:
        print(f"models: ERROR {exc.message}")
    gpu_backend = cuda_backend_name(config.backend)
    devices = ["cpu"] + (["cuda:0"] if inv.gpus and gpu_backend else [])
    for device in devices:
        # Load the engine for real: what runs is what loaded, not what was asked for.
        try:
            backend = dataclasses.replace(config.backend, device=device)
            engine = Engine(dataclasses.replace(config, backend=backend))
            loaded = ", ".join(f"{role}={'/'.join(p)}" for role, p in engine.providers.items())
            print(f"engine on {device}: {loaded}")
        except OcrmillError as exc:
            print(f"engine on {device}: ERROR {exc.message}")
    if inv.gpus and gpu_backend is None:
        print("GPU found but no CUDA backend: pip install onnxruntime-gpu, or 'ocrmill[torch]'")
    plan = _plan(args, config)  # exactly the plan `ocrmill run` would make here
    print(f"plan for device={args.device} workers={args.workers}:")
    print(plan.describe())
    return ExitCode.OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ocrmill",
        description="Read text from images with the PP-OCR models, at any scale.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    read = sub.add_parser("read", help="read images and print their text")
    read.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    read.add_argument("--json", action="store_true", help="one JSON record per input per line")
    add_engine_options(read)
    read.set_defaults(func=cmd_read)

    run = sub.add_parser("run", help="read many files, directories, globs or PDFs into JSONL")
    run.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="files, directories (recursive), globs, @list.txt (one path per line), - (stdin)",
    )
    run.add_argument("-o", "--output", required=True, help="JSONL output file ('-' = stdout)")
    run.add_argument("--resume", action="store_true", help="skip inputs already in the output")
    run.add_argument(
        "--timeout", type=float, default=600.0, metavar="S", help="per-task timeout (s)"
    )
    run.add_argument("--retries", type=int, default=1, help="retries of a task whose worker died")
    add_pool_options(run)
    run.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    run.add_argument(
        "--ray",
        action="store_true",
        help="read with Ray Data actors (pip install 'ocrmill[ray]'); a local Ray unless "
        "--ray-address",
    )
    run.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="Ray cluster to join (auto, HOST:PORT, ray://HOST:PORT); implies --ray",
    )
    run.add_argument("--engine-factory", default=DEFAULT_FACTORY, help=argparse.SUPPRESS)
    add_device_options(run)
    add_engine_options(run)
    run.set_defaults(func=cmd_run)

    doctor = sub.add_parser("doctor", help="show devices, models and the worker plan")
    add_device_options(doctor)
    add_engine_options(doctor)
    doctor.set_defaults(func=cmd_doctor)
    _add_video_filter_parser(sub)
    _add_serve_parser(sub)
    return parser


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve OCR over HTTP (API + web page) with one shared pool of workers."""
    import logging
    import os

    from ocrmill.runtime.pool import PoolConfig
    from ocrmill.server.app import run_server
    from ocrmill.server.settings import MIB, Limits, ServerSettings, default_data_dir

    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s: %(message)s")
    config = config_from_args(args)
    plan = _plan(args, config)
    print(f"ocrmill: {plan.describe()}", file=sys.stderr)
    limits = Limits(
        max_queue=args.max_queue,
        max_pending_pages=args.max_pending_pages,
        max_job_pages=args.max_job_pages,
        max_job_bytes=args.max_job_mb * MIB,
        max_upload_bytes=args.max_upload_mb * MIB,
        request_timeout_s=args.request_timeout,
        job_ttl_s=args.job_ttl,
    )
    settings = ServerSettings(
        config=config,
        plan=plan,
        pool=PoolConfig(
            task_timeout_s=args.timeout,
            max_tasks_per_worker=args.max_tasks_per_worker,
            max_worker_rss_bytes=args.max_worker_rss * MIB if args.max_worker_rss else None,
            engine_factory=args.engine_factory,
        ),
        data_dir=args.data_dir or default_data_dir(),
        limits=limits,
        api_key=args.api_key or os.environ.get("OCRMILL_API_KEY") or None,
        cors_origins=tuple(args.cors_origin),
        pdf_dpi=args.pdf_dpi,
    )
    run_server(settings, args.host, args.port, log_level=args.log_level)
    return ExitCode.OK


def _add_serve_parser(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser("serve", help="serve OCR over HTTP: JSON API and a web page")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (8000; 0 = any free port)")
    serve.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="jobs database and uploads (default $OCRMILL_DATA_DIR or ~/.local/share/ocrmill)",
    )
    serve.add_argument(
        "--api-key",
        metavar="KEY",
        help="require this key on /v1/* (better: set OCRMILL_API_KEY; flags show in ps)",
    )
    serve.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="allow browser calls from ORIGIN (repeatable; default: none)",
    )
    limits = serve.add_argument_group("limits")
    limits.add_argument(
        "--max-queue",
        type=_positive_int,
        default=32,
        metavar="N",
        help="single images accepted at once; more get 503 + Retry-After (32)",
    )
    limits.add_argument(
        "--max-pending-pages",
        type=_positive_int,
        default=100_000,
        metavar="N",
        help="job pages waiting on disk across jobs; new jobs past it get 503 (100000)",
    )
    limits.add_argument(
        "--max-job-pages",
        type=_positive_int,
        default=10_000,
        metavar="N",
        help="images + PDF pages in one job; more is 413 (10000)",
    )
    limits.add_argument(
        "--max-upload-mb", type=_positive_int, default=64, metavar="MB", help="per file (64)"
    )
    limits.add_argument(
        "--max-job-mb", type=_positive_int, default=4096, metavar="MB", help="per job (4096)"
    )
    limits.add_argument(
        "--request-timeout",
        type=float,
        default=60.0,
        metavar="S",
        help="deadline of POST /v1/ocr; 504 after it (60)",
    )
    limits.add_argument(
        "--job-ttl",
        type=float,
        default=86_400.0,
        metavar="S",
        help="seconds finished jobs and their results are kept (86400)",
    )
    limits.add_argument(
        "--timeout", type=float, default=300.0, metavar="S", help="per-task timeout in a worker"
    )
    add_pool_options(serve)
    serve.add_argument(
        "--log-level",
        default="info",
        choices=("debug", "info", "warning", "error"),
        help="log level (stderr)",
    )
    serve.add_argument("--engine-factory", default=DEFAULT_FACTORY, help=argparse.SUPPRESS)
    add_device_options(serve)
    add_engine_options(serve)
    serve.set_defaults(func=cmd_serve)


DEFAULT_FACTORY = "ocrmill.runtime.worker:build_engine"


def add_pool_options(parser: argparse.ArgumentParser) -> None:
    """Worker-pool options shared by `run` and `serve`."""
    parser.add_argument(
        "--pdf-dpi", type=_positive_int, default=200, metavar="N", help="PDF render DPI"
    )
    parser.add_argument(
        "--max-tasks-per-worker", type=_positive_int, metavar="N", help="recycle workers"
    )
    parser.add_argument(
        "--max-worker-rss", type=_positive_int, metavar="MB", help="recycle a worker above this RSS"
    )


def add_device_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("workers")
    group.add_argument("--workers", default="auto", help="worker processes: auto or N")
    group.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    group.add_argument(
        "--cpu-workers",
        type=int,
        default=0,
        metavar="N",
        help="with GPU workers: N CPU workers too, for tasks that run out of GPU memory",
    )


def _module_version(module: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(module)
    except PackageNotFoundError:
        return None


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ocrmill")
    except PackageNotFoundError:  # running from a source tree
        return "0+unknown"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ocrmill`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return ExitCode.USAGE
    try:
        return int(args.func(args))
    except OcrmillError as exc:
        print(f"ocrmill: error: {exc.message}", file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        print("ocrmill: interrupted", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)
    except BrokenPipeError:  # `ocrmill read ... | head`
        return int(ExitCode.OK)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
