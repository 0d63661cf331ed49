"""Image decoding: any supported input to RGB uint8 pixels, with a size cap and typed errors.

Long (~550 lines) on purpose: every guard between untrusted bytes and Pillow (format
allow-list, the pixel cap checked from the header, per-mode conversions, multi-page
handling) lives here, so there is one file to audit for what reaches a decoder.
"""

from __future__ import annotations

import io
import itertools
import os
import stat
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import IO, TypeAlias

import numpy as np
import numpy.typing as npt
from PIL import ExifTags, Image, ImageFile, ImageOps, UnidentifiedImageError

from ocrmill.errors import (
    ConfigError,
    CorruptImageError,
    EmptyInputError,
    ImageTooLargeError,
    InputError,
    InputNotFoundError,
    UnsupportedFormatError,
)

ImageSource: TypeAlias = (
    str | os.PathLike[str] | bytes | bytearray | memoryview | np.ndarray | Image.Image
)
"""Everything :func:`decode_image` accepts: a path, encoded bytes, an array or a PIL image."""

MAX_PIXELS_SETTING = "max_pixels (OCRMILL_DECODE_MAX_PIXELS / --max-pixels)"
"""How users raise the pixel cap; quoted in every :class:`ImageTooLargeError`."""

# Formats Image.open may identify. An allow-list keeps Pillow from handing arbitrary bytes
# to loose or risky plugins (TGA accepts almost anything; EPS runs Ghostscript).
_OPEN_FORMATS = ("JPEG", "PNG", "TIFF", "GIF", "WEBP", "BMP", "JPEG2000", "PPM", "QOI")
# The JPEG plugin reports multi-picture camera JPEGs as "MPO".
_DECODED_FORMATS = frozenset((*_OPEN_FORMATS, "MPO"))
# Formats whose frames iter_pages yields one by one (MPO's extra pictures are previews).
_MULTI_PAGE_FORMATS = frozenset(("TIFF", "GIF", "WEBP", "PNG"))
_SUPPORTED_LIST = "JPEG, PNG, TIFF, GIF, WebP or BMP"

# Gray modes wider than 8 bits: scaled to 0..255 with numpy, not by Pillow's convert
# (which clips "I;16" and "I" to 255 and would turn most 16-bit scans white).
_WIDE_GRAY_MODES = frozenset(("I;16", "I;16B", "I;16L", "I;16N", "I", "F"))
_ALPHA_MODES = frozenset(("RGBA", "RGBa", "LA", "La", "PA"))
_WHITE = (255, 255, 255)

# What Pillow's decoders raise on malformed data (Image.open itself swallows the same
# family while probing formats).
_DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    TypeError,
    KeyError,
    struct.error,
)


@dataclass(frozen=True, eq=False)
class DecodedImage:
    """One decoded page: RGB pixels plus where they came from.

    ``eq=False``: instances compare by identity (arrays have no single truth value).
    """

    pixels: npt.NDArray[np.uint8]  # H x W x 3, uint8, RGB order, C-contiguous
    name: str  # the path as given, "<bytes>", "<array>", "<PIL image>" or the caller's name
    page: int | None  # page/frame index within a multi-page source, else None


class _PillowGuards:
    """Holds Pillow's process-wide decode settings in a known state while we decode.

    Pillow reads two module globals at decode time: ``Image.MAX_IMAGE_PIXELS`` (its own
    decompression-bomb check, in ``Image.open``, GIF/TIFF ``seek`` and TIFF ``load``) and
    ``ImageFile.LOAD_TRUNCATED_IMAGES``. Neither can be passed per call. Our
    ``max_pixels`` cap is authoritative and is checked from the header before any pixels
    are decoded, so Pillow's check is lifted (``None``) and truncation is forced to raise,
    but only while at least one decode step is running: a reference count, guarded by a
    lock, lets threads decode concurrently without serialising, and the first entrant
    saves and the last leaver restores the caller's values. The globals are never left
    changed. Trade-off: code elsewhere in the process that opens images during that window
    sees the same settings; ocrmill's own decoding all goes through here.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._saved_max_pixels: int | None = None
        self._saved_load_truncated = False

    @contextmanager
    def held(self) -> Iterator[None]:
        """Lift Pillow's bomb check and forbid truncated loads for the ``with`` body."""
        with self._lock:
            if self._depth == 0:
                self._saved_max_pixels = Image.MAX_IMAGE_PIXELS
                self._saved_load_truncated = ImageFile.LOAD_TRUNCATED_IMAGES
                Image.MAX_IMAGE_PIXELS = None
                ImageFile.LOAD_TRUNCATED_IMAGES = False
            self._depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0:
                    Image.MAX_IMAGE_PIXELS = self._saved_max_pixels
                    ImageFile.LOAD_TRUNCATED_IMAGES = self._saved_load_truncated


