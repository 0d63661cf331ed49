"""The invisible font of searchable PDFs: a Type 0 font whose every character is the same
half-em-wide glyph, with a ToUnicode map from character codes (UTF-16 code units) to text.

Text drawn in it (in text render mode 3, invisible anyway) is found by search, selected and
copied by viewers and extracted by tools, and never shows. The TrueType program is built
here with fontTools, so the font is ours: ``.notdef`` (empty) and one glyph whose outline
is its whole box (half an em wide, from the descent to the ascent). The outline never shows
(render mode 3 neither fills nor strokes), but it gives each character a real box: text
extraction, search and selection in viewers (pdfium's among them) place characters by their
glyph boxes, and drop or merge characters whose boxes are empty, notably on turned lines.
"""

from __future__ import annotations

import io
import zlib
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pikepdf

UNITS_PER_EM = 1000
GLYPH_WIDTH = 500  # every character's advance, in 1/1000 em
ASCENT = 800  # the box a character occupies: baseline - 200 to baseline + 800 (1/1000 em)
DESCENT = -200
FONT_NAME = "OcrmillGlyphless"


@cache
def font_program() -> bytes:
    """A minimal TrueType font: ``.notdef`` and one box-shaped glyph, both half an em wide."""
    from fontTools.fontBuilder import FontBuilder
    from fontTools.pens.ttGlyphPen import TTGlyphPen

    builder = FontBuilder(UNITS_PER_EM, isTTF=True)
    order = [".notdef", "box"]
    builder.setupGlyphOrder(order)
    builder.setupCharacterMap({0x20: "box"})
    pen = TTGlyphPen(None)
    pen.moveTo((0, DESCENT))
    pen.lineTo((0, ASCENT))
    pen.lineTo((GLYPH_WIDTH, ASCENT))
    pen.lineTo((GLYPH_WIDTH, DESCENT))
    pen.closePath()
    builder.setupGlyf({".notdef": TTGlyphPen(None).glyph(), "box": pen.glyph()})
    builder.setupHorizontalMetrics({name: (GLYPH_WIDTH, 0) for name in order})
    builder.setupHorizontalHeader(ascent=ASCENT, descent=DESCENT)
    builder.setupNameTable({"familyName": FONT_NAME, "styleName": "Regular"})
    builder.setupOS2(
        sTypoAscender=ASCENT, sTypoDescender=DESCENT, usWinAscent=ASCENT, usWinDescent=-DESCENT
    )
    builder.setupPost()
    out = io.BytesIO()
    builder.save(out)
    return out.getvalue()


def _to_unicode_cmap() -> bytes:
    """Character code (two bytes) -> the same UTF-16 code unit, in 256 ranges of 256 (a
    bfrange may only vary the last byte)."""
    ranges = "\n".join(f"<{hi:02X}00> <{hi:02X}FF> <{hi:02X}00>" for hi in range(256))
    return (
        "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
        "/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n"
        "1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n"
        f"256 beginbfrange\n{ranges}\nendbfrange\n"
        "endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n"
    ).encode("ascii")


def add_font(pdf: pikepdf.Pdf) -> pikepdf.Object:
    """The font as an indirect object of ``pdf`` (add it once, use it on every page)."""
    import pikepdf
    from pikepdf import Array, Dictionary, Name

    program = pikepdf.Stream(pdf, font_program())
    descriptor = Dictionary(
        Type=Name.FontDescriptor,
        FontName=Name("/" + FONT_NAME),
        Flags=5,  # fixed pitch, symbolic
        FontBBox=Array([0, DESCENT, GLYPH_WIDTH, ASCENT]),
        ItalicAngle=0,
        Ascent=ASCENT,
        Descent=DESCENT,
        CapHeight=ASCENT,
        StemV=80,
        FontFile2=program,
    )
    # Every character code (CID) draws glyph 1, the box.
    to_glyph = pikepdf.Stream(pdf, zlib.compress(b"\x00\x01" * 65536, 9))
    to_glyph[Name.Filter] = Name.FlateDecode
    cid_font = Dictionary(
        Type=Name.Font,
        Subtype=Name.CIDFontType2,
        BaseFont=Name("/" + FONT_NAME),
        CIDSystemInfo=Dictionary(
            Registry=pikepdf.String("Adobe"), Ordering=pikepdf.String("Identity"), Supplement=0
        ),
        FontDescriptor=pdf.make_indirect(descriptor),
        DW=GLYPH_WIDTH,
        CIDToGIDMap=pdf.make_indirect(to_glyph),
    )
    to_unicode = pikepdf.Stream(pdf, zlib.compress(_to_unicode_cmap(), 9))
    to_unicode[Name.Filter] = Name.FlateDecode
    font = Dictionary(
        Type=Name.Font,
        Subtype=Name.Type0,
        BaseFont=Name("/" + FONT_NAME),
        Encoding=Name("/Identity-H"),
        DescendantFonts=Array([pdf.make_indirect(cid_font)]),
        ToUnicode=pdf.make_indirect(to_unicode),
    )
    return pdf.make_indirect(font)


def encode_text(text: str) -> bytes:
    """Character codes for ``text``: its UTF-16BE code units (two bytes each)."""
    return text.encode("utf-16-be", "surrogatepass")
