"""``ocrmill serve``: the HTTP API and web page over one shared worker pool."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ocrmill.cli.options import (
    add_device_options,
    add_engine_options,
    add_pool_options,
    config_from_args,
    positive_int,
    spec_from_args,
)
from ocrmill.errors import ExitCode

log = logging.getLogger("ocrmill")


def add_parser(sub: argparse._SubParsersAction) -> None:
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
        type=positive_int,
        default=32,
        metavar="N",
        help="single images accepted at once; more get 503 + Retry-After (32)",
    )
    limits.add_argument(
        "--max-pending-pages",
        type=positive_int,
        default=100_000,
        metavar="N",
        help="job pages waiting on disk across jobs; new jobs past it get 503 (100000)",
    )
    limits.add_argument(
        "--max-job-pages",
        type=positive_int,
        default=10_000,
        metavar="N",
        help="images + PDF pages in one job; more is 413 (10000)",
    )
    limits.add_argument(
        "--max-upload-mb", type=positive_int, default=64, metavar="MB", help="per file (64)"
    )
    limits.add_argument(
        "--max-job-mb", type=positive_int, default=4096, metavar="MB", help="per job (4096)"
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
    add_pool_options(serve, timeout=300.0)
    serve.add_argument(
        "--log-level",
        default="info",
        choices=("debug", "info", "warning", "error"),
        help="log level (stderr)",
    )
    add_device_options(serve)
    add_engine_options(serve)
    serve.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve OCR over HTTP (API + web page) with one shared pool of workers."""
    import os

    from ocrmill.server.app import run_server
    from ocrmill.server.settings import MIB, Limits, ServerSettings, default_data_dir

    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s: %(message)s")
    from ocrmill.batch.executor_spec import log_plan

    config = config_from_args(args)
    spec = spec_from_args(args)
    plan = spec.plan(config)
    log_plan(plan)
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
        pool=spec.pool_config(),
        data_dir=args.data_dir or default_data_dir(),
        limits=limits,
        api_key=args.api_key or os.environ.get("OCRMILL_API_KEY") or None,
        cors_origins=tuple(args.cors_origin),
        pdf_dpi=args.pdf_dpi,
    )
    run_server(settings, args.host, args.port, log_level=args.log_level)
    return ExitCode.OK
