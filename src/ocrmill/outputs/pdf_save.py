"""How a searchable PDF is finished and written: the options of one document
(:class:`PdfOptions`), its metadata (document info dictionary and XMP, kept in step by
pikepdf), PDF/A-2b where the document allows it (:mod:`ocrmill.outputs.pdfa`), and the
lossless save settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from ocrmill.outputs.pdfa import PDFA_CONFORMANCE, PDFA_PART, add_output_intent, pdfa_blockers

if TYPE_CHECKING:
    import pikepdf

OutputType = Literal["pdfa", "pdf"]
OUTPUT_TYPES: tuple[OutputType, ...] = ("pdfa", "pdf")
# PDF/A-2b costs 3 to 8 ms and under 1 KB a document (the sRGB profile and output intent;
# benchmarks/results/pdf_output_type_20261206.md), well under 1 % of a run's OCR time, so
# searchable PDFs are archival unless asked otherwise (as OCRmyPDF's are).
DEFAULT_OUTPUT_TYPE: OutputType = "pdfa"


@dataclass(frozen=True)
class DocumentInfo:
    """What the document says about itself (None: as the input has it)."""

    title: str | None = None
    author: str | None = None
    subject: str | None = None
    keywords: str | None = None


@dataclass(frozen=True)
class PdfOptions:
    """How one searchable PDF is made.

    ``output_type``: ``pdfa`` (PDF/A-2b where the input allows it, else a plain PDF with a
    warning naming why) or ``pdf``. ``rotate_pages``: a page read turned gets the /Rotate
    that shows it upright. ``redo_ocr``: a page read loses its earlier invisible text
    layers before it gets the new one. ``info``: title, author, subject, keywords.
    """

    output_type: OutputType = DEFAULT_OUTPUT_TYPE
    rotate_pages: bool = False
    redo_ocr: bool = False
    info: DocumentInfo = field(default_factory=DocumentInfo)

    def __post_init__(self) -> None:
        if self.output_type not in OUTPUT_TYPES:
            raise ValueError(f"not an output type: {self.output_type!r}")


def save_settings() -> dict[str, Any]:
    """pikepdf's save settings: lossless savings only. Objects go into compressed object
    streams and streams stored uncompressed are compressed (qpdf leaves the XMP packet
    as it is, as PDF/A wants); streams already compressed are copied as they are:
    recompressing Flate at level 9 saved 5 % on PNG pages for 25 % more time
    (benchmarks/results/pdf_output_type_20261206.md), over the 5 % a free saving may cost.
    Encryption is not carried over."""
    import pikepdf

    return {
        "object_stream_mode": pikepdf.ObjectStreamMode.generate,
        "compress_streams": True,
        "recompress_flate": False,
    }


def finish(pdf: pikepdf.Pdf, options: PdfOptions, software: str) -> list[str]:
    """Write the metadata and, for ``pdfa``, make the document PDF/A-2b. Returns why it is
    not PDF/A where ``pdfa`` was asked for and the input does not allow it (it is then a
    plain PDF, with any PDF/A claim of its own removed); an empty list otherwise."""
    reasons = pdfa_blockers(pdf) if options.output_type == "pdfa" else []
    pdfa = options.output_type == "pdfa" and not reasons
    if pdfa:
        add_output_intent(pdf)
    write_metadata(pdf, options.info, software, pdfa=pdfa, drop_pdfa=bool(reasons))
    return reasons


def write_metadata(
    pdf: pikepdf.Pdf,
    info: DocumentInfo,
    software: str,
    *,
    pdfa: bool = False,
    drop_pdfa: bool = False,
) -> None:
    """Producer and creator tool ``software``, the modification date now, ``info``'s
    fields, and the PDF/A-2b declaration (``pdfa``) or none (``drop_pdfa``), in the XMP
    packet and the document info dictionary alike."""
    now = datetime.now().astimezone().isoformat(timespec="seconds")
    with pdf.open_metadata(set_pikepdf_as_editor=False) as meta:
        if "/Metadata" not in pdf.Root:  # start from the info dictionary, not from nothing
            meta.load_from_docinfo(pdf.docinfo)
        meta["pdf:Producer"] = software
        meta["xmp:CreatorTool"] = software
        meta["xmp:ModifyDate"] = now
        meta["xmp:MetadataDate"] = now
        if "xmp:CreateDate" not in meta:
            meta["xmp:CreateDate"] = now
        if info.title is not None:
            meta["dc:title"] = info.title
        if info.author is not None:
            meta["dc:creator"] = [info.author]
        if info.subject is not None:
            meta["dc:description"] = info.subject
        if info.keywords is not None:
            meta["pdf:Keywords"] = info.keywords
        if pdfa:
            meta["pdfaid:part"] = PDFA_PART
            meta["pdfaid:conformance"] = PDFA_CONFORMANCE
        elif drop_pdfa:
            for key in ("pdfaid:part", "pdfaid:conformance", "pdfaid:amd", "pdfaid:rev"):
                if key in meta:
                    del meta[key]
