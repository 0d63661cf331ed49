"""The options of ``ocrmill pdf`` that shape the document it writes (named as OCRmyPDF names
them), the ``--pages`` spec, and the :class:`~ocrmill.outputs.pdf_save.PdfOptions` they
make. Imports nothing heavy: ``ocrmill --help`` must answer at once."""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ocrmill.errors import ConfigError
from ocrmill.outputs.pdf_save import DEFAULT_OUTPUT_TYPE, OUTPUT_TYPES

if TYPE_CHECKING:
    from ocrmill.outputs.pdf_save import PdfOptions

_RANGE = re.compile(r"^(\d+)(?:-(\d+|end))?$")


@dataclass(frozen=True)
class PageSpec:
    """``--pages``: 1-based ranges (``end`` None: to the last page), as given."""

    text: str
    ranges: tuple[tuple[int, int | None], ...]

    def select(self, count: int, name: str) -> set[int]:
        """The 0-based pages of the ``count``-page document ``name``; a page past its end is
        a usage error naming the document and the spec."""
        chosen: set[int] = set()
        for first, last in self.ranges:
            stop = count if last is None else last
            if first > count or stop > count:
                raise ConfigError(
                    f"{name}: --pages {self.text}: page {max(first, stop)} is past the end "
                    f"(the document has {count} page{'s' if count != 1 else ''})"
                )
            chosen.update(range(first - 1, stop))
        return chosen


def page_spec(text: str) -> PageSpec:
    """Parse ``1,3-5,7-end`` (argparse type: a bad spec is a usage error naming it)."""
    ranges: list[tuple[int, int | None]] = []
    for part in text.replace(" ", "").split(","):
        match = _RANGE.match(part)
        if match is None:
            raise argparse.ArgumentTypeError(
                f"{text!r}: {part!r} is not a page or range (1-based: 1,3-5,7-end)"
            )
        first = int(match.group(1))
        last_text = match.group(2)
        last = None if last_text == "end" else int(last_text) if last_text else first
        if first < 1 or (last is not None and last < first):
            raise argparse.ArgumentTypeError(
                f"{text!r}: {part!r} is not a page or range (pages count from 1, ranges go up)"
            )
        ranges.append((first, last))
    return PageSpec(text, tuple(ranges))


def add_document_options(parser: argparse.ArgumentParser) -> None:
    """The output options of ``ocrmill pdf``."""
    group = parser.add_argument_group("output document")
    group.add_argument(
        "--output-type",
        choices=OUTPUT_TYPES,
        default=DEFAULT_OUTPUT_TYPE,
        help="pdfa (default): PDF/A-2b where the input allows it without re-rendering "
        "(otherwise a plain PDF, with a warning saying why); pdf: a plain PDF",
    )
    group.add_argument(
        "--rotate-pages",
        action="store_true",
        help="show pages that were read turned (90, 180, 270 degrees) upright (their /Rotate)",
    )
    group.add_argument(
        "--pages",
        type=page_spec,
        metavar="SPEC",
        help="read only these pages, e.g. 1,3-5,7-end (1-based); the others are kept as they are",
    )
    group.add_argument(
        "--sidecar",
        metavar="FILE",
        help="also write the text of every page to FILE ('-': stdout), pages separated by "
        "form feeds",
    )
    group.add_argument(
        "--password",
        help="the password of an encrypted PDF (the output is not encrypted)",
    )
    for name in ("title", "author", "subject", "keywords"):
        group.add_argument(f"--{name}", help=f"the document's {name} (info and XMP metadata)")


def pdf_options_from_args(args: argparse.Namespace) -> PdfOptions:
    from ocrmill.outputs.pdf_save import DocumentInfo, PdfOptions

    return PdfOptions(
        output_type=args.output_type,
        rotate_pages=args.rotate_pages,
        redo_ocr=args.redo_ocr,
        info=DocumentInfo(
            title=args.title, author=args.author, subject=args.subject, keywords=args.keywords
        ),
    )
