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

from ocrmill.atomic import write_text_atomically
from ocrmill.batch.files import EXTENSIONS
from ocrmill.results import PageResult, Result, result_from_dict
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
) -> None:
    """Write the asked-for documents of one uploaded file whose pages are all recorded."""
    from ocrmill.outputs.pdf import LayeredPdf
    from ocrmill.outputs.render import render_document

    items = store.call(store.sync.file_results, job_id, upload.name)
    if not items:
        return
    name, is_pdf = items[0][0].name, items[0][0].kind == "pdf"
    results: list[Result] = [result_from_dict(record) for _, record in items]
    for fmt in formats:
        path = document_path(data_dir, job_id, upload.name, fmt)
        try:
            if fmt != "pdf":
                text = render_document(fmt, results, name=name, software=software)
                write_text_atomically(path, text)
                continue
            document = LayeredPdf.open(upload, is_pdf=is_pdf)
            try:
                for result in results:
                    if isinstance(result, PageResult):
                        document.add_layer(result.page or 0, result)
                document.save(path)
            finally:
                document.close()
        except Exception as exc:  # one document must not stop the job
            log.error("job %s: cannot write the %s of %s: %s", job_id, fmt, name, exc)
