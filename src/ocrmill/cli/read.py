"""``ocrmill read``: read images (and PDF pages) in this process and print their text or
records, in input order."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, TextIO

from ocrmill.cli.options import (
    add_engine_options,
    add_pdf_dpi_option,
    add_verbosity_options,
    config_from_args,
)
from ocrmill.results import PageFailure, Result, result_to_json
from ocrmill.tasks import Task

if TYPE_CHECKING:
    from ocrmill.outputs.writer import DocumentAssembler, DocumentFormat

READ_BATCH = 8  # inputs per engine call (recognition batched across them)


def add_parser(sub: argparse._SubParsersAction) -> None:
    read = sub.add_parser("read", help="read images or PDFs and print their text")
    read.add_argument(
        "images", nargs="+", metavar="INPUT", help="image or PDF files (also directories, globs)"
    )
    read.add_argument(
        "--format",
        choices=("text", "json", "hocr", "alto"),
        default="text",
        help="text (default); json: one record per page per line; hocr / alto: one document "
        "per input (all its pages)",
    )
    read.add_argument("--json", action="store_true", help="the same as --format json")
    add_pdf_dpi_option(read)
    add_verbosity_options(read, quiet_help="no messages on stderr but warnings and errors")
    add_engine_options(read)
    read.set_defaults(func=cmd_read)


class PrintSink:
    """Prints each record as it comes: its text (with a ``==> name <==`` header when there
    are several inputs) or its JSON line; or, for hOCR and ALTO, each input's document once
    its last page is read. A failure is also one line on stderr."""

    def __init__(
        self, *, fmt: str, headers: bool, out: TextIO, err: TextIO, max_pixels: int
    ) -> None:
        self.fmt = fmt
        self.headers = headers
        self.out = out
        self.err = err
        self._documents: DocumentAssembler | None = None
        if fmt in ("hocr", "alto"):
            from ocrmill.cli.doctor import version
            from ocrmill.outputs.writer import DocumentAssembler  # here: `--help` stays light

            software = f"ocrmill {version()}"
            kind: DocumentFormat = "hocr" if fmt == "hocr" else "alto"
            self._documents = DocumentAssembler(kind, software=software, max_pixels=max_pixels)

    def write(self, result: Result, task: Task | None = None) -> None:
        if isinstance(result, PageFailure):
            where = f" (page {result.page + 1})" if result.page is not None else ""
            print(f"ocrmill: {result.input}{where}: {result.code}: {result.message}", file=self.err)
        if self._documents is not None:
            writer = self._documents.add(result, task)
            if writer is not None:
                try:
                    self.out.write(writer.render())
                    self.out.flush()
                finally:
                    writer.close()
        elif self.fmt == "json":
            print(result_to_json(result), file=self.out, flush=True)
        elif not isinstance(result, PageFailure):
            if self.headers:
                where = f" (page {result.page + 1})" if result.page is not None else ""
                print(f"==> {result.input}{where} <==", file=self.out)
            print(result.text, file=self.out, flush=True)

    def close(self) -> None:
        if self._documents is not None:
            self._documents.close()
        self.out.flush()


def cmd_read(args: argparse.Namespace) -> int:
    """Read inputs in this process (no worker pool) and print them in order."""
    from ocrmill.batch import run
    from ocrmill.batch.executors import SerialExecutor

    config = config_from_args(args)
    headers = len(args.images) > 1 or not _one_image(args.images[0])
    fmt = "json" if args.json else args.format
    sink = PrintSink(
        fmt=fmt,
        headers=headers,
        out=sys.stdout,
        err=sys.stderr,
        max_pixels=config.decode.max_pixels,
    )
    summary = run(
        args.images,
        sink,
        config=config,
        executor=SerialExecutor(config, batch=READ_BATCH),
        pdf_dpi=args.pdf_dpi,
    )
    return int(summary.exit_code)


def _one_image(spec: str) -> bool:
    """Is this input one image file (bare text), not a PDF, directory or glob (headers)?"""
    import os

    from ocrmill.pipeline.pdf import is_pdf

    return os.path.isfile(spec) and not is_pdf(spec)
