"""Per-document output files of a run: searchable PDF, hOCR, ALTO and plain text, one file per
input (all pages of a PDF or multi-page TIFF in one file), written into output folders.

A document's file is written when its last page's record arrives, to a temporary name and
renamed, so a file that exists is complete; ``resume`` skips inputs whose file exists. File
names mirror the input's path below the folder: ``scans/a.png`` -> ``OUT/scans/a.png.hocr``
(an absolute path outside the current directory keeps its whole path below ``OUT``).
Runs in the parent, in the run's consuming thread.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ocrmill.atomic import write_text_atomically
from ocrmill.results import PageFailure, PageResult, Result
from ocrmill.tasks import Task

if TYPE_CHECKING:
    from ocrmill.outputs.pdf import LayeredPdf

log = logging.getLogger(__name__)

FileFormat = Literal["pdf", "hocr", "alto", "text"]
EXTENSIONS: dict[str, str] = {"pdf": ".pdf", "hocr": ".hocr", "alto": ".xml", "text": ".txt"}


def output_path(folder: Path, input_name: str, extension: str) -> Path:
    """Where the file for ``input_name`` goes in ``folder`` (see the module docstring)."""
    path = Path(os.path.abspath(input_name))
    try:
        relative = path.relative_to(Path.cwd())
    except ValueError:
        relative = Path(*path.parts[1:])  # drop the root: /data/x.png -> data/x.png
    return folder / relative.parent / (relative.name + extension)


class DocumentPages:
    """Collects the records of each input until its last page is in (``Task.pages``; a task
    that does not say is a one-page document)."""

    def __init__(self) -> None:
        self._pending: dict[str, list[Result]] = {}

    def add(self, result: Result, task: Task | None) -> list[Result] | None:
        """The document's records once ``result`` completes it, else None."""
        name = task.name if task is not None else result.input
        pages = self._pending.setdefault(name, [])
        pages.append(result)
        if len(pages) < (task.pages if task is not None and task.pages else 1):
            return None
        return self._pending.pop(name)

    def clear(self) -> None:
        self._pending.clear()


class DocumentFiles:
    """A sink writing one ``fmt`` file per input document into ``folder``.

    Records are kept per document until its last page arrives; a searchable PDF gets each
    page's layer at once instead (a page that failed keeps its content without a layer;
    hOCR/ALTO mark it as a failed, empty page).
    """

    def __init__(
        self, folder: str | os.PathLike[str], fmt: FileFormat, *, software: str = "ocrmill"
    ) -> None:
        self.folder = Path(folder)
        self.fmt = fmt
        self.extension = EXTENSIONS[fmt]
        self.software = software
        self.written = 0
        self._documents = DocumentPages()
        self._pdfs: dict[str, LayeredPdf] = {}

    def path_for(self, task: Task) -> Path:
        return output_path(self.folder, task.name, self.extension)

    def holds(self, task: Task) -> bool:
        return self.path_for(task).exists()

    def write(self, result: Result, task: Task | None = None) -> None:
        if task is None:  # an input that failed before it became a task
            if not isinstance(result, PageFailure):
                return
            task = Task.failed(result)
        if self.fmt == "pdf" and isinstance(result, PageResult):
            self._layer(task, result)
        results = self._documents.add(result, task)
        if results is not None:
            self._finish(task, results)

    def _layer(self, task: Task, result: PageResult) -> None:
        """Add a page's layer to its document's PDF, opening the document at its first."""
        from ocrmill.errors import OcrmillError
        from ocrmill.outputs.pdf import LayeredPdf

        document = self._pdfs.get(task.name)
        if document is None:
            try:
                document = LayeredPdf.open(
                    str(task.source), is_pdf=task.kind == "pdf", pages=task.pages or 1
                )
            except OcrmillError as exc:
                log.error("%s: no searchable PDF: %s", task.name, exc.message)
                return
            self._pdfs[task.name] = document
        document.add_layer(task.page or 0, result)

    def _finish(self, task: Task, results: list[Result]) -> None:
        path = self.path_for(task)
        if self.fmt == "pdf":
            document = self._pdfs.pop(task.name, None)
            if document is None:
                return  # no page was read, or the document could not be opened (logged)
            try:
                document.save(path)
            finally:
                document.close()
        else:
            from ocrmill.outputs.render import render_document

            text = render_document(self.fmt, results, name=task.name, software=self.software)
            write_text_atomically(path, text)
        self.written += 1

    def close(self) -> None:
        for document in self._pdfs.values():  # unfinished (an interrupted run): not written
            document.close()
        self._pdfs.clear()
        self._documents.clear()
