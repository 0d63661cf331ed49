"""PDF/A-2b for searchable PDFs, made without re-rendering anything: what a document gains
(an sRGB output intent with its ICC profile; :mod:`ocrmill.outputs.pdf_save` writes the
``pdfaid`` declaration with the rest of the metadata, and a trailer /ID and no encryption
when it saves) and what in a document stops it from being PDF/A-2b as it stands.

PDF/A-2b asks what a scan made searchable by us already has: every font embedded (the
layer's glyphless font is), colour tied to an output intent, no encryption. An input PDF
can carry what only re-rendering (as OCRmyPDF does with Ghostscript) could fix: a font it
does not embed, CMYK colour under an RGB intent, JavaScript, embedded files, annotations
that do not print... :func:`pdfa_blockers` names them; such a document is written as a
plain PDF (with a warning saying why), never declared PDF/A. Transparency is allowed in
PDF/A-2 (the output intent sets its blending colour space) and stays.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pikepdf

PDFA_PART = "2"
PDFA_CONFORMANCE = "B"
OUTPUT_CONDITION = "sRGB IEC61966-2.1"
# The device colour spaces each output intent's colour space admits (gray goes with any).
ADMITTED = {3: {"DeviceRGB", "DeviceGray"}, 4: {"DeviceCMYK", "DeviceGray"}, 1: {"DeviceGray"}}
COLOUR_OPERATORS = {"rg": "DeviceRGB", "RG": "DeviceRGB", "k": "DeviceCMYK", "K": "DeviceCMYK"}
INLINE_COLOUR = {"/DeviceRGB": "DeviceRGB", "/DeviceCMYK": "DeviceCMYK"}  # names expanded
FORBIDDEN_ACTIONS = {"/Launch", "/Sound", "/Movie", "/ResetForm", "/ImportData", "/JavaScript"}
FORBIDDEN_ANNOTATIONS = {"/Sound", "/Movie", "/Screen", "/3D", "/RichMedia", "/FileAttachment"}
ANNOTATION_PRINT, ANNOTATION_HIDING = 4, 1 | 2 | 32 | 256  # Print; Invisible, Hidden, NoView...
MAX_REASONS = 5


def srgb_profile() -> bytes:
    """An sRGB ICC profile (LittleCMS's, through Pillow), for the output intent."""
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def pdfa_intent_components(pdf: pikepdf.Pdf) -> int | None:
    """The colour components (1, 3, 4) of the document's PDF/A output intent, if it has one."""
    for intent in pdf.Root.get("/OutputIntents", []):
        if intent.get("/S") == "/GTS_PDFA1" and "/DestOutputProfile" in intent:
            return int(intent.DestOutputProfile.get("/N", 3))
    return None


def add_output_intent(pdf: pikepdf.Pdf) -> None:
    """Give the document an sRGB PDF/A output intent, unless it has a PDF/A intent of its
    own (kept: its colour is what the document's device colours mean)."""
    import pikepdf
    from pikepdf import Array, Dictionary, Name

    if pdfa_intent_components(pdf) is not None:
        return
    profile = pikepdf.Stream(pdf, srgb_profile())
    profile[Name.N] = 3
    intent = Dictionary(
        Type=Name.OutputIntent,
        S=Name.GTS_PDFA1,
        OutputConditionIdentifier=OUTPUT_CONDITION,
        Info=OUTPUT_CONDITION,
        DestOutputProfile=pdf.make_indirect(profile),
    )
    intents = pdf.Root.get("/OutputIntents")
    if intents is None:
        pdf.Root[Name.OutputIntents] = Array([intent])
    else:
        intents.append(intent)


def pdfa_blockers(pdf: pikepdf.Pdf) -> list[str]:
    """Why the document cannot be PDF/A-2b without re-rendering it (at most
    :data:`MAX_REASONS` reasons; an empty list: it can)."""
    reasons: list[str] = []
    for reason in _document_reasons(pdf):
        if reason not in reasons:
            reasons.append(reason)
        if len(reasons) >= MAX_REASONS:
            break
    return reasons


def _document_reasons(pdf: pikepdf.Pdf) -> Iterator[str]:
    version = str(pdf.pdf_version)
    if not version.startswith("1."):
        yield f"it is a PDF {version} file (PDF/A-2 is PDF 1.7)"
    root = pdf.Root
    intents = list(root.get("/OutputIntents", []))
    if pdfa_intent_components(pdf) is None and any("/DestOutputProfile" in i for i in intents):
        # PDF/A-2 wants every output intent's profile to be one and the same object.
        yield "it has an output intent of another kind (e.g. PDF/X) with a profile of its own"
    if any(_lzw(obj) for obj in pdf.objects):
        yield "it uses LZW compression"
    names: Any = root.get("/Names", {})
    if "/JavaScript" in names:
        yield "it holds document JavaScript"
    if "/EmbeddedFiles" in names:
        yield "it embeds files"
    form: Any = root.get("/AcroForm", {})
    if "/XFA" in form:
        yield "it holds an XFA form"
    if bool(form.get("/NeedAppearances", False)):
        yield "its form fields have no appearance of their own (NeedAppearances)"
    if "/AA" in root or _forbidden_action(root.get("/OpenAction")):
        yield "it runs actions when opened"
    intent = pdfa_intent_components(pdf) or 3
    walk = _ResourceWalk(ADMITTED.get(intent, {"DeviceGray"}))
    for number, page in enumerate(pdf.pages, start=1):
        if "/AA" in page.obj:
            yield f"page {number} runs actions"
        yield from (f"page {number}: {r}" for r in _annotation_reasons(page.obj))
        yield from (f"page {number}: {r}" for r in walk.page(page))


def _lzw(obj: Any) -> bool:
    """Is ``obj`` a stream compressed with LZW (not allowed in PDF/A-2)?"""
    import pikepdf

    if not isinstance(obj, pikepdf.Stream):
        return False
    filters = obj.get("/Filter")
    names = filters if isinstance(filters, pikepdf.Array) else [filters]
    return any(name == "/LZWDecode" for name in names if name is not None)


def _forbidden_action(action: Any) -> bool:
    import pikepdf

    return isinstance(action, pikepdf.Dictionary) and action.get("/S") in FORBIDDEN_ACTIONS


def _annotation_reasons(page: Any) -> Iterator[str]:
    for annotation in page.get("/Annots", []):
        subtype = str(annotation.get("/Subtype", ""))
        if subtype in FORBIDDEN_ANNOTATIONS:
            yield f"it has a {subtype[1:]} annotation"
        if subtype == "/Popup":
            continue
        flags = int(annotation.get("/F", 0))
        if not flags & ANNOTATION_PRINT or flags & ANNOTATION_HIDING:
            yield "it has an annotation that does not print or is hidden"
        if subtype != "/Link" and "/AP" not in annotation:
            yield "it has an annotation without an appearance"
        if _forbidden_action(annotation.get("/A")) or "/AA" in annotation:
            yield "it has an annotation that runs actions"


class _ResourceWalk:
    """What a page draws, through its resources and the forms, patterns, Type 3 glyphs and
    annotation appearances they name (each object once per document)."""

    def __init__(self, admitted: set[str]) -> None:
        self.admitted = admitted
        self.seen: set[tuple[int, int]] = set()

    def _first_visit(self, obj: Any) -> bool:
        if not obj.is_indirect:
            return True
        key = obj.objgen
        if key in self.seen:
            return False
        self.seen.add(key)
        return True

    def page(self, page: Any) -> Iterator[str]:
        yield from self._content(page.obj, page.obj.get("/Resources"))
        for annotation in page.obj.get("/Annots", []):
            for appearance in _appearance_streams(annotation.get("/AP")):
                if self._first_visit(appearance):
                    yield from self._content(appearance, appearance.get("/Resources"))

    def _content(self, owner: Any, resources: Any) -> Iterator[str]:
        """A page's or form's content and resources; ``owner`` holds /Contents or is the
        form's stream."""
        import pikepdf

        group = owner.get("/Group")
        if group is not None:
            yield from self._colour_space(group.get("/CS"))
        try:
            instructions = pikepdf.parse_content_stream(owner, "rg RG k K cs CS BI ID EI")
        except (pikepdf.PdfError, TypeError, ValueError):
            instructions = []
        for instruction in instructions:
            op = str(instruction.operator)
            if op in COLOUR_OPERATORS:
                yield from self._device(COLOUR_OPERATORS[op])
            elif op in ("cs", "CS") and list(instruction.operands):
                yield from self._device(str(instruction.operands[0])[1:])
            elif isinstance(instruction, pikepdf.ContentStreamInlineImage):
                space = instruction.iimage.obj.get("/ColorSpace")
                yield from self._device(INLINE_COLOUR.get(str(space), ""))
        if resources is not None:
            yield from self._resources(resources)

    def _resources(self, resources: Any) -> Iterator[str]:
        for font in resources.get("/Font", {}).values():
            if self._first_visit(font):
                yield from self._font(font)
        for space in resources.get("/ColorSpace", {}).values():
            yield from self._colour_space(space)
        for shading in resources.get("/Shading", {}).values():
            yield from self._colour_space(shading.get("/ColorSpace"))
        for state in resources.get("/ExtGState", {}).values():
            if "/TR" in state or state.get("/TR2", "/Default") != "/Default":
                yield "it uses a transfer function"
        for pattern in resources.get("/Pattern", {}).values():
            if self._first_visit(pattern):
                if "/Shading" in pattern:
                    yield from self._colour_space(pattern.Shading.get("/ColorSpace"))
                elif pattern.get("/PatternType") == 1:
                    yield from self._content(pattern, pattern.get("/Resources"))
        for xobject in resources.get("/XObject", {}).values():
            if self._first_visit(xobject):
                yield from self._xobject(xobject)

    def _xobject(self, xobject: Any) -> Iterator[str]:
        subtype = xobject.get("/Subtype")
        if subtype == "/PS" or xobject.get("/Subtype2") == "/PS":
            yield "it holds PostScript"
        if "/OPI" in xobject:
            yield "it uses OPI"
        if subtype == "/Image":
            if bool(xobject.get("/Interpolate", False)):
                yield "an image asks to be interpolated"
            if "/Alternates" in xobject:
                yield "an image has alternates"
            if not xobject.get("/ImageMask", False):
                yield from self._colour_space(xobject.get("/ColorSpace"))
            mask = xobject.get("/SMask")
            if mask is not None and self._first_visit(mask):
                yield from self._xobject(mask)
        elif subtype == "/Form":
            yield from self._content(xobject, xobject.get("/Resources"))

    def _font(self, font: Any) -> Iterator[str]:
        subtype = font.get("/Subtype")
        if subtype == "/Type3":
            for glyph in font.get("/CharProcs", {}).values():
                if self._first_visit(glyph):
                    yield from self._content(glyph, font.get("/Resources"))
            return
        described = font.DescendantFonts[0] if subtype == "/Type0" else font
        descriptor = described.get("/FontDescriptor", {})
        if not any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3")):
            yield f"font {str(font.get('/BaseFont', '?'))[1:]} is not embedded"

    def _colour_space(self, space: Any) -> Iterator[str]:
        """A colour space's device spaces (in Indexed bases, Separation and DeviceN
        alternates, Pattern underlying spaces); ICC-based and Lab spaces need no intent."""
        import pikepdf

        if space is None:
            return
        if isinstance(space, pikepdf.Name):
            yield from self._device(str(space)[1:])
            return
        if not isinstance(space, pikepdf.Array) or len(space) == 0:
            return
        family = space[0]
        if family == "/Indexed" and len(space) > 1:
            yield from self._colour_space(space[1])
        elif family in ("/Separation", "/DeviceN") and len(space) > 2:  # the alternate
            yield from self._colour_space(space[2])
        elif family == "/Pattern" and len(space) > 1:
            yield from self._colour_space(space[1])

    def _device(self, name: str) -> Iterator[str]:
        if name in ("DeviceRGB", "DeviceCMYK", "DeviceGray") and name not in self.admitted:
            yield f"it uses {name} colour, which its output intent does not cover"


def _appearance_streams(appearance: Any) -> Iterator[Any]:
    """The streams of an annotation's appearance dictionary (N, R, D; states or not)."""
    import pikepdf

    if not isinstance(appearance, pikepdf.Dictionary):
        return
    for entry in appearance.values():
        if isinstance(entry, pikepdf.Stream):
            yield entry
        elif isinstance(entry, pikepdf.Dictionary):
            yield from (v for v in entry.values() if isinstance(v, pikepdf.Stream))
