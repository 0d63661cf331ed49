"""Searchable PDFs: an invisible text layer grafted onto a PDF's own pages, or image pages
built around the original image data, written with pikepdf (qpdf) and saved atomically.

PDF input keeps every page's content as it is (nothing is re-rendered or re-encoded); the
layer is a Form XObject drawn by a content stream appended to the page, with the glyphless
font added once to the document. Image input becomes one page per image (per frame of a multi-page TIFF) at its
own resolution: a JPEG's bytes are embedded as they are, other formats losslessly (Flate).
The layer of a page is added as soon as its result arrives, so memory holds layers, not
results: a 500-page document needs little more than a 5-page one.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ocrmill.atomic import write_atomically
from ocrmill.config import DecodeConfig
from ocrmill.errors import DocumentError, EncryptedPdfError
from ocrmill.outputs.glyphless import add_font
from ocrmill.outputs.pdf_layer import PixelMap, text_layer
from ocrmill.outputs.pdf_save import PdfOptions, finish, save_settings
from ocrmill.outputs.pdf_strip import own_xobjects, strip_invisible_text
from ocrmill.results import PageResult

if TYPE_CHECKING:
    import pikepdf

FONT_RESOURCE = "OcrmillText"
LAYER_RESOURCE = "OcrmillLayer"  # the page's name for the layer's Form XObject
DEFAULT_IMAGE_DPI = 300
EXIF_ORIENTATION = 0x0112
# EXIF orientations that are pure turns, as the clockwise /Rotate that shows them upright.
TURNS = {3: 180, 6: 90, 8: 270}


def open_pdf(path: str | os.PathLike[str]) -> pikepdf.Pdf:
    """Open a PDF for grafting; a clear error for an encrypted or unreadable file."""
    import pikepdf

    name = os.fspath(path)
    try:
        return pikepdf.open(name)
    except pikepdf.PasswordError:
        raise EncryptedPdfError.for_file(name) from None
    except (pikepdf.PdfError, OSError, ValueError) as exc:
        raise DocumentError(f"{name}: not a readable PDF: {exc}") from None


def pages_with_text(path: str | os.PathLike[str], pages: Iterable[int] | None = None) -> set[int]:
    """The pages (0-based; of ``pages``, default all) that already carry text: born-digital,
    or OCRed before."""
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(os.fspath(path))
    found: set[int] = set()
    try:
        for index in range(len(doc)) if pages is None else sorted(pages):
            textpage = doc[index].get_textpage()
            try:
                if textpage.get_text_range().strip():
                    found.add(index)
            finally:
                textpage.close()
    finally:
        doc.close()
    return found


class LayeredPdf:
    """A PDF being made searchable: :meth:`add_layer` per page result, then :meth:`save`
    (as ``options`` say: PDF/A or not, pages turned upright, earlier layers replaced)."""

    def __init__(self, pdf: pikepdf.Pdf, options: PdfOptions | None = None) -> None:
        self.pdf = pdf
        self.options = options or PdfOptions()
        self._font: pikepdf.Object | None = None
        self.layered: set[int] = set()

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        is_pdf: bool,
        pages: int = 1,
        max_pixels: int,
        options: PdfOptions | None = None,
    ) -> LayeredPdf:
        """The document to layer for an input: the PDF itself, or new pages built around
        the ``pages`` frames of an image (see :func:`image_document`)."""
        if is_pdf:
            return cls(open_pdf(path), options)
        return cls(image_document(path, pages, max_pixels=max_pixels), options)

    @property
    def font(self) -> pikepdf.Object:
        if self._font is None:
            self._font = add_font(self.pdf)
        return self._font

    def add_layer(self, index: int, result: PageResult) -> None:
        """Draw ``result``'s words invisibly over page ``index`` (0-based). The result's
        pixels are the page's visible area as a viewer shows it (rendered at any dpi).
        With ``redo_ocr``, the page's earlier invisible layers go first; with
        ``rotate_pages``, a page read turned is then shown upright."""
        import pikepdf
        from pikepdf import Array, Dictionary, Name

        page = self.pdf.pages[index]
        if self.options.redo_ocr:
            strip_invisible_text(self.pdf, index)
        box = _visible_box(page)
        rotate = int(page.obj.get("/Rotate", 0))
        to_page = PixelMap.for_page(box, rotate, result.width, result.height)
        content = text_layer(result.lines, to_page, FONT_RESOURCE)
        # The layer is a Form XObject, as OCRmyPDF's is: pdfminer.six writes the text of a
        # form in content order (our reading order) instead of re-ordering it by its own
        # layout analysis, which scrambles turned pages and ragged columns.
        layer = pikepdf.Stream(self.pdf, zlib.compress(content))
        layer[Name.Filter] = Name.FlateDecode
        layer[Name.Type] = Name.XObject
        layer[Name.Subtype] = Name.Form
        layer[Name.BBox] = Array([float(v) for v in page.mediabox])
        layer[Name.Resources] = Dictionary(Font=Dictionary({"/" + FONT_RESOURCE: self.font}))
        xobjects = own_xobjects(page)  # a layer named in a shared dictionary shows everywhere
        name = _free_name(xobjects, LAYER_RESOURCE)
        xobjects[Name(name)] = layer
        # The page's own content is wrapped in q/Q so its graphics state cannot leak into
        # the layer; the layer then runs in the page's default coordinate system.
        page.contents_add(pikepdf.Stream(self.pdf, b"q\n"), prepend=True)
        page.contents_add(pikepdf.Stream(self.pdf, b"Q\n"), prepend=False)
        page.contents_add(pikepdf.Stream(self.pdf, f"q {name} Do Q\n".encode()), prepend=False)
        if self.options.rotate_pages and result.rotation:
            # The layer is in the page's own coordinates, which /Rotate does not move: the
            # page turns on screen with its words. The content turned counter-clockwise by
            # ``rotation`` shows upright turned clockwise by as much more.
            page.obj[Name.Rotate] = (rotate + result.rotation) % 360
        self.layered.add(index)

    def save(self, path: str | os.PathLike[str], software: str = "ocrmill") -> list[str]:
        """Finish the document (metadata by ``software``; PDF/A-2b where asked and possible:
        see :func:`~ocrmill.outputs.pdf_save.finish`) and write it to ``path`` atomically
        (see :func:`~ocrmill.atomic.write_atomically`). Returns why it is not PDF/A where
        PDF/A was asked for and the document does not allow it (empty otherwise)."""
        reasons = finish(self.pdf, self.options, software)
        settings = save_settings()
        write_atomically(path, lambda tmp: self.pdf.save(tmp, **settings))
        return reasons

    def close(self) -> None:
        self.pdf.close()


def _free_name(resources: Any, stem: str) -> str:
    """``/stem``, or ``/stem2``, ``/stem3``... : the first name ``resources`` lacks (a page
    made searchable before, and forced again, already has one layer)."""
    name, n = "/" + stem, 1
    while name in resources:
        n += 1
        name = f"/{stem}{n}"
    return name


def _visible_box(page: Any) -> tuple[float, float, float, float]:
    """The page's crop box (what viewers and renderers show), normalized x0 < x1, y0 < y1."""
    x0, y0, x1, y1 = (float(v) for v in page.cropbox)
    return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def image_page(
    pdf: pikepdf.Pdf,
    path: str | os.PathLike[str],
    frame: int = 0,
    *,
    max_pixels: int = DecodeConfig.max_pixels,
) -> int:
    """Append a page showing frame ``frame`` of the image at ``path`` at its resolution
    (300 dpi when it states none); returns the new page's index. A JPEG is embedded as
    its own bytes; anything else losslessly. The image is opened under the same pixel cap
    and guards as images read (:func:`~ocrmill.pipeline.decode.open_page`)."""
    import pikepdf
    from pikepdf import Array, Dictionary, Name
    from PIL import ImageOps

    from ocrmill.pipeline.decode import open_page

    name = os.fspath(path)
    with open_page(name, frame, max_pixels=max_pixels) as image:
        dpi_x, dpi_y = image_dpi(image)
        orientation = int(image.getexif().get(EXIF_ORIENTATION, 1))
        rotate = TURNS.get(orientation, 0) if image.format == "JPEG" else 0
        if orientation != 1 and not rotate:  # mirrored, or not a JPEG: turn the pixels
            image = ImageOps.exif_transpose(image)
        width, height = image.size
        data, colour, bits, filters, decode = _image_data(image, name)
    stream = pikepdf.Stream(pdf, data)
    stream[Name.Type] = Name.XObject
    stream[Name.Subtype] = Name.Image
    stream[Name.Width] = width
    stream[Name.Height] = height
    stream[Name.ColorSpace] = Name("/" + colour)
    stream[Name.BitsPerComponent] = bits
    stream[Name.Filter] = Name("/" + filters)
    if decode is not None:
        stream[Name.Decode] = Array(decode)
    width_pt, height_pt = width * 72.0 / dpi_x, height * 72.0 / dpi_y
    pdf.add_blank_page(page_size=(width_pt, height_pt))
    page = pdf.pages[-1]
    if rotate:  # a JPEG's EXIF turn, shown by the viewer as the decoder applies it
        page.obj[Name.Rotate] = rotate
    page.obj[Name.Resources] = Dictionary(XObject=Dictionary(Im0=stream))
    draw = f"q {width_pt:.4f} 0 0 {height_pt:.4f} 0 0 cm /Im0 Do Q\n".encode("ascii")
    page.obj[Name.Contents] = pikepdf.Stream(pdf, draw)
    return len(pdf.pages) - 1


