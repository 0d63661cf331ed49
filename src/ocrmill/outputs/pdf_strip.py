"""Text taken out of a PDF page's content: an earlier invisible OCR layer before a new one
is drawn (``ocrmill pdf --redo-ocr``), and, in the copy of a document a page is read from,
the page's own painted text, so that OCR sees only what the text does not already say.

An OCR layer is text drawn in render mode 3 (invisible): in the page's own content (as
Tesseract's PDF renderer draws it), or in a Form XObject that draws nothing else (ours,
``/OcrmillLayer``, drawn by ``q /OcrmillLayer Do Q``; OCRmyPDF's grafted layer). A text
object (``BT`` ... ``ET``) goes as a whole, and only where every glyph it shows goes: its
text-state, colour and marked-content operators stay in place (they outlive ``ET`` in the
graphics state, and marked content must stay balanced), so what follows draws as before.
Text that clips (render modes 4 to 7) always stays: removing it would change what shows.
A page's content is rewritten only where something was removed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pikepdf

SHOW = frozenset({"Tj", "TJ", "'", '"'})
POSITION = frozenset({"Td", "TD", "Tm", "T*"})
PAINT = frozenset({"S", "s", "f", "F", "f*", "B", "B*", "b", "b*", "sh", "BI", "INLINE IMAGE"})
INVISIBLE = 3
CLIPPING = frozenset({4, 5, 6, 7})

# Which text objects go, by the render modes of the glyphs they show.
Drop = Callable[[set[int]], bool]


def invisible_only(modes: set[int]) -> bool:
    """An earlier OCR layer: every glyph drawn invisibly."""
    return modes == {INVISIBLE}


def any_text_but_clipping(modes: set[int]) -> bool:
    """Any text that does not clip (visible or not): what a page is read without."""
    return bool(modes) and not modes & CLIPPING


def _render_mode(operands: list[Any], current: int) -> int:
    try:
        return int(operands[0])
    except (IndexError, TypeError, ValueError):
        return current


class _Filter:
    """Rewrites content streams, dropping the text objects ``drop`` picks and the ``Do`` of
    forms that draw nothing but invisible text; forms with other content are filtered in
    place when ``into_forms`` (only in a throwaway copy: a form may be shared)."""

    def __init__(self, pdf: pikepdf.Pdf, drop: Drop, *, into_forms: bool) -> None:
        self.pdf = pdf
        self.drop = drop
        self.into_forms = into_forms
        self._filtered: set[tuple[int, int]] = set()
        self.dropped_forms: set[str] = set()  # the names whose ``Do`` went

    def run(self, instructions: Iterable[Any], resources: Any, mode: int = 0) -> tuple[list, bool]:
        """The instructions without the dropped text, and whether anything was dropped."""
        out: list = []
        text: list | None = None  # the instructions of the open text object
        modes: set[int] = set()
        stack: list[int] = []
        changed = False
        for instruction in instructions:
            op = str(instruction.operator)
            operands = list(instruction.operands) if op != "INLINE IMAGE" else []
            if op == "q":
                stack.append(mode)
            elif op == "Q" and stack:
                mode = stack.pop()
            elif op == "Tr":
                mode = _render_mode(operands, mode)
            if op == "BT":
                text, modes = [instruction], set()
                continue
            if text is not None:
                text.append(instruction)
                if op in SHOW:
                    modes.add(mode)
                if op == "ET":
                    if self.drop(modes):
                        out += [i for i in text if str(i.operator) not in _TEXT_ONLY]
                        changed = True
                    else:
                        out += text
                    text = None
                continue
            if op == "Do" and operands and self._drop_form(resources, operands[0], mode):
                self.dropped_forms.add(str(operands[0]))
                changed = True
                continue
            out.append(instruction)
        if text is not None:  # an unterminated text object: left as it is
            out += text
        return out, changed

    def _drop_form(self, resources: Any, name: Any, mode: int) -> bool:
        """Is the form ``name`` drawn here an invisible text layer (then the ``Do`` goes)?
        Otherwise, with ``into_forms``, its own text is filtered."""
        import pikepdf

        try:
            form = resources.XObject[name]
        except (AttributeError, KeyError, TypeError):
            return False
        if not isinstance(form, pikepdf.Stream) or form.get("/Subtype") != "/Form":
            return False
        try:
            instructions = pikepdf.parse_content_stream(form)
        except pikepdf.PdfError:
            return False
        if _only_invisible_text(instructions, mode):
            return True
        key = form.objgen
        if self.into_forms and key not in self._filtered:
            self._filtered.add(key)
            kept, changed = self.run(instructions, form.get("/Resources", resources), mode)
            if changed:
                form.write(pikepdf.unparse_content_stream(kept))
        return False


_TEXT_ONLY = SHOW | POSITION | {"BT", "ET"}


def _only_invisible_text(instructions: list, mode: int) -> bool:
    """Does a form's content show text, all of it invisible, and paint nothing else?"""
    shown = False
    stack: list[int] = []
    for instruction in instructions:
        op = str(instruction.operator)
        if op in PAINT or op == "Do":
            return False
        if op == "q":
            stack.append(mode)
        elif op == "Q" and stack:
            mode = stack.pop()
        elif op == "Tr":
            mode = _render_mode(list(instruction.operands), mode)
        elif op in SHOW:
            if mode != INVISIBLE:
                return False
            shown = True
    return shown


