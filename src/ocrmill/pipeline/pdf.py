"""PDF pages to pixels with pypdfium2: page counting (cheap, no rendering) and rendering
one page at a time, under the same pixel cap as images."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ocrmill.errors import (
    CorruptImageError,
    EncryptedPdfError,
    ImageTooLargeError,
    InputError,
    InputNotFoundError,
)
from ocrmill.pipeline.decode import MAX_PIXELS_SETTING, DecodedImage

PDF_MAGIC = b"%PDF-"


def is_pdf(path: str | os.PathLike[str]) -> bool:
    """True when the file starts like a PDF (extension alone is not trusted)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(1024).lstrip().startswith(PDF_MAGIC)
    except OSError:
        return False


def _open(path: str | os.PathLike[str]):
    import pypdfium2 as pdfium

    name = os.fspath(path)
    if not Path(name).exists():
        raise InputNotFoundError(f"{name}: no such file")
    try:
        return pdfium.PdfDocument(name)
    except pdfium.PdfiumError as exc:
        if exc.err_code == pdfium.raw.FPDF_ERR_PASSWORD:
            raise EncryptedPdfError.for_file(name) from None
        raise CorruptImageError(f"{name}: not a readable PDF: {exc}") from None
    except OSError as exc:
        raise InputError(f"{name}: cannot read: {exc.strerror or exc}") from None


def pdf_page_count(path: str | os.PathLike[str]) -> int:
    doc = _open(path)
    try:
        return len(doc)
    finally:
        doc.close()


def pdf_page_size(path: str | os.PathLike[str], index: int) -> tuple[float, float]:
    """``(width, height)`` of page ``index`` (0-based) in PDF points, without rendering."""
    name = os.fspath(path)
    doc = _open(path)
    try:
        if not 0 <= index < len(doc):
            raise InputError(f"{name}: page {index + 1} does not exist ({len(doc)} pages)")
        width, height = doc[index].get_size()
        return float(width), float(height)
    finally:
        doc.close()


def render_pdf_page(
    path: str | os.PathLike[str], index: int, *, dpi: int, max_pixels: int
) -> DecodedImage:
    """Render page ``index`` (0-based) at ``dpi`` to RGB pixels (white background)."""
    import pypdfium2 as pdfium

    name = os.fspath(path)
    doc = _open(path)
    try:
        if not 0 <= index < len(doc):
            raise InputError(f"{name}: page {index + 1} does not exist ({len(doc)} pages)")
        try:
            page = doc[index]
            width_pt, height_pt = page.get_size()
            scale = dpi / 72.0
            pixels = int(width_pt * scale) * int(height_pt * scale)
            if pixels > max_pixels:
                raise ImageTooLargeError(
                    f"{name} (page {index + 1}): {width_pt * scale:.0f}x{height_pt * scale:.0f} at "
                    f"{dpi} dpi is {pixels:,} pixels, over the cap of {max_pixels:,}; lower --pdf-dpi "
                    f"or raise {MAX_PIXELS_SETTING}"
                )
            bitmap = page.render(scale=scale, rev_byteorder=True, fill_color=(255, 255, 255, 255))
            array = bitmap.to_numpy()
        except pdfium.PdfiumError as exc:
            raise CorruptImageError(f"{name} (page {index + 1}): cannot render: {exc}") from None
        rgb = (
            np.ascontiguousarray(array[:, :, :3])
            if array.ndim == 3
            else np.stack([array] * 3, axis=-1)
        )
        return DecodedImage(pixels=rgb, name=name, page=index)
    finally:
        doc.close()
