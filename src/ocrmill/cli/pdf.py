"""``ocrmill pdf INPUT OUTPUT``: one searchable PDF from a scanned PDF or an image (every
page of a multi-page TIFF), read by the worker pool like ``ocrmill run``. The pages to read
are chosen here (``--pages``, pages that already carry text); the document is made by
:class:`~ocrmill.outputs.writer.DocumentWriter` as :mod:`ocrmill.cli.pdf_options` say, and
the files around it are :mod:`ocrmill.cli.pdf_files`'s."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ocrmill.cli.options import (
    add_device_options,
    add_engine_options,
    add_pool_options,
    add_verbosity_options,
    config_from_args,
    executor_from_args,
)
from ocrmill.cli.pdf_files import STDIN_NAME, STDIO, PdfFiles, check_writable, copy_to_stdout
from ocrmill.cli.pdf_options import add_document_options, pdf_options_from_args
from ocrmill.errors import ConfigError, DocumentError, ExitCode
from ocrmill.results import PageFailure, Result
from ocrmill.tasks import Task

if TYPE_CHECKING:
    from ocrmill.outputs.writer import DocumentWriter

STDOUT_NAME = "<stdout>"

log = logging.getLogger("ocrmill")


def add_parser(sub: argparse._SubParsersAction) -> None:
    pdf = sub.add_parser(
        "pdf", help="make a searchable PDF from a scanned PDF or an image (multi-page TIFF)"
    )
    pdf.add_argument(
        "input",
        metavar="INPUT",
        help="a PDF, or an image (JPEG, PNG, TIFF, ...); '-': read it from standard input",
    )
    pdf.add_argument(
        "output", metavar="OUTPUT", help="the searchable PDF to write; '-': standard output"
    )
    existing = pdf.add_mutually_exclusive_group()
    existing.add_argument(
        "--force-ocr",
        action="store_true",
        help="add a text layer also to pages that already carry text (born-digital pages)",
    )
    existing.add_argument(
        "--redo-ocr",
        action="store_true",
        help="pages that carry text: drop their earlier invisible OCR layer (ours or another "
        "tool's) and write a new one; visible text stays and is not read again",
    )
    add_document_options(pdf)
    add_verbosity_options(pdf, quiet_help="nothing on stderr but warnings and errors")
    add_pool_options(pdf)
    add_device_options(pdf)
    add_engine_options(pdf)
    pdf.set_defaults(func=cmd_pdf)


class _PageSink:
    """Adds each page's record to the document (and the sidecar's text) as it arrives;
    remembers failures."""

    def __init__(self, writers: list[DocumentWriter]) -> None:
        self.writers = writers
        self.failed: list[PageFailure] = []

    def write(self, result: Result, task: Task | None = None) -> None:
        for writer in self.writers:
            writer.add(result, task.page if task is not None else None)
        if isinstance(result, PageFailure):
            self.failed.append(result)

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class _Plan:
    """What one run reads: whether the input is a PDF, its page count, the tasks of the
    pages to read, and the pages kept as they are because they already carry text."""

    source_is_pdf: bool
    count: int
    tasks: list[Task]
    with_text: set[int]


def _plan(path: str, name: str, args: argparse.Namespace, files: PdfFiles) -> _Plan:
    """The pages of ``path`` (the input ``name``) to read: those ``--pages`` selects (the
    others are neither rendered nor looked at), less those that already carry text (none
    with ``--force-ocr``; with ``--redo-ocr`` those are read from a copy without their
    text). Raises DocumentError naming the input when it cannot be read."""
    from ocrmill.batch.sources import document_tasks
    from ocrmill.outputs.pdf import pages_with_text
    from ocrmill.outputs.pdf_strip import save_without_text
    from ocrmill.pipeline.pdf import is_pdf

    source_is_pdf = is_pdf(path)
    tasks = list(document_tasks(path, name, pdf_dpi=args.pdf_dpi))
    if len(tasks) == 1 and tasks[0].failure is not None:
        raise DocumentError(tasks[0].failure.message)
    count = len(tasks)
    selected = set(range(count)) if args.pages is None else args.pages.select(count, name)
    with_text: set[int] = set()
    if source_is_pdf and not args.force_ocr:
        try:
            with_text = pages_with_text(path, selected)
        except Exception as exc:  # pdfium refusing the file
            raise DocumentError(f"{name}: cannot be read: {type(exc).__name__}: {exc}") from None
    if args.redo_ocr and with_text:
        textless = files.path("without-text.pdf")
        save_without_text(path, textless, with_text)
        tasks = list(document_tasks(str(textless), name, pdf_dpi=args.pdf_dpi))
        with_text = set()
    chosen = [task for task in tasks if (task.page or 0) in selected - with_text]
    return _Plan(source_is_pdf, count, chosen, with_text)


def _check_paths(args: argparse.Namespace) -> None:
    """Usage errors found before anything is read."""
    if args.output == STDIO and args.sidecar == STDIO:
        raise ConfigError("--sidecar -: standard output already carries the PDF (OUTPUT is -)")
    check_writable(args.output, "output")
    if args.sidecar is not None:
        check_writable(args.sidecar, "--sidecar")
    if STDIO not in (args.input, args.output) and (
        os.path.abspath(args.input) == os.path.abspath(args.output)
    ):
        raise DocumentError(f"{args.output}: the output must not overwrite the input")


def cmd_pdf(args: argparse.Namespace) -> int:
    """OCR the chosen pages and write the input again with an invisible text layer."""
    _check_paths(args)
    with PdfFiles() as files:
        name = STDIN_NAME if args.input == STDIO else args.input
        path = files.input_file(args.input)
        if args.password is not None:
            from ocrmill.pipeline.pdf import is_pdf

            if is_pdf(path):
                path = files.decrypted(path, name, args.password)
        return _make(args, files, path, name)


def _make(args: argparse.Namespace, files: PdfFiles, path: str, name: str) -> int:
    from ocrmill.cli.doctor import version
    from ocrmill.outputs.writer import DocumentWriter

    config = config_from_args(args)
    # The workers load their models while this process looks at the input.
    executor = executor_from_args(args, config, wait_ready=False)
    writers: list[DocumentWriter] = []
    output = files.output_file(args.output)
    shown_output = STDOUT_NAME if args.output == STDIO else args.output
    try:
        from ocrmill.batch import run
        from ocrmill.batch.progress import default_progress

        plan = _plan(path, name, args, files)
        software = f"ocrmill {version()}"
        writer = DocumentWriter(
            "pdf",
            name,
            source=path,
            is_pdf=plan.source_is_pdf,
            pages=plan.count,
            software=software,
            max_pixels=config.decode.max_pixels,
            pdf_options=pdf_options_from_args(args),
        )
        writers.append(writer)
        writer.open()  # an input that cannot be made searchable fails now, before reading
        if args.sidecar is not None:
            writers.append(
                DocumentWriter(
                    "text",
                    name,
                    pages=plan.count,
                    software=software,
                    max_pixels=config.decode.max_pixels,
                )
            )
        if plan.with_text:
            log.info(
                "%d of %d pages already carry text and are kept as they are (--force-ocr "
                "adds a layer anyway, --redo-ocr replaces an earlier one): %s",
                len(plan.with_text),
                plan.count,
                ", ".join(str(p + 1) for p in sorted(plan.with_text)),
            )
        sink = _PageSink(writers)
        summary = run(
            plan.tasks,
            sink,
            config=config,
            executor=executor,
            progress=default_progress(args.quiet),
        )
        executor.close()  # the workers' memory is not needed while the file is written
        if summary.interrupted:
            log.info("interrupted: %s not written", shown_output)
            return int(ExitCode.INTERRUPTED)
        writer.save(output)
        if args.sidecar is not None:
            _write_sidecar(writers[1], args.sidecar)
        if args.output == STDIO:
            copy_to_stdout(output)
    finally:
        for each in writers:
            each.close()
        executor.close()
    for failure in sorted(sink.failed, key=lambda f: f.page or 0):
        where = f"page {failure.page + 1}" if failure.page is not None else "the image"
        print(
            f"ocrmill: {where}: {failure.code}: {failure.message} (kept without a text layer)",
            file=sys.stderr,
        )
    log.info(
        "%s: %d page(s) with a text layer, %d kept as they were, %d failed",
        shown_output,
        len(plan.tasks) - len(sink.failed),
        plan.count - len(plan.tasks),
        len(sink.failed),
    )
    return int(ExitCode.SOME_INPUTS_FAILED if sink.failed else ExitCode.OK)


def _write_sidecar(sidecar: DocumentWriter, path: str) -> None:
    """The text of every page (an empty one for a page not read), pages separated by form
    feeds, to ``path`` (``-``: standard output)."""
    if path == STDIO:
        sys.stdout.write(sidecar.render())
        sys.stdout.flush()
    else:
        sidecar.save(path)
