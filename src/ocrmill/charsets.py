"""Character sets a recognizer can be restricted to.

PP-OCRv6's recognizer scores 18,710 classes at every time step, ~15,700 of them CJK
ideographs. A page known to be in a Latin-script language reads faster and without CJK
look-alikes when the head scores only the characters such a page can hold: the restricted
head (``backends.restricted``) keeps those classes and the softmax runs over them
alone. A character outside the set can then never be read.
"""

from __future__ import annotations

import typing
from collections.abc import Sequence

from ocrmill.config import CharsetName
from ocrmill.errors import ConfigError

CHARSETS: tuple[str, ...] = typing.get_args(CharsetName)

# Latin letters in every accented form, digits, punctuation, currency signs and the symbols
# that Latin-script documents use (degrees, fractions, Roman numerals, arrows, a few
# operators): 0x20-0x7E, 0xA0-0x24F (Latin-1, Extended-A/B), 0x1E00-0x1EFF (Extended
# Additional), 0x2010-0x205E (general punctuation), 0x2070-0x209F (super/subscripts),
# 0x20A0-0x20CF (currency), 0x2100-0x218F (letterlike, number forms).
_LATIN_RANGES = (
    (0x20, 0x7E),
    (0xA0, 0x24F),
    (0x1E00, 0x1EFF),
    (0x2010, 0x205E),
    (0x2070, 0x209F),
    (0x20A0, 0x20CF),
    (0x2100, 0x218F),
)
_LATIN_EXTRA = frozenset("←↑→↓↔−∓±×÷≤≥≠≈∞√∑∆∙∕")


def _is_latin(char: str) -> bool:
    code = ord(char)
    return any(lo <= code <= hi for lo, hi in _LATIN_RANGES) or char in _LATIN_EXTRA


def check_charset(name: str) -> str:
    if name not in CHARSETS:
        raise ConfigError(f"unknown charset {name!r}; choose one of: {', '.join(CHARSETS)}")
    return name


def class_subset(vocabulary: Sequence[str], name: str) -> list[int]:
    """Indices of the CTC classes ``name`` keeps, in order; the blank (class 0) always.

    A class that is several characters (some dictionaries have them) is kept when all of
    them are in the set.
    """
    check_charset(name)
    if name == "all":
        return list(range(len(vocabulary)))
    return [0] + [
        i for i, token in enumerate(vocabulary) if i > 0 and token and all(map(_is_latin, token))
    ]
