"""Documents a job makes per uploaded file when asked (``outputs=pdf,hocr,alto,text``): a
searchable PDF, hOCR, ALTO or plain text, written when the file's last page is recorded,
from the results in the store (so a job resumed after a restart makes them the same way).

They live in ``DATA_DIR/documents/JOB/`` (named by the upload's stored file id) until the
job expires; runs in the job feeder's thread.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from ocrmill.errors import OcrmillError
from ocrmill.outputs.writer import DOCUMENT_FORMATS, EXTENSIONS, DocumentWriter
from ocrmill.results import result_from_dict
from ocrmill.server.store import AsyncJobStore

log = logging.getLogger(__name__)


def documents_dir(data_dir: Path, job_id: str) -> Path:
    return data_dir / "documents" / job_id


def document_path(data_dir: Path, job_id: str, file: str, fmt: str) -> Path:
    return documents_dir(data_dir, job_id) / f"{file}{EXTENSIONS[fmt]}"


def list_documents(data_dir: Path, job_id: str) -> list[tuple[str, str]]:
    """``(file, format)`` of the documents written for a job so far."""
    folder = documents_dir(data_dir, job_id)
    by_extension = {ext: fmt for fmt, ext in EXTENSIONS.items()}
    found: list[tuple[str, str]] = []
    try:
        for path in sorted(folder.iterdir()):
            fmt = by_extension.get(path.suffix)
            if fmt is not None and not path.name.startswith("."):
                found.append((path.stem, fmt))
    except FileNotFoundError:
        return []
    return found


def remove_documents(data_dir: Path, job_id: str) -> None:
    shutil.rmtree(documents_dir(data_dir, job_id), ignore_errors=True)


def make_documents(
    store: AsyncJobStore,
    data_dir: Path,
    job_id: str,
    upload: Path,
    formats: tuple[str, ...],
    software: str,
    *,
    max_pixels: int,
) -> None:
    """Write the asked-for documents of one uploaded file whose pages are all recorded
    (with the one document writer, :class:`~ocrmill.outputs.writer.DocumentWriter`). A
    document that cannot be written is logged and left out; the job goes on."""
    items = store.call(store.sync.file_results, job_id, upload.name)
    if not items:
        return
    name, is_pdf = items[0][0].name, items[0][0].kind == "pdf"
    pages = [(item.page, result_from_dict(record)) for item, record in items]
    for fmt in formats:
        if fmt not in DOCUMENT_FORMATS:
            continue
        writer = DocumentWriter(
            fmt,
            name,
            source=str(upload),
            is_pdf=is_pdf,
            pages=len(pages),
            software=software,
            max_pixels=max_pixels,
        )
        try:
            for page, result in pages:
                writer.add(result, page)
            writer.save(document_path(data_dir, job_id, upload.name, fmt))
        except OcrmillError as exc:  # one document must not stop the job
            log.error("job %s: cannot write the %s of %s: %s", job_id, fmt, name, exc.message)
        finally:
            writer.close()
