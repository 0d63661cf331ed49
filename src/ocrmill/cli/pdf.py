"""``ocrmill pdf INPUT OUTPUT``: one searchable PDF from a scanned PDF or an image (every
page of a multi-page TIFF), read by the worker pool like ``ocrmill run``."""

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
)
from ocrmill.errors import DocumentError, ExitCode
from ocrmill.results import PageFailure, Result
from ocrmill.tasks import Task

if TYPE_CHECKING:
    from ocrmill.outputs.writer import DocumentWriter

log = logging.getLogger("ocrmill")


def add_parser(sub: argparse._SubParsersAction) -> None:
    pdf = sub.add_parser(
        "pdf", help="make a searchable PDF from a scanned PDF or an image (multi-page TIFF)"
    )
    pdf.add_argument("input", metavar="INPUT", help="a PDF, or an image (JPEG, PNG, TIFF, ...)")
    pdf.add_argument("output", metavar="OUTPUT", help="the searchable PDF to write")
    pdf.add_argument(
        "--force-ocr",
        action="store_true",
        help="add a text layer also to pages that already carry text (born-digital pages)",
    )
    add_verbosity_options(pdf, quiet_help="nothing on stderr but warnings and errors")
    add_pool_options(pdf)
    add_device_options(pdf)
    add_engine_options(pdf)
    pdf.set_defaults(func=cmd_pdf)


class _PageSink:
    """Adds each page's record to the document as it arrives; remembers failures."""

    def __init__(self, writer: DocumentWriter) -> None:
        self.writer = writer
        self.failed: list[PageFailure] = []

    def write(self, result: Result, task: Task | None = None) -> None:
        self.writer.add(result, task.page if task is not None else None)
        if isinstance(result, PageFailure):
            self.failed.append(result)

    def close(self) -> None:
        pass


def _plan(path: str, force_ocr: bool, dpi: int) -> tuple[bool, list[Task], set[int]]:
    """Whether ``path`` is a PDF, its pages as tasks (the one page expansion of
    :func:`~ocrmill.batch.sources.document_tasks`), and the pages that already carry text
    (none with ``force_ocr``). Raises DocumentError naming the file when it cannot be
    read."""
    from ocrmill.batch.sources import document_tasks
    from ocrmill.outputs.pdf import pages_with_text
    from ocrmill.pipeline.pdf import is_pdf

    source_is_pdf = is_pdf(path)
    tasks = list(document_tasks(path, pdf_dpi=dpi))
    if len(tasks) == 1 and tasks[0].failure is not None:
        raise DocumentError(tasks[0].failure.message)
    try:
        with_text = pages_with_text(path) if source_is_pdf and not force_ocr else set()
    except Exception as exc:  # pdfium refusing the file
        raise DocumentError(f"{path}: cannot be read: {type(exc).__name__}: {exc}") from None
    return source_is_pdf, tasks, with_text


def cmd_pdf(args: argparse.Namespace) -> int:
    """OCR every page and write the input again with an invisible text layer."""
    from ocrmill.cli.doctor import version
    from ocrmill.outputs.writer import DocumentWriter

    path = args.input
    if not os.path.isfile(path):
        raise DocumentError(f"{path}: no such file")
    if os.path.abspath(path) == os.path.abspath(args.output):
        raise DocumentError(f"{args.output}: the output must not overwrite the input")
    config = config_from_args(args)
    # The workers load their models while this process looks at the input.
    executor = executor_from_args(args, config, wait_ready=False)
    writer: DocumentWriter | None = None
    try:
        from ocrmill.batch import run
        from ocrmill.batch.progress import default_progress

        source_is_pdf, tasks, with_text = _plan(path, args.force_ocr, args.pdf_dpi)
        count = len(tasks)
        writer = DocumentWriter(
            "pdf",
            path,
            source=path,
            is_pdf=source_is_pdf,
            pages=count,
            software=f"ocrmill {version()}",
            max_pixels=config.decode.max_pixels,
        )
        writer.open()  # an input that cannot be made searchable fails now, before reading
        if with_text:
            log.info(
                "%d of %d pages already carry text and are kept as they are (--force-ocr "
                "adds a layer anyway): %s",
                len(with_text),
                count,
                ", ".join(str(p + 1) for p in sorted(with_text)),
            )
        sink = _PageSink(writer)
        summary = run(
            [task for task in tasks if task.page not in with_text],
            sink,
            config=config,
            executor=executor,
            progress=default_progress(args.quiet),
        )
        executor.close()  # the workers' memory is not needed while the file is written
        if summary.interrupted:
            log.info("interrupted: %s not written", args.output)
            return int(ExitCode.INTERRUPTED)
        writer.save(args.output)
    finally:
        if writer is not None:
            writer.close()
        executor.close()
    for failure in sorted(sink.failed, key=lambda f: f.page or 0):
        where = f"page {failure.page + 1}" if failure.page is not None else "the image"
        print(
            f"ocrmill: {where}: {failure.code}: {failure.message} (kept without a text layer)",
            file=sys.stderr,
        )
    log.info(
        "%s: %d page(s) with a text layer, %d kept as they were, %d failed",
        args.output,
        count - len(with_text) - len(sink.failed),
        len(with_text),
        len(sink.failed),
    )
    return int(ExitCode.SOME_INPUTS_FAILED if sink.failed else ExitCode.OK)