_GUARDS = _PillowGuards()


@dataclass(frozen=True)
class _Opened:
    image: Image.Image
    name: str
    owned: bool  # we opened it: free to close early; False for a caller's PIL image


# --------------------------------------------------------------------------- public API


def decode_image(source: ImageSource, *, max_pixels: int, name: str | None = None) -> DecodedImage:
    """Decode the first page/frame of ``source`` to RGB uint8 pixels.

    A caller's PIL image is decoded at the frame it is on. ``page`` is that frame's index
    when the source has several, else None. Raises an :class:`~ocrmill.errors.InputError`
    subclass for any input that cannot be read, and :class:`ImageTooLargeError` (checked
    from the header, before decoding) when the image has more than ``max_pixels`` pixels.
    """
    _check_cap_setting(max_pixels)
    if isinstance(source, np.ndarray):
        label = name or "<array>"
        return DecodedImage(_array_to_rgb(source, label, max_pixels), label, None)
    with _open_source(source, name) as opened:
        page = opened.image.tell() if _is_multi_page(opened) else None
        return _decode_frame(opened, max_pixels, page, release=opened.owned)


def decode_page(
    source: ImageSource, index: int, *, max_pixels: int, name: str | None = None
) -> DecodedImage:
    """Decode page ``index`` (0-based) of a multi-page image (a TIFF's page, a GIF's frame);
    page 0 of a single-page image is the image itself. Errors as :func:`decode_image`'s."""
    _check_cap_setting(max_pixels)
    if isinstance(source, np.ndarray) or index == 0:
        decoded = decode_image(source, max_pixels=max_pixels, name=name)
        return DecodedImage(decoded.pixels, decoded.name, index if index else decoded.page)
    with _open_source(source, name) as opened:
        if not _is_multi_page(opened) or not _seek(opened, index):
            raise InputError(f"{opened.name}: page {index + 1} does not exist")
        return _decode_frame(opened, max_pixels, index, release=False)


def page_count(source: ImageSource, *, name: str | None = None) -> int:
    """How many pages (frames) an image has, from its headers (1 for most images)."""
    if isinstance(source, np.ndarray):
        return 1
    with _open_source(source, name) as opened:
        return int(getattr(opened.image, "n_frames", 1)) if _is_multi_page(opened) else 1


def iter_pages(
    source: ImageSource, *, max_pixels: int, name: str | None = None
) -> Iterator[DecodedImage]:
    """Decode every page of a multi-page TIFF (every frame of a GIF, animated WebP/PNG).

    Pages are decoded lazily, one per step, with ``page`` = 0, 1, ...; each is checked
    against ``max_pixels`` before it is decoded. A single-page source yields one image
    with ``page=None``. Errors are raised when iterated, like :func:`decode_image`'s. A
    caller's PIL image is left on the frame it was on.
    """
    _check_cap_setting(max_pixels)
    if isinstance(source, np.ndarray):
        yield decode_image(source, max_pixels=max_pixels, name=name)
        return
    with _open_source(source, name) as opened:
        if not _is_multi_page(opened):
            yield _decode_frame(opened, max_pixels, None, release=opened.owned)
            return
        start = opened.image.tell()
        try:
            for index in itertools.count():
                if not _seek(opened, index):
                    return
                yield _decode_frame(opened, max_pixels, index, release=False)
        finally:
            if not opened.owned:
                _restore_frame(opened.image, start)


