"""Request bodies streamed to disk with size limits (multipart parts or a raw body).

The multipart parser runs on the event loop (it only scans bytes); opening, writing and
closing files runs in a thread, one hop per received chunk. Nothing holds a whole file
in memory. Past a limit the rest of the body is read and dropped (up to
:data:`DRAIN_LIMIT`) so the client sees the 413 instead of a reset connection.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from ocrmill.server.api_errors import ApiError, too_large

DRAIN_LIMIT = 256 * 1024**2  # read and drop at most this much after a limit is hit
MAX_FIELD_BYTES = 64 * 1024  # non-file form fields are ignored, but bounded
MAX_FIELDS = 100


@dataclass
class SavedFile:
    """One uploaded file on disk."""

    name: str  # the client's file name (display only; never used as a path)
    path: Path
    content_type: str
    size: int = 0
    handle: IO[bytes] | None = field(default=None, repr=False)


def display_name(raw: str, fallback: str) -> str:
    """The last path component of a client's file name, without control characters."""
    base = re.split(r"[\\/]", raw)[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip()
    return base[:255] or fallback


def _limit_error(what: str, limit: int) -> ApiError:
    return too_large(f"{what} is larger than the limit of {limit:,} bytes")


class _LimitHit(Exception):
    def __init__(self, error: ApiError) -> None:
        self.error = error


class _MultipartToDisk:
    """python-multipart callbacks that queue file operations for a writer thread."""

    def __init__(
        self, path_for: Callable[[int], Path], max_file_bytes: int, max_files: int
    ) -> None:
        self.path_for = path_for
        self.max_file_bytes = max_file_bytes
        self.max_files = max_files
        self.files: list[SavedFile] = []
        self.ops: list[tuple[str, SavedFile, bytes]] = []
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._content_type = b""
        self._current: SavedFile | None = None
        self._field_bytes = 0
        self._fields = 0

    def callbacks(self) -> Any:
        return {
            "on_part_begin": self.on_part_begin,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
        }

    def on_part_begin(self) -> None:
        self._disposition = self._content_type = b""
        self._current = None
        self._field_bytes = 0

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        name = self._header_name.lower()
        if name == b"content-disposition":
            self._disposition = self._header_value
        elif name == b"content-type":
            self._content_type = self._header_value
        self._header_name = self._header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        if b"filename" not in options:
            self._fields += 1
            if self._fields > MAX_FIELDS:
                raise _LimitHit(ApiError(400, "bad_request", "too many form fields"))
            return
        if len(self.files) >= self.max_files:
            raise _LimitHit(too_large(f"too many files in one request (at most {self.max_files})"))
        index = len(self.files)
        raw_name = options[b"filename"].decode("utf-8", "replace")
        saved = SavedFile(
            name=display_name(raw_name, f"file{index}"),
            path=self.path_for(index),
            content_type=self._content_type.decode("latin-1").strip(),
        )
        self.files.append(saved)
        self._current = saved
        self.ops.append(("open", saved, b""))

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._current is None:
            self._field_bytes += end - start
            if self._field_bytes > MAX_FIELD_BYTES:
                raise _LimitHit(ApiError(400, "bad_request", "a form field is too large"))
            return
        self._current.size += end - start
        if self._current.size > self.max_file_bytes:
            raise _LimitHit(_limit_error(f"file {self._current.name!r}", self.max_file_bytes))
        self.ops.append(("write", self._current, data[start:end]))

    def on_part_end(self) -> None:
        if self._current is not None:
            self.ops.append(("close", self._current, b""))
        self._current = None


def _apply(ops: list[tuple[str, SavedFile, bytes]]) -> None:
    """File operations queued by the parser (runs in a thread)."""
    for op, saved, data in ops:
        if op == "open":
            saved.handle = open(saved.path, "wb")  # noqa: SIM115 (closed by a later op)
        elif op == "write" and saved.handle is not None:
            saved.handle.write(data)
        elif op == "close" and saved.handle is not None:
            saved.handle.close()
            saved.handle = None


def _close_all(files: list[SavedFile]) -> None:
    for saved in files:
        if saved.handle is not None:
            saved.handle.close()
            saved.handle = None


def _declared_length(request: Request) -> int | None:
    try:
        return int(request.headers["content-length"])
    except (KeyError, ValueError):
        return None


async def _drain(stream: Any, received: int) -> None:
    """Read and drop the rest of a body we refused, so the client reads our answer."""
    async for chunk in stream:
        received += len(chunk)
        if received > DRAIN_LIMIT:
            return


def _check_declared(request: Request, max_total: int, what: str) -> None:
    declared = _declared_length(request)
    if declared is not None and declared > max_total:
        # Refuse before reading; the connection is closed afterwards.
        raise too_large(f"{what} is larger than the limit of {max_total:,} bytes", close=True)


async def save_multipart(
    request: Request,
    path_for: Callable[[int], Path],
    *,
    max_file_bytes: int,
    max_total_bytes: int,
    max_files: int,
) -> list[SavedFile]:
    """Stream every file part of a ``multipart/form-data`` body to ``path_for(index)``.

    Other form fields are read and ignored. On any error the files written so far are
    left for the caller to remove (it owns the directory).
    """
    _, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if not boundary:
        raise ApiError(400, "bad_request", "multipart body without a boundary")
    _check_declared(request, max_total_bytes, "the request body")
    sink = _MultipartToDisk(path_for, max_file_bytes, max_files)
    try:
        parser = MultipartParser(boundary, sink.callbacks())
    except FormParserError as exc:
        raise ApiError(400, "bad_request", f"bad multipart boundary: {exc}") from None
    stream = request.stream()
    received = 0
    try:
        async for chunk in stream:
            received += len(chunk)
            try:
                if received > max_total_bytes:
                    raise _LimitHit(_limit_error("the request body", max_total_bytes))
                parser.write(chunk)
            except _LimitHit as hit:
                await asyncio.to_thread(_apply, sink.ops)
                await _drain(stream, received)
                raise hit.error from None
            except FormParserError as exc:
                raise ApiError(400, "bad_request", f"malformed multipart body: {exc}") from None
            if sink.ops:
                ops, sink.ops = sink.ops, []
                await asyncio.to_thread(_apply, ops)
        try:
            parser.finalize()
        except FormParserError as exc:
            raise ApiError(400, "bad_request", f"malformed multipart body: {exc}") from None
        if any(f.handle is not None for f in sink.files):
            raise ApiError(400, "bad_request", "the multipart body ended inside a file")
    except ClientDisconnect:
        raise ApiError(400, "client_disconnected", "the client went away mid-upload") from None
    finally:
        await asyncio.to_thread(_close_all, sink.files)
    return sink.files


async def save_body(request: Request, path: Path, *, name: str, max_bytes: int) -> SavedFile:
    """Stream a raw request body (e.g. ``Content-Type: image/png``) to ``path``."""
    _check_declared(request, max_bytes, "the request body")
    saved = SavedFile(name=name, path=path, content_type=request.headers.get("content-type", ""))
    handle = await asyncio.to_thread(open, path, "wb")
    stream = request.stream()
    try:
        async for chunk in stream:
            saved.size += len(chunk)
            if saved.size > max_bytes:
                await _drain(stream, saved.size)
                raise _limit_error("the request body", max_bytes)
            if chunk:
                await asyncio.to_thread(handle.write, chunk)
    except ClientDisconnect:
        raise ApiError(400, "client_disconnected", "the client went away mid-upload") from None
    finally:
        await asyncio.to_thread(handle.close)
    return saved


def remove_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
