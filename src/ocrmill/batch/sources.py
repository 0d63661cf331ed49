"""What to read: inputs of every kind turned, lazily, into :class:`~ocrmill.tasks.Task` s
(runs in the parent process).

:func:`iter_tasks` takes specs (strings or paths), encoded bytes, arrays, PIL images and
ready-made tasks. A spec is one of:

* ``-``: paths read from stdin, one per line;
* ``@list.txt``: paths read from a text file, one per line (blank lines and ``#`` comments
  skipped; a file whose name really starts with ``@`` is reached as ``./@name``);
* an existing directory: walked recursively for image and PDF files;
* an existing file: taken whatever its extension (the decoder judges it);
* otherwise, when it contains ``*``, ``?`` or ``[``: a glob pattern (``**`` recurses).

A path read from stdin or a list file is taken as is (a file or a directory; no glob or
``@`` expansion). Everything is a generator: nothing is listed into memory up front, so the
first input is produced before the source is exhausted, however large it is. An input that
cannot be resolved becomes a task carrying its failure record
(:meth:`~ocrmill.tasks.Task.failed`), in its place; this module never raises for a
bad input. :func:`document_tasks` is the one place a file becomes its pages (a PDF's, a
multi-page TIFF's).
"""

from __future__ import annotations

import glob
import os
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal, TextIO, Union

from ocrmill.config import ReadOptions
from ocrmill.errors import EmptyInputError, InputError, InputNotFoundError, OcrmillError
from ocrmill.pipeline.pdf import is_pdf, pdf_page_count
from ocrmill.results import PageFailure
from ocrmill.tasks import DEFAULT_PDF_DPI, Task

if TYPE_CHECKING:
    from ocrmill.pipeline.decode import ImageSource

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
# Images that may hold several pages, each read as its own task: multi-page scans.
MULTI_PAGE_EXTENSIONS = frozenset({".tif", ".tiff"})
TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
SUPPORTED_EXTENSIONS = IMAGE_EXTENSIONS | PDF_EXTENSIONS

_GLOB_CHARS = frozenset("*?[")


Found = Union[str, PageFailure]  # noqa: UP007 - a runtime alias on Python 3.10
"""A resolved spec: a file path, or the record of a spec that resolved to nothing."""


def _error(name: str, error: OcrmillError) -> PageFailure:
    return PageFailure.from_error(name, error)


def _extension(path: str) -> str:
    return os.path.splitext(path)[1].lower()


def _is_supported(path: str) -> bool:
    return _extension(path) in SUPPORTED_EXTENSIONS


def _walk(root: str) -> Iterator[Found]:
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


def resolve_glob(pattern: str, base: str | None = None) -> Iterator[Found]:
    """The supported files a glob pattern matches (``**`` recurses), lazily; one error item
    when none does. A relative pattern is matched below ``base`` (default: the current
    directory) and its matches are named relative to it, as the pattern was written."""
    found = False
    for match in glob.iglob(pattern, root_dir=base, recursive=True):
        if _is_supported(match) and os.path.isfile(_at(match, base)):
            found = True
            yield match
    if not found:
        yield _error(pattern, InputNotFoundError(f"no files match {pattern}"))


def resolve_path(path: str, base: str | None = None) -> Iterator[Found]:
    """A path taken as is: a directory is walked, anything else existing is one file. A
    relative path is looked up below ``base`` (default: the current directory) and what is
    found is named as ``path`` was written (``scans`` -> ``scans/a.png``)."""
    where = _at(path, base)
    if os.path.isdir(where):
        for found in _walk(where):
            if where != path:  # named below the path as written
                if isinstance(found, str):
                    found = path + found[len(where) :]
                elif found.input.startswith(where):
                    named = path + found.input[len(where) :]
                    message = found.message.replace(found.input, named)
                    found = PageFailure(named, found.code, message, found.page)
            yield found
    elif os.path.exists(where):
        yield path
    else:
        yield _error(path, InputNotFoundError(f"{path}: no such file or directory"))


def _at(path: str, base: str | None) -> str:
    """Where ``path`` is when relative paths start at ``base`` (None: the current directory)."""
    return path if base is None else os.path.join(base, path)


