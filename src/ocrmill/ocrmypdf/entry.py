"""The ``ocrmypdf`` entry point: OCRmyPDF loads it whenever ocrmill is installed beside it.
It adds ``ocrmill`` to ``--ocr-engine``'s choices and is the engine only when asked for by
that name, so installing ocrmill never changes what a plain ``ocrmypdf`` run does (nor
slows its start: the models and numpy load only when ocrmill reads)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ocrmypdf import hookimpl

from ocrmill.ocrmypdf import options as _options

if TYPE_CHECKING:
    from ocrmill.ocrmypdf.engine import OcrmillEngine


@hookimpl
def add_options(parser: Any) -> None:
    for action in parser._actions:  # argparse keeps no public handle on an added option
        choices = action.choices
        if "--ocr-engine" in action.option_strings and choices and _options.NAME not in choices:
            action.choices = [*choices, _options.NAME]
            action.help = (action.help or "") + f" '{_options.NAME}' uses ocrmill."


@hookimpl
def check_options(options: Any) -> None:
    _options.check_if_selected(options, claim_auto=False)


@hookimpl
def get_ocr_engine(options: Any = None) -> OcrmillEngine | None:
    return _options.engine_if_selected(options, claim_auto=False)
