"""Per-document output files of a run: searchable PDF, hOCR, ALTO and plain text, one file per
input (all pages of a PDF or multi-page TIFF in one file), written into output folders.

A document's file is written when its last page's record arrives, to a temporary name and
renamed, so a file that exists is complete; ``resume`` skips inputs whose file exists. File
names mirror the input's path below the folder: ``scans/a.png`` -> ``OUT/scans/a.png.hocr``
(an absolute path outside the current directory keeps its whole path below ``OUT``).
Runs in the parent, in the run's consuming thread.
"""

from __future__ import annotations

import os
from pathlib import Path

from ocrmill.outputs.writer import EXTENSIONS, DocumentAssembler, DocumentFormat
from ocrmill.results import Result
from ocrmill.tasks import Task

FileFormat = DocumentFormat


def output_path(
    folder: Path, input_name: str, extension: str, base: str | os.PathLike[str] | None = None
) -> Path:
    """Where the file for ``input_name`` goes in ``folder`` (see the module docstring);
    relative names start at ``base`` (default: the current directory)."""
    start = Path(os.path.abspath(base if base is not None else os.curdir))
    path = Path(os.path.normpath(start / input_name))
    try:
        relative = path.relative_to(start)
    except ValueError:
        relative = Path(*path.parts[1:])  # drop the root: /data/x.png -> data/x.png
    return folder / relative.parent / (relative.name + extension)


class DocumentFiles:
    """A sink writing one ``fmt`` file per input document into ``folder``, with the one
    document writer (:mod:`ocrmill.outputs.writer`).

    A searchable PDF gets each page's layer as its record arrives; other formats keep the
    document's records until its last page is in. A document that cannot be written (its
    PDF will not open, an image over ``max_pixels``) raises its error from :meth:`write`
    when its last page arrives: the run turns it into that document's error record and
    goes on. A PDF of which no page was read is not written (its records say why), so
    ``resume`` reads it again.
    """

    per_document = True  # a DocumentSink: the run writes it before the record outputs

    def __init__(
        self,
        folder: str | os.PathLike[str],
        fmt: FileFormat,
        *,
        software: str = "ocrmill",
        max_pixels: int,
        base: str | os.PathLike[str] | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.base = base  # where relative input names start (None: the current directory)
        self.fmt = fmt
        self.extension = EXTENSIONS[fmt]
        self.written = 0
        self._documents = DocumentAssembler(fmt, software=software, max_pixels=max_pixels)

    def path_for(self, task: Task) -> Path:
        return output_path(self.folder, task.name, self.extension, self.base)

    def holds(self, task: Task) -> bool:
        return self.path_for(task).exists()

    def held_failure(self, task: Task) -> str | None:
        return None  # a document that could not be written has no file

    def write(self, result: Result, task: Task | None = None) -> None:
        writer = self._documents.add(result, task)
        if writer is None:
            return
        try:
            if self.fmt == "pdf" and not writer.pages_read:
                return
            writer.save(output_path(self.folder, writer.name, self.extension, self.base))
            self.written += 1
        finally:
            writer.close()

    def close(self) -> None:
        self._documents.close()