@contextmanager
def open_page(
    source: str | os.PathLike[str] | bytes,
    index: int | None = None,
    *,
    max_pixels: int,
    name: str | None = None,
) -> Iterator[Image.Image]:
    """Page ``index`` (0-based; None: the first) of an image as Pillow opened it, for a
    caller that needs the stored data rather than RGB pixels (a searchable PDF embeds the
    original image). The same cap and guards as decoding: the page's size is checked from
    its header against ``max_pixels`` before anything is decoded, and the ``with`` body
    runs with Pillow's own, lower, bomb check lifted. Errors as :func:`decode_image`'s
    while opening; the body's own failures are the caller's to translate."""
    _check_cap_setting(max_pixels)
    with _open_source(source, name) as opened:
        where = opened.name
        if index:
            if not _is_multi_page(opened) or not _seek(opened, index):
                raise InputError(f"{opened.name}: page {index + 1} does not exist")
            where = f"{opened.name} (page {index})"
        _check_size(opened.image.width, opened.image.height, where, max_pixels)
        with _GUARDS.held():
            yield opened.image


def image_size(source: ImageSource, *, name: str | None = None) -> tuple[int, int]:
    """``(width, height)`` of ``source``'s first page, read from the header only.

    This is the size as stored: EXIF orientation (which may swap the two) is not applied.
    Raises the same input errors as :func:`decode_image`.
    """
    if isinstance(source, np.ndarray):
        label = name or "<array>"
        if source.ndim not in (2, 3):
            raise InputError(f"{label}: unsupported array shape {source.shape}")
        return int(source.shape[1]), int(source.shape[0])
    with _open_source(source, name) as opened:
        width, height = opened.image.size
        return width, height


# ------------------------------------------------------------------------ opening sources


def _check_cap_setting(max_pixels: int) -> None:
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise ConfigError(f"{MAX_PIXELS_SETTING} must be a positive integer, got {max_pixels!r}")


@contextmanager
def _open_source(source: ImageSource, name: str | None) -> Iterator[_Opened]:
    """Open a path, encoded bytes or a caller's PIL image, without decoding pixels."""
    if isinstance(source, Image.Image):
        yield _Opened(source, name or "<PIL image>", owned=False)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        label = name or "<bytes>"
        with _open_bytes(source, label) as stream, _open_stream(stream, label) as image:
            yield _Opened(image, label, owned=True)
    elif isinstance(source, (str, os.PathLike)):
        label = name or os.fsdecode(source)
        with _open_path(source, label) as stream, _open_stream(stream, label) as image:
            yield _Opened(image, label, owned=True)
    else:
        label = name or f"<{type(source).__name__}>"
        raise InputError(
            f"{label}: cannot read an input of type {type(source).__name__}; pass a path, "
            "bytes, a numpy array or a PIL image"
        )


@contextmanager
def _open_bytes(data: bytes | bytearray | memoryview, label: str) -> Iterator[IO[bytes]]:
    view = memoryview(data)
    if view.nbytes == 0:
        raise EmptyInputError(f"{label}: input is empty (0 bytes)")
    # BytesIO shares an immutable bytes object; other buffers are copied once.
    with io.BytesIO(data if view.contiguous else view.tobytes()) as stream:
        yield stream


@contextmanager
def _open_path(path: str | os.PathLike[str], label: str) -> Iterator[IO[bytes]]:
    """Open a file for Pillow to stream from (never read whole into memory)."""
    try:
        stream = open(path, "rb")  # noqa: SIM115 (closed by the with block below)
    except (FileNotFoundError, NotADirectoryError):
        raise InputNotFoundError(f"{label}: file not found") from None
    except IsADirectoryError:
        raise InputError(f"{label}: is a directory, not an image file") from None
    except PermissionError:
        if os.path.isdir(path):  # Windows reports directories this way
            raise InputError(f"{label}: is a directory, not an image file") from None
        raise InputError(f"{label}: permission denied") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{label}: cannot open file ({exc})") from exc
    with stream:
        info = os.fstat(stream.fileno())
        if stat.S_ISDIR(info.st_mode):
            raise InputError(f"{label}: is a directory, not an image file")
        if stat.S_ISREG(info.st_mode) and info.st_size == 0:
            raise EmptyInputError(f"{label}: file is empty (0 bytes)")
        yield stream


