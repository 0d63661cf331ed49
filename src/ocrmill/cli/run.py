"""``ocrmill run``: many inputs into JSONL through the run layer, on the local worker pool,
in this process (``--workers 0``) or on Ray (``--ray``)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import TYPE_CHECKING

from ocrmill.cli.options import (
    add_device_options,
    add_engine_options,
    add_pool_options,
    add_verbosity_options,
    config_from_args,
    executor_from_args,
    positive_int,
)
from ocrmill.distributed.shards import DEFAULT_CHUNK_SIZE
from ocrmill.errors import ConfigError
from ocrmill.tasks import DEFAULT_RETRIES

if TYPE_CHECKING:
    from ocrmill.batch.api import Output, RunSummary
    from ocrmill.batch.files import FileFormat
    from ocrmill.config import Config

log = logging.getLogger("ocrmill")


def add_parser(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser("run", help="read many files, directories, globs or PDFs into JSONL")
    run.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="files, directories (recursive), globs, @list.txt (one path per line), - (stdin)",
    )
    run.add_argument(
        "-o",
        "--output",
        help="JSONL output file ('-' = stdout); with --ray, a folder (DIR/) gets shards "
        "written by the actors",
    )
    files = run.add_argument_group(
        "document files", "one file per input (all its pages) in a folder, beside or instead of -o"
    )
    for fmt, what in (
        ("pdf", "searchable PDFs"),
        ("hocr", "hOCR (.hocr)"),
        ("alto", "ALTO v4 XML (.xml)"),
        ("text", "plain text (.txt; pages separated by form feeds)"),
    ):
        files.add_argument(f"--{fmt}-dir", metavar="DIR", help=f"write {what} into DIR")
    run.add_argument(
        "--shard-size",
        type=positive_int,
        default=DEFAULT_CHUNK_SIZE,
        metavar="N",
        help=f"with --ray -o DIR/: inputs per shard ({DEFAULT_CHUNK_SIZE}); a shard is the unit "
        "of resume",
    )
    run.add_argument(
        "--resume",
        action="store_true",
        help="skip inputs already in the output; read again those that failed in a way that "
        "may not happen again (timeout, worker_crashed, input_not_found, resource_limit)",
    )
    run.add_argument(
        "--retry-failed",
        action="store_true",
        help="resume, reading again every input whose record is a failure",
    )
    run.add_argument(
        "--retries",
        type=int,
        default=DEFAULT_RETRIES,
        help=f"retries of a task whose worker died or timed out ({DEFAULT_RETRIES})",
    )
    add_pool_options(run)
    add_verbosity_options(
        run, quiet_help="no progress, plan or summary on stderr (warnings and errors only)"
    )
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
    add_device_options(run)
    add_engine_options(run)
    run.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    """Read many inputs into a JSONL file; the exit code says how it went."""
    from ocrmill.batch import run
    from ocrmill.batch.progress import default_progress

    config = config_from_args(args)
    if _is_folder(args.output):
        return _cmd_run_sharded(args, config)
    outputs = _outputs(args, config.decode.max_pixels)
    # Local workers load their models while the run lists its inputs.
    executor = executor_from_args(args, config, wait_ready=False)
    try:
        summary = run(
            args.inputs,
            outputs,
            config=config,
            executor=executor,
            progress=default_progress(args.quiet),
            resume=args.resume or args.retry_failed,
            retry_failed=args.retry_failed,
            pdf_dpi=args.pdf_dpi,
            stdin=sys.stdin,
        )
    finally:
        executor.close()
    return _report(summary)


def _report(summary: RunSummary) -> int:
    # Failures are worth a line even with -q (each is a record in the output).
    log.log(logging.WARNING if summary.exit_code else logging.INFO, "%s", summary.line)
    if summary.interrupted:
        log.warning("interrupted; rerun with --resume to read the rest")
    return int(summary.exit_code)


def _is_folder(output: str | None) -> bool:
    """Is ``-o`` a folder (``DIR/``, or one that exists): a sharded Ray run's output?"""
    if not output or output == "-":
        return False
    return output.endswith(("/", os.sep)) or os.path.isdir(output)


def _cmd_run_sharded(args: argparse.Namespace, config: Config) -> int:
    """``run --ray ... -o DIR/``: the actors list the inputs, read them and write shards
    and documents (see :mod:`ocrmill.distributed.sharded`)."""
    from ocrmill.cli.doctor import version

    if not (args.ray or args.ray_address):
        raise ConfigError(
            f"-o {args.output}: a folder output holds the shards of a Ray run (add --ray); "
            "without Ray give a .jsonl file"
        )
    documents = _document_dirs(args)
    from ocrmill.distributed.executor import RayExecutor

    executor = executor_from_args(args, config)
    assert isinstance(executor, RayExecutor)
    try:
        summary = executor.write_shards(
            args.inputs,
            args.output,
            documents=documents,
            resume=args.resume or args.retry_failed,
            retry_failed=args.retry_failed,
            pdf_dpi=args.pdf_dpi,
            chunk_size=args.shard_size,
            quiet=args.quiet,
            software=f"ocrmill {version()}",
        )
    finally:
        executor.close()
    return _report(summary)


def _outputs(args: argparse.Namespace, max_pixels: int) -> list[Output]:
    """The JSONL output and the document folders asked for (at least one is needed);
    images embedded in searchable PDFs are held to ``max_pixels`` as images read are."""
    from ocrmill.batch.files import DocumentFiles
    from ocrmill.cli.doctor import version

    outputs: list[Output] = [args.output] if args.output else []
    software = f"ocrmill {version()}"
    for fmt, folder in _document_dirs(args).items():
        outputs.append(DocumentFiles(folder, fmt, software=software, max_pixels=max_pixels))
    if not outputs:
        raise ConfigError(
            "say where results go: -o FILE.jsonl and/or --pdf-dir/--hocr-dir/"
            "--alto-dir/--text-dir DIR"
        )
    return outputs


def _document_dirs(args: argparse.Namespace) -> dict[FileFormat, str]:
    """The document folders asked for (``--pdf-dir`` ...), by format."""
    formats: tuple[FileFormat, ...] = ("pdf", "hocr", "alto", "text")
    return {fmt: getattr(args, f"{fmt}_dir") for fmt in formats if getattr(args, f"{fmt}_dir")}
