"""Lazy input enumeration for ``ocrmill run INPUT...`` (runs in the parent process).

A spec is one of:

* ``-``: paths read from stdin, one per line;
* ``@list.txt``: paths read from a text file, one per line (blank lines and ``#`` comments
  skipped; a file whose name really starts with ``@`` is reached as ``./@name``);
* an existing directory: walked recursively for image and PDF files;
* an existing file: taken whatever its extension (the decoder judges it);
* otherwise, when it contains ``*``, ``?`` or ``[``: a glob pattern (``**`` recurses).

A path read from stdin or a list file is taken as is (a file or a directory; no glob or
``@`` expansion). Everything is a generator: nothing is listed into memory up front, so the
first input is produced before the source is exhausted, however large it is. A spec that
cannot be resolved becomes one ``kind="error"`` item; this module never raises for a bad
input.
"""

from __future__ import annotations

import glob
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal, TextIO

from ocrmill.errors import (
    EmptyInputError,
    InputError,
    InputNotFoundError,
    InternalError,
    OcrmillError,
)
from ocrmill.pipeline.pdf import is_pdf, pdf_page_count

IMAGE_EXTENSIONS = frozenset(
    {
        ".jpg",
        ".jpeg",
        ".png",
        ".tif",
        ".tiff",
        ".gif",
        ".webp",
        ".bmp",
        ".jp2",
        ".pbm",
        ".pgm",
        ".ppm",
    }
)
PDF_EXTENSIONS = frozenset({".pdf"})
SUPPORTED_EXTENSIONS = IMAGE_EXTENSIONS | PDF_EXTENSIONS

_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class InputItem:
    """One unit of input: an image, one PDF page, or an input that cannot be enumerated.

    ``name`` is the path as the user wrote it (or as it was enumerated) and becomes the
    record's ``input``; ``path`` is what to open. ``page`` is the 0-based PDF page (``None``
    for images, unexpanded PDFs and error items); ``error`` is set when ``kind == "error"``.
    """

    name: str
    path: str
    kind: Literal["image", "pdf", "error"]
    page: int | None = None
    error: OcrmillError | None = None


def _error(name: str, error: OcrmillError) -> InputItem:
    return InputItem(name=name, path=name, kind="error", error=error)


def _extension(path: str) -> str:
    return os.path.splitext(path)[1].lower()


def _is_supported(path: str) -> bool:
    return _extension(path) in SUPPORTED_EXTENSIONS


def _walk(root: str) -> Iterator[str | InputItem]:
    """Supported files under ``root``, depth first, without listing the tree up front.

    Within one directory, files are yielded in ``os.scandir`` order (file-system order, not
    sorted) as they are found; its subdirectories are visited after its files, in the order
    they were found. Hidden entries (names starting with ``.``) are skipped and symlinked
    directories are not followed (no loops); symlinked files are taken.
    """
    stack = [root]
    while stack:
        directory = stack.pop()
        subdirs: list[str] = []
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    if entry.name.startswith("."):
                        continue
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            subdirs.append(entry.path)
                            continue
                        is_file = entry.is_file()
                    except OSError:
                        continue
                    if is_file and _is_supported(entry.name):
                        yield entry.path
        except OSError as exc:
            yield _error(directory, InputError(f"{directory}: cannot list: {exc.strerror or exc}"))
        stack.extend(reversed(subdirs))


def _glob(pattern: str) -> Iterator[str | InputItem]:
    found = False
    for match in glob.iglob(pattern, recursive=True):
        if _is_supported(match) and os.path.isfile(match):
            found = True
            yield match
    if not found:
        yield _error(pattern, InputNotFoundError(f"no files match {pattern}"))


def _path(path: str) -> Iterator[str | InputItem]:
    """A path taken as is: a directory is walked, anything else existing is one file."""
    if os.path.isdir(path):
        yield from _walk(path)
    elif os.path.exists(path):
        yield path
    else:
        yield _error(path, InputNotFoundError(f"{path}: no such file or directory"))


def _lines(stream: Iterable[str]) -> Iterator[str | InputItem]:
    for raw in stream:
        line = raw.strip()
        if line and not line.startswith("#"):
            yield from _path(line)


def _list_file(spec: str) -> Iterator[str | InputItem]:
    list_path = spec[1:]
    try:
        # surrogateescape: undecodable bytes map back to the same file-system name.
        with open(list_path, encoding="utf-8", errors="surrogateescape") as fh:
            yield from _lines(fh)
    except FileNotFoundError:
        yield _error(spec, InputNotFoundError(f"{list_path}: list file not found"))
    except OSError as exc:
        yield _error(spec, InputError(f"{list_path}: cannot read list file: {exc.strerror or exc}"))


def _stdin_lines() -> Iterator[str]:
    # Bytes decoded like file-system names, so any path the OS can name gets through.
    for raw in sys.stdin.buffer:
        yield os.fsdecode(raw)


def _resolve(specs: Iterable[str], stdin: TextIO | None) -> Iterator[str | InputItem]:
    """File paths (``str``) and error items, in spec order, lazily."""
    for spec in specs:
        if spec == "-":
            yield from _lines(_stdin_lines() if stdin is None else stdin)
        elif spec.startswith("@"):
            yield from _list_file(spec)
        elif os.path.exists(spec) or not _GLOB_CHARS.intersection(spec):
            yield from _path(spec)
        else:
            yield from _glob(spec)


def iter_input_paths(specs: Iterable[str], stdin: TextIO | None = None) -> Iterator[str]:
    """Every file path the specs name, lazily (``-`` reads ``stdin``, default ``sys.stdin``).

    This is the path-only view: specs that resolve to nothing (a missing path, a glob with
    no match, a missing list file) are left out here; :func:`iter_inputs` reports them as
    error items.
    """
    for found in _resolve(specs, stdin):
        if isinstance(found, str):
            yield found


def _classify(path: str) -> Literal["image", "pdf"]:
    ext = _extension(path)
    if ext in PDF_EXTENSIONS:
        return "pdf"
    if ext in IMAGE_EXTENSIONS:
        return "image"
    # Unknown extension (only explicitly named files get here): sniff the header.
    return "pdf" if is_pdf(path) else "image"


def _pdf_pages(path: str) -> Iterator[InputItem]:
    try:
        count = pdf_page_count(path)
    except OcrmillError as exc:
        yield _error(path, exc)
        return
    except Exception as exc:  # never let one bad PDF stop the batch
        yield _error(
            path, InternalError(f"{path}: cannot count pages: {type(exc).__name__}: {exc}")
        )
        return
    if count == 0:
        yield _error(path, EmptyInputError(f"{path}: the PDF has no pages"))
    for page in range(count):
        yield InputItem(name=path, path=path, kind="pdf", page=page)


def iter_inputs(
    specs: Iterable[str], *, stdin: TextIO | None = None, expand_pdf: bool = True
) -> Iterator[InputItem]:
    """Every input the specs name, as :class:`InputItem` s, lazily and in spec order.

    PDFs (``.pdf``, or a header sniff for explicitly named files with no known image
    extension) become one item per page (the page count is read here, without rendering);
    an unreadable PDF becomes one error item. With ``expand_pdf=False`` a PDF is one item
    with ``page=None``. Never raises for a bad input: it becomes a ``kind="error"`` item.
    """
    for found in _resolve(specs, stdin):
        if isinstance(found, InputItem):
            yield found
        elif _classify(found) == "image":
            yield InputItem(name=found, path=found, kind="image")
        elif expand_pdf:
            yield from _pdf_pages(found)
        else:
            yield InputItem(name=found, path=found, kind="pdf")