@contextmanager
def _open_stream(stream: IO[bytes], label: str) -> Iterator[Image.Image]:
    """``Image.open`` with its failures translated; the image is closed on exit."""
    try:
        prefix = stream.read(32)
        stream.seek(0)
    except OSError as exc:
        raise InputError(f"{label}: cannot read file ({exc})") from exc
    if not prefix:
        raise EmptyInputError(f"{label}: input is empty (0 bytes)")
    with _GUARDS.held():
        try:
            image = Image.open(stream, formats=_open_formats())
        except UnidentifiedImageError:
            raise _unidentified(label, prefix) from None
        except Image.DecompressionBombError as exc:
            raise ImageTooLargeError(f"{label}: {exc}; raise {MAX_PIXELS_SETTING}") from exc
        except _DECODE_ERRORS as exc:
            raise CorruptImageError(f"{label}: damaged image header ({exc})") from exc
    with image:
        if image.format not in _DECODED_FORMATS:
            raise UnsupportedFormatError(f"{label}: {image.format} images are not supported")
        yield image


@cache
def _open_formats() -> tuple[str, ...]:
    Image.init()
    return tuple(fmt for fmt in _OPEN_FORMATS if fmt in Image.OPEN)


def _sniff(prefix: bytes) -> str | None:
    """Name the format the leading bytes claim, for error messages only."""
    signatures = (
        (b"\x89PNG\r\n\x1a\n", "PNG"),
        (b"\xff\xd8\xff", "JPEG"),
        (b"GIF87a", "GIF"),
        (b"GIF89a", "GIF"),
        (b"II*\x00", "TIFF"),
        (b"MM\x00*", "TIFF"),
        (b"%PDF-", "PDF"),
    )
    for magic, fmt in signatures:
        if prefix.startswith(magic):
            return fmt
    if prefix[:4] == b"RIFF" and prefix[8:12] == b"WEBP":
        return "WebP"
    if prefix[:2] == b"BM" and len(prefix) >= 18:
        header_size = int.from_bytes(prefix[14:18], "little")
        if header_size in (12, 40, 52, 56, 64, 108, 124):
            return "BMP"
    return None


def _unidentified(label: str, prefix: bytes) -> InputError:
    claimed = _sniff(prefix)
    if claimed == "PDF":
        return UnsupportedFormatError(
            f"{label}: is a PDF document, not an image; PDFs go through `ocrmill run`, "
            "which renders their pages"
        )
    if claimed is not None:
        return CorruptImageError(f"{label}: {claimed} header is truncated or damaged")
    return UnsupportedFormatError(
        f"{label}: not an image in a supported format ({_SUPPORTED_LIST}); "
        f"it starts with {prefix[:8]!r}"
    )


# ------------------------------------------------------------------------ decoding frames


@contextmanager
def _decoding(label: str, image: Image.Image, what: str) -> Iterator[None]:
    """Run one Pillow decode step under the guards, translating its failures."""
    kind = image.format or "image"
    with _GUARDS.held():
        try:
            yield
        except Image.DecompressionBombError as exc:
            raise ImageTooLargeError(f"{label}: {exc}; raise {MAX_PIXELS_SETTING}") from exc
        except _DECODE_ERRORS as exc:
            raise CorruptImageError(
                f"{label}: {kind} is truncated or damaged ({what} failed: {exc})"
            ) from exc


def _is_multi_page(opened: _Opened) -> bool:
    image = opened.image
    if image.format not in _MULTI_PAGE_FORMATS:
        return False
    with _decoding(opened.name, image, "counting pages"):
        return bool(getattr(image, "is_animated", False))