def resolve_lines(stream: Iterable[str], base: str | None = None) -> Iterator[Found]:
    """The inputs of a list's lines, one path each (taken as is, see :func:`resolve_path`);
    blank lines and ``#`` comments are skipped."""
    for raw in stream:
        line = raw.strip()
        if line and not line.startswith("#"):
            yield from resolve_path(line, base)


def _list_file(spec: str) -> Iterator[Found]:
    list_path = spec[1:]
    try:
        # surrogateescape: undecodable bytes map back to the same file-system name.
        with open(list_path, encoding="utf-8", errors="surrogateescape") as fh:
            yield from resolve_lines(fh)
    except FileNotFoundError:
        yield _error(spec, InputNotFoundError(f"{list_path}: list file not found"))
    except OSError as exc:
        yield _error(spec, InputError(f"{list_path}: cannot read list file: {exc.strerror or exc}"))


def _stdin_lines() -> Iterator[str]:
    # Bytes decoded like file-system names, so any path the OS can name gets through.
    for raw in sys.stdin.buffer:
        yield os.fsdecode(raw)


SpecKind = Literal["stdin", "list", "path", "glob"]


def spec_kind(spec: str, base: str | None = None) -> SpecKind:
    """What a spec is (see the module docstring): ``-``, an ``@list``, a path taken as is
    (it exists, or holds no glob character), or a glob; relative paths start at ``base``
    (default: the current directory)."""
    if spec == "-":
        return "stdin"
    if spec.startswith("@"):
        return "list"
    if os.path.exists(_at(spec, base)) or not _GLOB_CHARS.intersection(spec):
        return "path"
    return "glob"


def _resolve(specs: Iterable[str], stdin: TextIO | None) -> Iterator[Found]:
    """File paths (``str``) and error items, in spec order, lazily."""
    for spec in specs:
        kind = spec_kind(spec)
        if kind == "stdin":
            yield from resolve_lines(_stdin_lines() if stdin is None else stdin)
        elif kind == "list":
            yield from _list_file(spec)
        elif kind == "path":
            yield from resolve_path(spec)
        else:
            yield from resolve_glob(spec)


def _is_tiff(path: str) -> bool:
    """Does the file start like a TIFF (classic or BigTIFF, either byte order)?"""
    try:
        with open(path, "rb") as fh:
            return fh.read(4) in TIFF_MAGIC
    except OSError:
        return False


def _classify(path: str) -> Literal["image", "pdf"]:
    ext = _extension(path)
    if ext in PDF_EXTENSIONS:
        return "pdf"
    if ext in IMAGE_EXTENSIONS:
        return "image"
    # Unknown extension (only explicitly named files get here): sniff the header.
    return "pdf" if is_pdf(path) else "image"


def pdf_tasks(
    path: str,
    name: str | None = None,
    *,
    pdf_dpi: int = DEFAULT_PDF_DPI,
    options: ReadOptions | None = None,
) -> Iterator[Task]:
    """One task per page of the PDF at ``path`` (the page count is read here, without
    rendering), named ``name`` (default: the path). An unreadable PDF, or one with no pages,
    yields one failed task instead."""
    label = name or path
    try:
        count = pdf_page_count(path)
    except Exception as exc:  # never let one bad PDF stop the batch
        failure = PageFailure.from_exception(label, exc, context=f"{label}: cannot count pages")
        if label != path:  # name the input as the caller knows it, not a stored file
            failure = PageFailure(label, failure.code, failure.message.replace(path, label))
        yield Task.failed(failure)
        return
    if count == 0:
        yield Task.failed(_error(label, EmptyInputError(f"{label}: the PDF has no pages")))
    for page in range(count):
        yield Task(
            id=0,
            source=path,
            name=label,
            kind="pdf",
            page=page,
            pdf_dpi=pdf_dpi,
            options=options,
            pages=count,
        )


def image_tasks(
    path: str, name: str | None = None, *, options: ReadOptions | None = None
) -> Iterator[Task]:
    """One task per page of the image at ``path``: every page of a multi-page TIFF (its
    page count read from the headers, nothing decoded), the image itself otherwise (an
    animated GIF, WebP or PNG is read at its first frame). A file whose pages cannot be
    counted is one task: reading it reports what is wrong with it."""
    label = name or path
    count = 1
    extension = _extension(path)
    maybe_tiff = extension in MULTI_PAGE_EXTENSIONS or extension not in IMAGE_EXTENSIONS
    if maybe_tiff and _is_tiff(path):
        from ocrmill.pipeline.decode import page_count

        try:
            count = page_count(path, name=label)
        except Exception:  # corrupt or unreadable: its one task gets the error record
            count = 1
    if count <= 1:
        yield Task(id=0, source=path, name=label, options=options, pages=1)
        return
    for page in range(count):
        yield Task(id=0, source=path, name=label, page=page, options=options, pages=count)