def own_xobjects(page: Any) -> Any:
    """The page's XObject dictionary, made its own first: the page gets a copy of its
    resources and of their XObjects (pages often share one dictionary, inherited or
    referenced, and a form named or removed there would be named or removed on every
    page)."""
    from pikepdf import Dictionary, Name

    resources = page.obj.get("/Resources")
    own = Dictionary() if resources is None else Dictionary(dict(resources.items()))
    xobjects = own.get("/XObject")
    own[Name.XObject] = Dictionary() if xobjects is None else Dictionary(dict(xobjects.items()))
    page.obj[Name.Resources] = own
    return own[Name.XObject]


def _rewrite(pdf: pikepdf.Pdf, index: int, drop: Drop, *, into_forms: bool) -> bool:
    import pikepdf

    page = pdf.pages[index]
    resources = page.obj.get("/Resources", pikepdf.Dictionary())
    rewrite = _Filter(pdf, drop, into_forms=into_forms)
    kept, changed = rewrite.run(pikepdf.parse_content_stream(page), resources)
    if not changed:
        return False
    drawn = {str(i.operands[0]) for i in kept if str(i.operator) == "Do" and list(i.operands)}
    gone = rewrite.dropped_forms - drawn
    if gone:  # the layers no longer drawn leave the page's resources
        xobjects = own_xobjects(page)
        for name in gone:
            if name in xobjects:
                del xobjects[name]
    page.obj[pikepdf.Name.Contents] = pdf.make_stream(pikepdf.unparse_content_stream(kept))
    return True


def strip_invisible_text(pdf: pikepdf.Pdf, index: int) -> bool:
    """Remove page ``index``'s earlier OCR layers (invisible text, in its content or as
    forms of nothing else); visible text stays. Returns whether there was one."""
    return _rewrite(pdf, index, invisible_only, into_forms=False)


def remove_text(pdf: pikepdf.Pdf, index: int) -> bool:
    """Remove all text that does not clip from page ``index``, in its content and in the
    forms it draws (which are changed in place: use a copy of the document). Returns
    whether there was any."""
    return _rewrite(pdf, index, any_text_but_clipping, into_forms=True)


def save_without_text(
    source: str | os.PathLike[str], target: str | os.PathLike[str], pages: Iterable[int]
) -> None:
    """A copy of the PDF at ``source`` whose ``pages`` (0-based) show no text (see
    :func:`remove_text`), saved to ``target``: what ``--redo-ocr`` renders those pages
    from, so OCR reads only what the page's own text does not already say."""
    import pikepdf

    with pikepdf.open(os.fspath(source)) as pdf:
        for index in pages:
            remove_text(pdf, index)
        pdf.save(target)