def _seek(opened: _Opened, index: int) -> bool:
    """Move to page ``index``; False when there is no such page."""
    with _decoding(opened.name, opened.image, f"reading page {index}"):
        try:
            opened.image.seek(index)
        except EOFError:
            return False
    return True


def _restore_frame(image: Image.Image, frame: int) -> None:
    try:
        with _GUARDS.held():
            image.seek(frame)
    except _DECODE_ERRORS:
        pass  # best effort: the caller's image was readable up to here


def _check_size(width: int, height: int, label: str, max_pixels: int) -> None:
    pixels = width * height
    if pixels > max_pixels:
        raise ImageTooLargeError(
            f"{label}: image is {width}x{height} = {pixels:,} pixels, more than the "
            f"limit of {max_pixels:,}; raise {MAX_PIXELS_SETTING} to read it"
        )


def _decode_frame(
    opened: _Opened, max_pixels: int, page: int | None, *, release: bool
) -> DecodedImage:
    """Check the current frame's size from its header, then decode and convert it."""
    image = opened.image
    where = opened.name if page is None else f"{opened.name} (page {page})"
    _check_size(image.width, image.height, where, max_pixels)
    what = "decoding" if page is None else f"decoding page {page}"
    with _decoding(opened.name, image, what):
        image.load()
    return DecodedImage(_to_rgb_array(image, opened.name, release=release), opened.name, page)


def _to_rgb_array(image: Image.Image, label: str, *, release: bool) -> npt.NDArray[np.uint8]:
    """Orient and convert a loaded image; ``release``: ``image`` may be closed early.

    Each intermediate image is closed as soon as the next exists, so at most two
    full-size copies are alive at a time.
    """
    current, closable = image, release
    for step in (_apply_orientation, _to_rgb_mode):
        try:
            converted = step(current)
        except _DECODE_ERRORS as exc:
            raise UnsupportedFormatError(
                f"{label}: cannot turn a {current.mode!r} image into upright RGB ({exc})"
            ) from exc
        if converted is not current:
            if closable:
                current.close()
            current, closable = converted, True
    mode, values = current.mode, np.asarray(current)
    if closable:
        current.close()
    if mode in _WIDE_GRAY_MODES:
        return _gray_to_rgb(_wide_to_uint8(values, mode == "F"))
    return np.array(values, dtype=np.uint8, order="C")  # writable copy owned by us


def _apply_orientation(image: Image.Image) -> Image.Image:
    """The image turned upright per its EXIF orientation (a new image), or ``image``."""
    try:
        orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
    except _DECODE_ERRORS:
        return image  # unreadable EXIF: keep the pixels as stored
    if orientation not in range(2, 9):
        return image
    return ImageOps.exif_transpose(image)


def _to_rgb_mode(image: Image.Image) -> Image.Image:
    """``image`` in mode "RGB" (transparency composited on white); wide gray left as is."""
    if image.mode in _WIDE_GRAY_MODES or (image.mode == "RGB" and not _has_alpha(image)):
        return image
    if _has_alpha(image):
        return _composite_on_white(image)
    return image.convert("RGB")


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in _ALPHA_MODES or "transparency" in image.info


def _composite_on_white(image: Image.Image) -> Image.Image:
    """Flatten transparency onto white: documents are dark text on a clear background."""
    rgba = image.convert("LA").convert("RGBA") if image.mode == "La" else image.convert("RGBA")
    flat = Image.new("RGB", image.size, _WHITE)
    flat.paste(rgba, (0, 0), rgba)
    if rgba is not image:
        rgba.close()
    return flat


# ------------------------------------------------------------------------- numpy arrays


