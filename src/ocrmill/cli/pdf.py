"""``ocrmill pdf INPUT OUTPUT``: one searchable PDF from a scanned PDF or an image (every
page of a multi-page TIFF), read by the worker pool like ``ocrmill run``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ocrmill.cli.options import (
    add_device_options,
    add_engine_options,
    add_pool_options,
    config_from_args,
    executor_from_args,
)
from ocrmill.errors import DocumentError, ExitCode
from ocrmill.results import PageFailure, PageResult, Result
from ocrmill.tasks import Task

if TYPE_CHECKING:
    from ocrmill.outputs.pdf import LayeredPdf

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
    pdf.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    add_pool_options(pdf, timeout=600.0)
    add_device_options(pdf)
    add_engine_options(pdf)
    pdf.set_defaults(func=cmd_pdf)


class _LayerSink:
    """Adds each page's layer to the document as its record arrives; remembers failures."""

    def __init__(self, document: LayeredPdf) -> None:
        self.document = document
        self.failed: list[PageFailure] = []

    def write(self, result: Result, task: Task | None = None) -> None:
        if isinstance(result, PageResult):
            page = task.page if task is not None and task.page is not None else 0
            self.document.add_layer(page, result)
        else:
            self.failed.append(result)

    def close(self) -> None:
        pass


def _tasks(path: str, is_pdf: bool, count: int, skip: set[int], dpi: int) -> Iterator[Task]:
    """The pages to read: a PDF's (the one page expansion) less ``skip``, or the image's
    frames."""
    from ocrmill.batch.sources import pdf_tasks

    if is_pdf:
        yield from (t for t in pdf_tasks(path, pdf_dpi=dpi) if t.page not in skip)
        return
    for frame in range(count):
        yield Task(0, path, path, "image", frame if count > 1 else None, pages=count)


def _open_input(path: str, force_ocr: bool) -> tuple[bool, int, LayeredPdf, set[int]]:
    """Whether ``path`` is a PDF, its page count, the document to add layers to, and the
    pages that already carry text (none with ``force_ocr``). Raises DocumentError naming
    the file when it cannot be read."""
    from ocrmill.outputs.pdf import LayeredPdf, pages_with_text
    from ocrmill.pipeline.decode import page_count
    from ocrmill.pipeline.pdf import is_pdf, pdf_page_count

    source_is_pdf = is_pdf(path)
    try:
        # A PDF must open for the renderer (pdfium), not only for qpdf, which repairs more.
        count = pdf_page_count(path) if source_is_pdf else page_count(path, name=path)
        with_text = pages_with_text(path) if source_is_pdf and not force_ocr else set()
        document = LayeredPdf.open(path, is_pdf=source_is_pdf, pages=count)
    except DocumentError:
        raise
    except Exception as exc:  # pdfium or Pillow refusing the file
        message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        raise DocumentError(f"{path}: cannot be read: {message}") from None
    return source_is_pdf, count, document, with_text


def cmd_pdf(args: argparse.Namespace) -> int:
    """OCR every page and write the input again with an invisible text layer."""
    path = args.input
    if not os.path.isfile(path):
        raise DocumentError(f"{path}: no such file")
    if os.path.abspath(path) == os.path.abspath(args.output):
        raise DocumentError(f"{args.output}: the output must not overwrite the input")
    config = config_from_args(args)
    # The workers load their models while this process looks at the input.
    executor = executor_from_args(args, config, wait_ready=False)
    try:
        from ocrmill.batch import run
        from ocrmill.batch.progress import default_progress

        source_is_pdf, count, document, with_text = _open_input(path, args.force_ocr)
        try:
            if with_text:
                log.info(
                    "%d of %d pages already carry text and are kept as they are (--force-ocr "
                    "adds a layer anyway): %s",
                    len(with_text),
                    count,
                    ", ".join(str(p + 1) for p in sorted(with_text)),
                )
            sink = _LayerSink(document)
            summary = run(
                _tasks(path, source_is_pdf, count, with_text, args.pdf_dpi),
                sink,
                config=config,
                executor=executor,
                progress=default_progress(args.quiet),
            )
            executor.close()  # the workers' memory is not needed while the file is written
            if summary.interrupted:
                log.info("interrupted: %s not written", args.output)
                return int(ExitCode.INTERRUPTED)
            document.save(args.output)
        finally:
            document.close()
    finally:
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
