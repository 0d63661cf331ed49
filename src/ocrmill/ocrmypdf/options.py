"""Which OCRmyPDF options pick ocrmill, and which it refuses (light: no model is loaded
and no numpy imported, as OCRmyPDF imports this on every run)."""

from __future__ import annotations

from typing import Any

from ocrmill.ocrmypdf.languages import UnsupportedLanguage, charset_for

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