def _array_to_rgb(array: np.ndarray, label: str, max_pixels: int) -> npt.NDArray[np.uint8]:
    """Validate and convert a caller's array (never modified) to a new RGB uint8 array."""
    if array.size == 0:
        raise EmptyInputError(f"{label}: array is empty (shape {array.shape})")
    values = array[:, :, 0] if array.ndim == 3 and array.shape[2] == 1 else array
    if not (values.ndim == 2 or (values.ndim == 3 and values.shape[2] in (3, 4))):
        raise InputError(
            f"{label}: unsupported array shape {array.shape}; expected HxW (gray), HxWx1, "
            "HxWx3 (RGB) or HxWx4 (RGBA)"
        )
    if not _is_supported_dtype(values.dtype):
        raise InputError(
            f"{label}: unsupported array dtype {array.dtype}; expected uint8, uint16, bool or float"
        )
    _check_size(int(values.shape[1]), int(values.shape[0]), label, max_pixels)
    narrow = _array_to_uint8(values)
    if narrow.ndim == 2:
        return _gray_to_rgb(narrow)
    if narrow.shape[2] == 4:
        return _rgba_on_white(narrow)
    if np.may_share_memory(narrow, array):
        return np.array(narrow, order="C")
    return np.ascontiguousarray(narrow)


def _is_supported_dtype(dtype: np.dtype) -> bool:
    return (
        dtype.kind == "b"
        or (dtype.kind == "u" and dtype.itemsize in (1, 2))
        or (dtype.kind == "f" and dtype.itemsize <= 8)
    )


def _array_to_uint8(values: np.ndarray) -> npt.NDArray[np.uint8]:
    """Scale a bool, uint8, uint16 or float array to uint8 (uint8 is returned as is)."""
    if values.dtype.kind == "b":
        return values.astype(np.uint8) * np.uint8(255)
    if values.dtype.kind == "f":
        return _float_to_uint8(values)
    if values.dtype.itemsize == 2:
        return _wide_to_uint8(values, False)
    return values.astype(np.uint8, copy=False)


def _float_to_uint8(values: np.ndarray) -> npt.NDArray[np.uint8]:
    """Floats in [0, 1] are scaled by 255; anything larger is taken as 0..255 and clipped."""
    finite = np.nan_to_num(values.astype(np.float32), nan=0.0, posinf=255.0, neginf=0.0)
    if finite.max() <= 1.0:
        finite *= 255.0
    np.clip(finite, 0.0, 255.0, out=finite)
    return np.rint(finite, out=finite).astype(np.uint8)


def _wide_to_uint8(values: np.ndarray, is_float: bool) -> npt.NDArray[np.uint8]:
    """Scale 16-bit, 32-bit or float gray levels to 0..255 without clipping detail away.

    Integers within 0..255 are kept; within 0..65535 they are divided by 257 (the 16-bit
    to 8-bit mapping); anything else, and all floats, is min-max normalised.
    """
    if is_float:
        return _minmax_to_uint8(values)
    low, high = int(values.min()), int(values.max())
    if low >= 0 and high <= 255:
        return values.astype(np.uint8)
    if low >= 0 and high <= 65535:
        scaled = values.astype(np.uint32)
        scaled += 128
        scaled //= 257
        return scaled.astype(np.uint8)
    return _minmax_to_uint8(values)


def _minmax_to_uint8(values: np.ndarray) -> npt.NDArray[np.uint8]:
    """Stretch the finite range to 0..255; a constant image maps to its (clipped) value."""
    work = values.astype(np.float32)
    finite = np.isfinite(work)
    if not finite.any():
        return np.zeros(work.shape, dtype=np.uint8)
    low, high = float(work[finite].min()), float(work[finite].max())
    work[np.isnan(work)] = low
    np.clip(work, low, high, out=work)  # infinities go to the ends of the range
    if high == low:
        return np.full(work.shape, np.clip(round(low), 0, 255), dtype=np.uint8)
    work -= low
    work *= 255.0 / (high - low)
    return np.rint(work, out=work).astype(np.uint8)


def _gray_to_rgb(gray: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    return np.stack((gray, gray, gray), axis=2)  # several times faster than broadcasting


def _rgba_on_white(rgba: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """Composite straight (non-premultiplied) RGBA on white, rounding to nearest."""
    alpha = rgba[:, :, 3:4].astype(np.uint16)
    mixed = rgba[:, :, :3].astype(np.uint16)
    mixed *= alpha
    mixed += (255 - alpha) * 255 + 127  # at most 255 * 255 + 127: fits in uint16
    mixed //= 255
    return mixed.astype(np.uint8)
