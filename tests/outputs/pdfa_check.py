"""PDF/A-2b's structure checked with pikepdf, for the tests of searchable PDFs. No PDF/A
validator installs from PyPI and runs offline (veraPDF is a Java program distributed on its
own; the PyPI packages that mention it call an installed veraPDF), so the parts of
PDF/A-2b that a document made without re-rendering can get wrong are checked here."""

from __future__ import annotations

import io

import pikepdf

PDFAID = "http://www.aiim.org/pdfa/ns/id/"
FONT_FILES = ("/FontFile", "/FontFile2", "/FontFile3")


def _fonts(resources, seen=None):
    """Every font a page's resources use, through its forms."""
    seen = set() if seen is None else seen
    if resources is None:
        return
    yield from resources.get("/Font", {}).values()
    for xobject in resources.get("/XObject", {}).values():
        if xobject.get("/Subtype") == "/Form" and xobject.objgen not in seen:
            seen.add(xobject.objgen)
            yield from _fonts(xobject.get("/Resources"), seen)


def pdfa_problems(path) -> list[str]:
    """What in the file at ``path`` falls short of PDF/A-2b's structure: the version, the
    document ID, no encryption, the XMP declaration (an unfiltered packet), the sRGB output
    intent and its ICC profile, every font embedded, info and XMP in step."""
    from PIL import ImageCms

    problems = []
    with open(path, "rb") as fh:
        head = fh.read(64)
        if not head.startswith(b"%PDF-1."):
            problems.append("header is not %PDF-1.n")
        second = head.split(b"\n")[1] if b"\n" in head else b""
        if not (second.startswith(b"%") and sum(b > 127 for b in second[1:5]) == 4):
            problems.append("no binary comment after the header")
    with pikepdf.open(path) as pdf:
        ids = pdf.trailer.get("/ID")
        if ids is None or len(ids) != 2:
            problems.append("no document ID")
        if pdf.is_encrypted:
            problems.append("encrypted")
        packet = pdf.Root.get("/Metadata")
        if packet is None or "/Filter" in packet:
            problems.append("no unfiltered XMP packet")
        meta = pdf.open_metadata()
        if (meta.get("pdfaid:part"), meta.get("pdfaid:conformance")) != ("2", "B"):
            problems.append("not declared PDF/A-2b")
        if packet is not None and PDFAID.encode() not in packet.read_bytes():
            problems.append("no pdfaid namespace")
        intents = [i for i in pdf.Root.get("/OutputIntents", []) if i.get("/S") == "/GTS_PDFA1"]
        if len(intents) != 1:
            problems.append("not one PDF/A output intent")
        else:
            profile = intents[0].DestOutputProfile
            icc = ImageCms.ImageCmsProfile(io.BytesIO(profile.read_bytes()))
            if int(profile.N) != 3 or icc.profile.xcolor_space.strip() != "RGB":
                problems.append("the output intent is not an RGB ICC profile")
        for number, page in enumerate(pdf.pages, start=1):
            for font in _fonts(page.obj.get("/Resources")):
                described = font.DescendantFonts[0] if font.Subtype == "/Type0" else font
                descriptor = described.get("/FontDescriptor", {})
                if not any(k in descriptor for k in FONT_FILES):
                    problems.append(f"page {number}: font {font.get('/BaseFont')} not embedded")
        info = pdf.docinfo
        for key, xmp in (("/Producer", "pdf:Producer"), ("/Creator", "xmp:CreatorTool")):
            if str(info.get(key, "")) != str(meta.get(xmp, "")):
                problems.append(f"info {key} and XMP {xmp} differ")
    return problems