def image_dpi(image: Any) -> tuple[float, float]:
    """A Pillow image's stated resolution (x, y), or ``DEFAULT_IMAGE_DPI`` where it states
    none (or under 10)."""
    dpi = image.info.get("dpi")
    try:
        x, y = float(dpi[0]), float(dpi[1])
        if x >= 10 and y >= 10:
            return x, y
    except (TypeError, ValueError, IndexError):
        pass
    return float(DEFAULT_IMAGE_DPI), float(DEFAULT_IMAGE_DPI)


def _image_data(image: Any, name: str) -> tuple[bytes, str, int, str, list[int] | None]:
    """(data, colour space, bits per component, filter, decode array) for an image XObject."""
    if image.format == "JPEG" and image.mode in ("L", "RGB", "CMYK"):
        colour = {"L": "DeviceGray", "RGB": "DeviceRGB", "CMYK": "DeviceCMYK"}[image.mode]
        with open(name, "rb") as fh:
            data = fh.read()
        # Adobe's JPEGs store CMYK inverted; PDF readers expect the Decode flip for them.
        decode = [1, 0, 1, 0, 1, 0, 1, 0] if image.mode == "CMYK" else None
        return data, colour, 8, "DCTDecode", decode
    if image.mode == "1":
        return zlib.compress(image.tobytes()), "DeviceGray", 1, "FlateDecode", None
    if image.mode in ("L", "RGB", "CMYK"):
        mode = image.mode
    elif image.mode in ("LA", "RGBA", "PA", "P") and _has_alpha(image):
        mode = "RGB"
        white = _white(image.size)
        white.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        image = white
    elif image.mode.startswith("I") or image.mode == "F":
        mode, image = "L", image.convert("L")
    else:
        mode = "RGB"
    if image.mode != mode:
        image = image.convert(mode)
    colour = {"L": "DeviceGray", "RGB": "DeviceRGB", "CMYK": "DeviceCMYK"}[mode]
    return zlib.compress(image.tobytes(), 6), colour, 8, "FlateDecode", None


