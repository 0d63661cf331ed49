"""HTTP routes: health, metrics, the web page, ``/v1/ocr`` and ``/v1/jobs``.

Handlers run on the event loop and only await: uploads stream to disk through threads,
reading happens in the pool's workers, SQLite on the store's thread. ``/metrics`` is a
plain ``def`` so FastAPI runs it in its thread pool. One module for every route (~420
lines): the API's surface (paths, status codes, OpenAPI docs) reads in one place.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Security
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from ocrmill.errors import ResourceLimitError, error_from_code
from ocrmill.pipeline.pdf import is_pdf
from ocrmill.results import PageFailure, Result
from ocrmill.server.api_errors import ApiError, overloaded
from ocrmill.server.schemas import (
    ErrorBody,
    Health,
    JobBody,
    JobCreated,
    JobQuery,
    Readiness,
    ReadQuery,
    ResultBody,
)
from ocrmill.server.service import Service
from ocrmill.server.store import JobRow
from ocrmill.server.uploads import display_name, remove_quietly, save_body, save_multipart

STATIC_DIR = Path(__file__).parent / "static"
RAW_BODY_TYPES = ("image/", "application/octet-stream")
KEEPALIVE_S = 15.0
SSE_PAGE = 200

_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="the API key")


def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]


def require_api_key(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    header_key: Annotated[str | None, Security(_key_header)],
) -> None:
    """401 unless the request carries the configured key (when one is configured)."""
    expected = request.app.state.service.settings.api_key
    if not expected:
        return
    supplied = header_key or (bearer.credentials if bearer is not None else None)
    if not supplied or not hmac.compare_digest(supplied.encode(), expected.encode()):
        raise ApiError(
            401,
            "unauthorized",
            "a valid API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
            {"WWW-Authenticate": 'Bearer realm="ocrmill"'},
        )


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorBody} for status in statuses}


ops = APIRouter(tags=["operations"])
api = APIRouter(prefix="/v1", tags=["ocr"], dependencies=[Depends(require_api_key)])


# -- operations -------------------------------------------------------------------------


@ops.get("/healthz", response_model=Health)
async def healthz() -> dict[str, str]:
    """The process is up (it may still be loading models: see /readyz)."""
    return {"status": "ok"}


@ops.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
async def readyz(service: ServiceDep) -> JSONResponse:
    """200 when every worker has loaded and warmed up its models, else 503."""
    state = service.readiness()
    return JSONResponse(state, status_code=200 if state["ready"] else 503)


@ops.get("/metrics", response_class=Response)
def metrics(service: ServiceDep) -> Response:
    """Prometheus text format."""
    body, content_type = service.metrics.render()
    return Response(body, media_type=content_type)


@ops.get("/", include_in_schema=False)
async def index() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


# -- one image ----------------------------------------------------------------------------

_UPLOAD_DOC = {
    "requestBody": {
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
            "image/*": {"schema": {"type": "string", "format": "binary"}},
        },
        "required": True,
    }
}


def _content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _result_response(result: Result) -> JSONResponse:
    if result.ok:
        return JSONResponse(result.to_dict())
    assert isinstance(result, PageFailure)
    error = error_from_code(result.code, result.message)
    headers = {"Retry-After": "5"} if isinstance(error, ResourceLimitError) else None
    return JSONResponse(result.to_dict(), status_code=error.http_status, headers=headers)


@api.post(
    "/ocr",
    response_model=ResultBody,
    openapi_extra=_UPLOAD_DOC,
    responses={
        **_errors(400, 401, 413, 415, 503, 504),
        422: {"model": ResultBody, "description": "the image cannot be decoded"},
    },
)
async def ocr(
    request: Request,
    service: ServiceDep,
    query: Annotated[ReadQuery, Query()],
    timeout: Annotated[
        float | None,
        Query(gt=0, le=3600, description="deadline in seconds (at most the server's)"),
    ] = None,
    filename: Annotated[str | None, Query(description="name of a raw-body image")] = None,
) -> JSONResponse:
    """Read one image: multipart field ``file``, or the raw body with an image content type.

    Returns the result record; an image that cannot be decoded gives ``422`` with the
    error record (``error.message`` says why).
    """
    started = time.monotonic()
    options = query.to_options(service.settings.config.read)
    service.check_serving()
    if not service.admission.try_acquire():
        raise overloaded(
            f"{service.admission.capacity} images are being read; retry later",
            service.admission.retry_after(),
        )
    limits = service.settings.limits
    path = service.new_upload_path()
    answered = False
    try:
        kind = _content_type(request)
        if kind == "multipart/form-data":
            files = await save_multipart(
                request,
                lambda _index: path,
                max_file_bytes=limits.max_upload_bytes,
                max_total_bytes=limits.max_upload_bytes + 64 * 1024,
                max_files=1,
            )
            if not files:
                raise ApiError(400, "bad_request", "no file in the form: send it as field 'file'")
            name = files[0].name
        elif kind.startswith(RAW_BODY_TYPES):
            name = display_name(filename or "", "image")
            await save_body(request, path, name=name, max_bytes=limits.max_upload_bytes)
        else:
            raise ApiError(
                415,
                "unsupported_media_type",
                "send the image as multipart/form-data field 'file' or as the raw body with "
                f"an image/* content type (got {kind or 'none'!r})",
            )
        if await asyncio.to_thread(is_pdf, path):
            raise ApiError(
                422,
                "unsupported_format",
                f"{name}: is a PDF; send PDFs to POST /v1/jobs (each page is read)",
            )
        deadline_s = min(timeout or limits.request_timeout_s, limits.request_timeout_s)
        result = await service.read_one(path, name, options, deadline_s, started)
        answered = True
        service.metrics.results.labels("ocr", "true" if result.ok else "false").inc()
        if isinstance(result, PageFailure):
            service.metrics.errors.labels(result.code).inc()
        return _result_response(result)
    finally:
        service.admission.release(time.monotonic() - started if answered else None)
        await asyncio.to_thread(remove_quietly, path)


# -- jobs ---------------------------------------------------------------------------------

_JOB_UPLOAD_DOC = {
    "requestBody": {
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                        }
                    },
                    "required": ["file"],
                }
            },
            "application/pdf": {"schema": {"type": "string", "format": "binary"}},
            "image/*": {"schema": {"type": "string", "format": "binary"}},
        },
        "required": True,
    }
}


def _job_summary(row: JobRow, ttl_s: float) -> dict[str, Any]:
    return {
        "id": row.id,
        "status": row.status,
        "created_at": row.created_at,
        "finished_at": row.finished_at,
        "expires_at": row.finished_at + ttl_s if row.finished_at is not None else None,
        "progress": {"done": row.done, "total": row.total, "failed": row.failed},
        "options": row.options,
        "error": row.error,
    }


def _links(job_id: str) -> dict[str, str]:
    return {"self": f"/v1/jobs/{job_id}", "events": f"/v1/jobs/{job_id}/events"}


@api.post(
    "/jobs",
    status_code=202,
    response_model=JobCreated,
    openapi_extra=_JOB_UPLOAD_DOC,
    responses=_errors(400, 401, 413, 415, 503),
)
async def create_job(
    request: Request,
    service: ServiceDep,
    query: Annotated[JobQuery, Query()],
    pdf_dpi: Annotated[int | None, Query(ge=36, le=600, description="PDF render DPI")] = None,
    filename: Annotated[str | None, Query(description="name of a raw-body file")] = None,
) -> JSONResponse:
    """Start a job: many images (repeated multipart field ``file``) and/or PDFs.

    Every image and every PDF page is read; answers ``202`` at once with the job id.
    Follow it with ``GET /v1/jobs/{id}`` or ``GET /v1/jobs/{id}/events``.
    """
    query.to_options(service.settings.config.read)  # 400 on bad options before the upload
    if service.fatal is not None:
        service.check_serving()
    jobs = service.jobs
    jobs.admit()
    limits = service.settings.limits
    job_id = uuid.uuid4().hex
    directory = jobs.job_dir(job_id)
    await asyncio.to_thread(directory.mkdir, parents=True)
    try:
        kind = _content_type(request)
        if kind == "multipart/form-data":
            files = await save_multipart(
                request,
                lambda index: directory / f"{index:05d}",
                max_file_bytes=limits.max_upload_bytes,
                max_total_bytes=limits.max_job_bytes,
                max_files=limits.max_job_pages,
            )
        elif kind.startswith(RAW_BODY_TYPES) or kind == "application/pdf":
            name = display_name(filename or "", "upload")
            saved = await save_body(
                request, directory / "00000", name=name, max_bytes=limits.max_upload_bytes
            )
            files = [saved]
        else:
            raise ApiError(
                415,
                "unsupported_media_type",
                "send files as multipart/form-data (repeated field 'file') or one file as the "
                f"raw body (got {kind or 'none'!r})",
            )
        if not files:
            raise ApiError(400, "bad_request", "no file in the form: send them as field 'file'")
        row = await jobs.create(job_id, files, query, pdf_dpi or service.settings.pdf_dpi)
    except BaseException:
        await asyncio.to_thread(shutil.rmtree, directory, True)
        raise
    body = {
        "id": row.id,
        "status": row.status,
        "progress": {"done": row.done, "total": row.total, "failed": row.failed},
        "links": _links(row.id),
    }
    return JSONResponse(body, status_code=202, headers={"Location": f"/v1/jobs/{row.id}"})


async def _job_or_404(service: Service, job_id: str) -> JobRow:
    row = await service.jobs.get(job_id)
    if row is None:
        raise ApiError(404, "not_found", f"no job {job_id!r} (finished jobs expire)")
    return row


@api.get("/jobs/{job_id}", response_model=JobBody, responses=_errors(401, 404))
async def get_job(
    service: ServiceDep,
    job_id: str,
    since: Annotated[int, Query(ge=0, description="only results with seq > since")] = 0,
    limit: Annotated[int, Query(ge=0, le=10_000, description="results at most")] = 1000,
) -> JSONResponse:
    """Status, progress (done/total) and the results recorded so far, in completion order."""
    row = await _job_or_404(service, job_id)
    results = await service.jobs.results(job_id, since, limit)
    body = _job_summary(row, service.settings.limits.job_ttl_s)
    body["results"] = [r.to_dict() for r in results]
    body["documents"] = await _documents(service, job_id)
    body["next_since"] = results[-1].seq if results else since
    return JSONResponse(body)  # records exactly as stored (the model is for /docs)


async def _documents(service: Service, job_id: str) -> list[dict[str, Any]]:
    from ocrmill.server.documents import list_documents

    found = await asyncio.to_thread(list_documents, service.settings.data_dir, job_id)
    names = await service.jobs.file_names(job_id) if found else {}
    return [
        {
            "file": names.get(file, file),
            "file_index": int(file) if file.isdigit() else 0,
            "format": fmt,
            "url": f"/v1/jobs/{job_id}/documents/{file}/{fmt}",
        }
        for file, fmt in found
    ]


@api.get(
    "/jobs/{job_id}/documents/{file}/{fmt}",
    response_class=FileResponse,
    responses=_errors(401, 404),
)
async def get_document(service: ServiceDep, job_id: str, file: str, fmt: str) -> FileResponse:
    """A document the job made for one uploaded file (job option ``outputs``): ``pdf``
    (searchable PDF), ``hocr``, ``alto`` or ``text``. ``404`` until it is written."""
    from ocrmill.batch.files import EXTENSIONS
    from ocrmill.server.documents import document_path

    if fmt not in EXTENSIONS or not file.isdigit():
        raise ApiError(
            404, "not_found", f"no document {file}/{fmt} (formats: pdf, hocr, alto, text)"
        )
    row = await _job_or_404(service, job_id)
    path = document_path(service.settings.data_dir, row.id, file, fmt)
    if not await asyncio.to_thread(path.is_file):
        raise ApiError(
            404, "not_found", f"job {job_id} has no {fmt} document for file {file} (yet)"
        )
    names = await service.jobs.file_names(job_id)
    media = {
        "pdf": "application/pdf",
        "hocr": "text/html; charset=utf-8",
        "alto": "application/xml",
        "text": "text/plain; charset=utf-8",
    }[fmt]
    download = f"{names.get(file, file)}{EXTENSIONS[fmt]}"
    return FileResponse(path, media_type=media, filename=download)


def _sse(event: str, data: Any, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


@api.get(
    "/jobs/{job_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "server-sent events"},
        **_errors(401, 404),
    },
)
async def job_events(
    service: ServiceDep,
    job_id: str,
    since: Annotated[int | None, Query(ge=0, description="resume after this seq")] = None,
    results: Annotated[bool, Query(description="send each result as an event")] = True,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """Server-sent events: ``progress`` on every change, ``result`` per result (its ``id``
    is the result's seq, so a reconnect with ``Last-Event-ID`` resumes), then ``end``."""
    await _job_or_404(service, job_id)
    cursor = since or 0
    if last_event_id and last_event_id.isdigit():
        cursor = max(cursor, int(last_event_id))
    jobs = service.jobs
    ttl = service.settings.limits.job_ttl_s

    async def stream() -> AsyncIterator[str]:
        nonlocal cursor
        yield "retry: 2000\n\n"
        sent: tuple[str, int] | None = None
        while True:
            changed = jobs.watch(job_id)
            row = await jobs.get(job_id)
            if row is None:
                yield _sse("end", {"id": job_id, "status": "deleted"})
                return
            while results:
                page = await jobs.results(job_id, cursor, SSE_PAGE)
                for r in page:
                    yield _sse("result", r.to_dict(), r.seq)
                    cursor = r.seq
                if len(page) < SSE_PAGE:
                    break
            summary = _job_summary(row, ttl)
            if sent != (row.status, row.done):
                sent = (row.status, row.done)
                yield _sse("progress", summary)
            if row.status in ("done", "failed"):
                yield _sse("end", summary)
                return
            try:
                await asyncio.wait_for(changed.wait(), KEEPALIVE_S)
            except asyncio.TimeoutError:
                yield ": keep-alive\n\n"

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@api.delete("/jobs/{job_id}", status_code=204, responses=_errors(401, 404))
async def delete_job(service: ServiceDep, job_id: str) -> Response:
    """Cancel the job's unread pages and delete it, its results and its files."""
    if not await service.jobs.delete(job_id):
        raise ApiError(404, "not_found", f"no job {job_id!r}")
    return Response(status_code=204)
