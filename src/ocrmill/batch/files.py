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

from ocrmill.outputs.atomic import write_atomically
from ocrmill.results import PageFailure, PageResult, Result
from ocrmill.runtime.tasks import Task

if TYPE_CHECKING:
    from ocrmill.outputs.pdf import LayeredPdf

log = logging.getLogger(__name__)

FileFormat = Literal["pdf", "hocr", "alto", "text"]
EXTENSIONS: dict[FileFormat, str] = {"pdf": ".pdf", "hocr": ".hocr", "alto": ".xml", "text": ".txt"}


def output_path(folder: Path, input_name: str, extension: str) -> Path:
    """Where the file for ``input_name`` goes in ``folder`` (see the module docstring)."""
    path = Path(os.path.abspath(input_name))
    try:
        relative = path.relative_to(Path.cwd())
    except ValueError:
        relative = Path(*path.parts[1:])  # drop the root: /data/x.png -> data/x.png
    return folder / relative.parent / (relative.name + extension)


class DocumentFiles:
    """A sink writing one ``fmt`` file per input document into ``folder``.

    Records are kept per document until its last page arrives (``Task.pages``; a task
    that does not say is a one-page document); a searchable PDF gets each page's layer at
    once instead. ``failed`` counts pages that failed (a PDF keeps such a page without a
    layer; hOCR/ALTO mark it as a failed, empty page).
    """

    def __init__(
        self, folder: str | os.PathLike[str], fmt: FileFormat, *, software: str = "ocrmill"
    ) -> None:
        self.folder = Path(folder)
        self.fmt = fmt
        self.extension = EXTENSIONS[fmt]
        self.software = software
        self.written = 0
        self._pending: dict[str, list[Result]] = {}
        self._pdfs: dict[str, LayeredPdf] = {}

    def path_for(self, task: Task) -> Path:
        return output_path(self.folder, task.name, self.extension)

    def holds(self, task: Task) -> bool:
        return self.path_for(task).exists()

    def write(self, result: Result, task: Task | None = None) -> None:
        if task is None:
            task = Task.failed(result) if isinstance(result, PageFailure) else None
            if task is None:
                return
        pages = task.pages or 1
        done = self._pending.setdefault(task.name, [])
        done.append(result)
        if self.fmt == "pdf" and isinstance(result, PageResult):
            self._layer(task, result)
        if len(done) >= pages:
            del self._pending[task.name]
            self._finish(task, done)

    def _layer(self, task: Task, result: Result) -> None:
        """Add a page's layer to its document's PDF, opening the document at its first."""
        from ocrmill.errors import OcrmillError

        try:
            document = self._pdfs.get(task.name) or self._open(task)
        except OcrmillError as exc:
            log.error("%s: no searchable PDF: %s", task.name, exc.message)
            return
        self._pdfs[task.name] = document
        if isinstance(result, PageResult):
            document.add_layer(task.page or 0, result)

    def _open(self, task: Task) -> LayeredPdf:
        from ocrmill.outputs.pdf import LayeredPdf, image_document, open_pdf

        if task.kind == "pdf":
            return LayeredPdf(open_pdf(str(task.source)))
        return LayeredPdf(image_document(str(task.source), task.pages or 1))

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
            text = self._render(task, results)
            write_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
        self.written += 1

    def _render(self, task: Task, results: list[Result]) -> str:
        from ocrmill.outputs.alto import render_alto
        from ocrmill.outputs.hocr import render_hocr

        if self.fmt == "hocr":
            return render_hocr(results, title=task.name, software=self.software)
        if self.fmt == "alto":
            return render_alto(results, file_name=task.name, software=self.software)
        ordered = sorted(results, key=lambda r: r.page or 0)
        return "\f".join(r.text + "\n" if isinstance(r, PageResult) else "\n" for r in ordered)

    def close(self) -> None:
        for document in self._pdfs.values():  # unfinished (an interrupted run): not written
            document.close()
        self._pdfs.clear()
        self._pending.clear()