def document_tasks(
    path: str,
    name: str | None = None,
    *,
    pdf_dpi: int = DEFAULT_PDF_DPI,
    options: ReadOptions | None = None,
) -> Iterator[Task]:
    """The tasks of one input file, page by page: the one place a document becomes its
    pages (a PDF's pages, a multi-page TIFF's pages, or the image itself), for ``run``,
    ``ocrmill pdf``, server jobs and the Ray stage alike. Never raises for a bad file."""
    if _classify(path) == "pdf":
        yield from pdf_tasks(path, name, pdf_dpi=pdf_dpi, options=options)
    else:
        yield from image_tasks(path, name, options=options)


def _spec_tasks(
    specs: Iterable[str], stdin: TextIO | None, pdf_dpi: int, options: ReadOptions | None
) -> Iterator[Task]:
    for found in _resolve(specs, stdin):
        if isinstance(found, PageFailure):
            yield Task.failed(found)
        else:
            yield from document_tasks(found, pdf_dpi=pdf_dpi, options=options)


def iter_tasks(
    inputs: str | os.PathLike[str] | Iterable[Any],
    *,
    pdf_dpi: int = DEFAULT_PDF_DPI,
    options: ReadOptions | None = None,
    stdin: TextIO | None = None,
) -> Iterator[Task]:
    """Every task the inputs name, lazily and in input order (task ids are left 0: the
    executor numbers them).

    ``inputs`` is one spec or an iterable of: specs (``str`` or path; see the module
    docstring; a PDF becomes one task per page), encoded image bytes, RGB/grey numpy arrays,
    PIL images, or :class:`Task` s (taken as they are). Unnamed inputs are named by kind and
    position, e.g. ``<array 3>``. Never raises for a bad input: it becomes a failed task.
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    for position, item in enumerate(inputs):
        if isinstance(item, (str, os.PathLike)):
            yield from _spec_tasks([os.fspath(item)], stdin, pdf_dpi, options)
        else:
            yield _object_task(item, position, options)


def _object_task(item: Any, position: int, options: ReadOptions | None) -> Task:
    if isinstance(item, Task):
        return item
    source: ImageSource
    if isinstance(item, (bytes, bytearray, memoryview)):
        source, kind = bytes(item), "bytes"
    else:
        import numpy as np

        try:
            source = np.asarray(item)  # arrays, and PIL images through their array interface
        except Exception as exc:
            return Task.failed(PageFailure.from_exception(f"<input {position}>", exc))
        if source.dtype == object:
            name = f"<{type(item).__name__} {position}>"
            return Task.failed(
                _error(name, InputError(f"{name}: not an image, path, bytes or Task"))
            )
        kind = "array"
    return Task(id=0, source=source, name=f"<{kind} {position}>", options=options)


def count_tasks(
    inputs: str | os.PathLike[str] | Iterable[Any],
    *,
    pdf_dpi: int = DEFAULT_PDF_DPI,
    stop: threading.Event | None = None,
) -> int | None:
    """How many tasks (records) :func:`iter_tasks` makes of ``inputs``, counted by listing
    them a second time (nothing is kept: memory stays flat): for a progress bar's total.
    None when they cannot be listed twice (stdin, a one-shot iterator) or ``stop`` is set
    meanwhile."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    if not isinstance(inputs, Sequence):
        return None
    if any(isinstance(item, (str, os.PathLike)) and os.fspath(item) == "-" for item in inputs):
        return None
    count = 0
    for item in inputs:
        if not isinstance(item, (str, os.PathLike)):
            count += 1
            continue
        for found in _resolve([os.fspath(item)], None):
            if stop is not None and stop.is_set():
                return None
            if isinstance(found, PageFailure):
                count += 1
            else:
                count += sum(1 for _ in document_tasks(found, pdf_dpi=pdf_dpi))
    return count
