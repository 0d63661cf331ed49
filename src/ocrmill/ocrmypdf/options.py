"""Which OCRmyPDF options pick ocrmill, and which it refuses (light: no model is loaded
and no numpy imported, as OCRmyPDF imports this on every run); the hooks of
:mod:`ocrmill.ocrmypdf` and :mod:`ocrmill.ocrmypdf.entry` call it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ocrmill.ocrmypdf.languages import UnsupportedLanguage, charset_for

if TYPE_CHECKING:
    from ocrmill.ocrmypdf.engine import OcrmillEngine

NAME = "ocrmill"


def selected(options: Any, *, claim_auto: bool) -> bool:
    """Whether OCRmyPDF's options pick this engine (``--ocr-engine ocrmill``; or ``auto``
    where the plugin was asked for by name, ``--plugin ocrmill.ocrmypdf``)."""
    name = "auto" if options is None else getattr(options, "ocr_engine", "auto")
    return name == NAME or (claim_auto and name == "auto")


def check_options(options: Any) -> None:
    """Refuse, naming it, a language the models cannot read."""
    from ocrmypdf.exceptions import BadArgsError

    try:
        charset_for(options.languages)
    except UnsupportedLanguage as exc:
        raise BadArgsError(str(exc)) from None


def check_if_selected(options: Any, *, claim_auto: bool) -> None:
    """:func:`check_options` where the options pick this engine."""
    if selected(options, claim_auto=claim_auto):
        check_options(options)


def engine_if_selected(options: Any, *, claim_auto: bool) -> OcrmillEngine | None:
    """The engine where the options pick it (the models load on its first page), else None
    for the next plugin to answer."""
    if not selected(options, claim_auto=claim_auto):
        return None
    from ocrmill.ocrmypdf.engine import OcrmillEngine

    return OcrmillEngine()
