"""OCRmyPDF's ``-l`` languages (Tesseract's codes) as what ocrmill's recognizer reads.

PP-OCRv6's recognizer has one character list for every language it reads: Latin script
(Latin-1, Latin Extended-A and Romanian's comma-below letters, so every letter of the
languages below), Chinese (simplified and traditional) and Japanese. It has no Cyrillic,
Arabic, Hebrew, Devanagari, Thai or Hangul, Greek without its accents and final sigma,
and two of Vietnamese's stacked-accent letters: such a language is refused with its
name, never read as look-alikes. Vertical CJK
(``chi_sim_vert``...) is refused too: its columns look like a sideways page to the
orientation check (``--rotate-pages`` would turn it).

The languages choose the charset (:mod:`ocrmill.charsets`): Latin-script languages alone
read with the Latin head only (``latin``: faster, and no CJK look-alikes in a European
page); Chinese or Japanese alone with the whole head (``all``); both together with
``auto`` (the Latin head first, the whole head for lines it reads doubtfully).
"""

from __future__ import annotations

from collections.abc import Iterable

# Tesseract's codes for Latin-script languages whose letters the recognizer has.
LATIN = frozenset(
    [
        "afr",
        "bos",
        "bre",
        "cat",
        "ces",
        "cos",
        "cym",
        "dan",
        "deu",
        "eng",
        "enm",
        "epo",
        "est",
        "eus",
        "fao",
        "fil",
        "fin",
        "fra",
        "frm",
        "fry",
        "gla",
        "gle",
        "glg",
        "hat",
        "hrv",
        "hun",
        "ind",
        "isl",
        "ita",
        "ita_old",
        "lat",
        "lav",
        "lit",
        "ltz",
        "mlt",
        "msa",
        "nld",
        "nor",
        "oci",
        "pol",
        "por",
        "ron",
        "slk",
        "slv",
        "spa",
        "spa_old",
        "sqi",
        "srp_latn",
        "swa",
        "swe",
        "tgl",
        "tur",
    ]
)
# Languages only the whole head reads.
WHOLE = frozenset({"chi_sim", "chi_tra", "jpn"})
LANGUAGES = LATIN | WHOLE


class UnsupportedLanguage(ValueError):
    """A language ocrmill's models cannot read."""


def charset_for(languages: Iterable[str]) -> str:
    """The charset for OCRmyPDF's languages (``["eng", "deu"]``); raises
    :class:`UnsupportedLanguage` naming each language the models cannot read."""
    wanted = [lang.strip() for lang in languages if lang.strip()] or ["eng"]
    unknown = [lang for lang in wanted if lang not in LANGUAGES]
    if unknown:
        raise UnsupportedLanguage(
            f"ocrmill cannot read {', '.join(repr(u) for u in unknown)}: its models read "
            "Latin-script languages (eng, deu, fra, spa, ita, por, nld, pol, ces, tur, ... "
            f"{len(LATIN)} in all), Chinese (chi_sim, chi_tra) and Japanese (jpn); use "
            "another OCR engine for this document"
        )
    latin = any(lang in LATIN for lang in wanted)
    whole = any(lang in WHOLE for lang in wanted)
    if latin and whole:
        return "auto"
    return "all" if whole else "latin"
