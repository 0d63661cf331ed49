"""The one document writer: a searchable PDF, hOCR, ALTO or plain text of one input, built
from its page records as they arrive, and the collector that knows when an input's last
page is in. Used by every front end that writes documents (``ocrmill run``'s document
folders, ``ocrmill pdf``, ``ocrmill read --format hocr|alto`` and the server's jobs).

Failure-safe: whatever goes wrong while a document is built (its PDF will not open, an image
is over the pixel cap, a layer cannot be drawn) is kept as the document's
:class:`~ocrmill.errors.OcrmillError` and raised once, by :meth:`DocumentWriter.save` or
:meth:`DocumentWriter.render`, when the document is complete; nothing raises while pages
are added, so one bad document never stops the others. Files are written atomically.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Literal

from ocrmill.atomic import write_text_atomically
from ocrmill.errors import DocumentError, OcrmillError
from ocrmill.results import PageFailure, PageResult, Result
from ocrmill.tasks import Task

if TYPE_CHECKING:
    from ocrmill.outputs.pdf import LayeredPdf
    from ocrmill.outputs.pdf_save import PdfOptions

log = logging.getLogger(__name__)

DocumentFormat = Literal["pdf", "hocr", "alto", "text"]
DOCUMENT_FORMATS: tuple[DocumentFormat, ...] = ("pdf", "hocr", "alto", "text")
EXTENSIONS: dict[str, str] = {"pdf": ".pdf", "hocr": ".hocr", "alto": ".xml", "text": ".txt"}


class DocumentWriter:
    """One input's document in ``fmt``: :meth:`add` each page's record (any order), then
    :meth:`save` it to a file (or :meth:`render` a text format), then :meth:`close`.

    ``source`` is the input file (a PDF gets its layers grafted onto its own pages; an
    image's ``pages`` frames become new pages); only the PDF format reads it, and makes it
    as ``pdf_options`` say (default: PDF/A-2b where the input allows it). A failed page
    keeps its content without a layer (hOCR/ALTO mark it as a failed, empty page).
    """

    def __init__(
        self,
        fmt: DocumentFormat,
        name: str,
        *,
        source: str | None = None,
        is_pdf: bool = False,
        pages: int = 1,
        software: str = "ocrmill",
        max_pixels: int,
        pdf_options: PdfOptions | None = None,
    ) -> None:
        if fmt not in EXTENSIONS:
            raise ValueError(f"not a document format: {fmt!r}")
        self.fmt = fmt
        self.name = name
        self.source = source
        self.is_pdf = is_pdf
        self.pages = pages
        self.software = software
        self.max_pixels = max_pixels
        self.pdf_options = pdf_options
        self.not_pdfa: list[str] = []  # why a PDF asked to be PDF/A is not (after save)
        self.error: OcrmillError | None = None
        self.pages_read = 0  # pages added with a result (not a failure)
        self._results: list[Result] = []
        self._pdf: LayeredPdf | None = None

    def add(self, result: Result, page: int | None = None) -> None:
        """Take one page's record (``page``: its 0-based page, default the record's)."""
        self.pages_read += isinstance(result, PageResult)
        if self.fmt != "pdf":
            self._results.append(result)
            return
        if self.error is not None or not isinstance(result, PageResult):
            return
        try:
            self._layered().add_layer(page if page is not None else result.page or 0, result)
        except Exception as exc:
            self._fail(exc)

    def open(self) -> None:
        """Open a PDF document's source now (it is otherwise opened at the first page), so
        an input that cannot be made searchable fails before anything is read: raises its
        error. Other formats have nothing to open."""
        if self.fmt == "pdf" and self.error is None and self._pdf is None:
            try:
                self._layered()
            except Exception as exc:
                self._fail(exc)
        self._raise_error()

    def _raise_error(self) -> None:
        if self.error is not None:
            raise self.error

    def _layered(self) -> LayeredPdf:
        if self._pdf is None:
            from ocrmill.outputs.pdf import LayeredPdf

            if self.source is None:
                raise DocumentError(f"{self.name}: no source file to make a searchable PDF of")
            self._pdf = LayeredPdf.open(
                self.source,
                is_pdf=self.is_pdf,
                pages=self.pages,
                max_pixels=self.max_pixels,
                options=self.pdf_options,
            )
        return self._pdf

    def _fail(self, exc: BaseException) -> OcrmillError:
        """Keep ``exc`` as the document's error (an OcrmillError as it is, anything else as
        a DocumentError naming the input) and drop what was built; returns the error."""
        if isinstance(exc, OcrmillError):
            self.error = exc
        else:
            self.error = DocumentError(
                f"{self.name}: cannot write its {self.fmt} document: {type(exc).__name__}: {exc}"
            )
        self._close_pdf()
        return self.error

    def render(self) -> str:
        """The text of an hOCR, ALTO or plain-text document."""
        from ocrmill.outputs.render import render_document

        if self.fmt == "pdf":
            raise ValueError("a PDF is saved, not rendered: use save()")
        self._raise_error()
        try:
            return render_document(
                self.fmt, self._results, name=self.name, software=self.software, pages=self.pages
            )
        except Exception as exc:
            raise self._fail(exc) from None

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the document to ``path`` atomically (a file that exists is whole). Raises
        the document's error when it could not be built; nothing is written then."""
        if self.fmt != "pdf":
            write_text_atomically(path, self.render())
            return
        self.open()  # no page was read: the source as it is
        assert self._pdf is not None
        try:
            self.not_pdfa = self._pdf.save(path, self.software)
        except Exception as exc:
            raise self._fail(exc) from None
        if self.not_pdfa:
            log.warning(
                "%s: written as a plain PDF, not PDF/A (that would take re-rendering the "
                "document): %s",
                self.name,
                "; ".join(self.not_pdfa),
            )

    def close(self) -> None:
        """Release the document (calling it again does nothing)."""
        self._close_pdf()
        self._results = []

    def _close_pdf(self) -> None:
        if self._pdf is not None:
            self._pdf.close()
            self._pdf = None


class DocumentAssembler:
    """The writers of one format for every document of a run that is still open, keyed by
    input name: :meth:`add` each record with its task; it hands a document's writer back
    once its last page is in (``Task.pages``; a task that does not say is a one-page
    document). The caller saves or renders it, then closes it."""

    def __init__(self, fmt: DocumentFormat, *, software: str = "ocrmill", max_pixels: int) -> None:
        self.fmt = fmt
        self.software = software
        self.max_pixels = max_pixels
        self._open: dict[str, tuple[DocumentWriter, int]] = {}

    def add(self, result: Result, task: Task | None) -> DocumentWriter | None:
        """Add a record; the document's writer when this record completes it, else None."""
        if task is None:  # an input that failed before it became a task
            task = (
                Task.failed(result)
                if isinstance(result, PageFailure)
                else Task(0, "", result.input)
            )
        entry = self._open.get(task.name)
        if entry is None:
            source = task.source if isinstance(task.source, str) and task.source else None
            writer = DocumentWriter(
                self.fmt,
                task.name,
                source=source,
                is_pdf=task.kind == "pdf",
                pages=task.pages or 1,
                software=self.software,
                max_pixels=self.max_pixels,
            )
            entry = (writer, 0)
        writer, seen = entry
        writer.add(result, task.page)
        seen += 1
        if seen < (task.pages or 1):
            self._open[task.name] = (writer, seen)
            return None
        self._open.pop(task.name, None)
        return writer

    def close(self) -> None:
        """Drop the documents that never completed (an interrupted run): none is written."""
        for writer, _ in self._open.values():
            writer.close()
        self._open.clear()