def _has_alpha(image: Any) -> bool:
    return image.mode in ("LA", "RGBA", "PA") or "transparency" in image.info


def _white(size: tuple[int, int]) -> Any:
    from PIL import Image

    return Image.new("RGB", size, (255, 255, 255))


def image_document(
    path: str | os.PathLike[str], pages: int = 1, *, max_pixels: int = DecodeConfig.max_pixels
) -> pikepdf.Pdf:
    """A new PDF with one page per frame of the image at ``path`` (see :func:`image_page`).
    An image over ``max_pixels`` raises :class:`~ocrmill.errors.ImageTooLargeError`, one
    that cannot be embedded a :class:`~ocrmill.errors.DocumentError`."""
    import pikepdf

    from ocrmill.errors import OcrmillError

    pdf = pikepdf.new()
    try:
        for frame in range(pages):
            image_page(pdf, path, frame, max_pixels=max_pixels)
    except OcrmillError:
        pdf.close()
        raise
    except (OSError, ValueError, EOFError, SyntaxError) as exc:
        pdf.close()
        raise DocumentError(f"{os.fspath(path)}: cannot embed the image: {exc}") from None
    return pdf


def text_only_page(result: PageResult, dpi: float, font: str = "F1") -> pikepdf.Pdf:
    """A new one-page PDF the size of ``result``'s image at ``dpi`` that shows nothing and
    holds its invisible text layer, drawn by the page's own content stream with the
    glyphless font as ``/font`` in the page's resources: the shape OCRmyPDF's sandwich
    renderer grafts (it copies that stream and that font, and no XObject)."""
    import pikepdf
    from pikepdf import Dictionary, Name

    pdf = pikepdf.new()
    width_pt, height_pt = result.width * 72.0 / dpi, result.height * 72.0 / dpi
    pdf.add_blank_page(page_size=(width_pt, height_pt))
    page = pdf.pages[0]
    to_page = PixelMap.for_page((0.0, 0.0, width_pt, height_pt), 0, result.width, result.height)
    content = text_layer(result.lines, to_page, font)
    stream = pikepdf.Stream(pdf, zlib.compress(content))
    stream[Name.Filter] = Name.FlateDecode
    page.obj[Name.Contents] = stream
    page.obj[Name.Resources] = Dictionary(Font=Dictionary({"/" + font: add_font(pdf)}))
    return pdf
