"""The text of each page of a PDF as the common extractors give it: pdfium (Chrome, our own
checks), poppler (``pdftotext``, evince and okular), pdfminer.six (Python pipelines) and
pdf.js (Firefox). Searchable PDFs are checked against all four, not only the one in the
tests (see STYLE.md).

Each ``*_pages(path)`` returns one string per page, as the tool gives it (no cleanup: line
ends, runs of spaces and form feeds are left to the caller). A tool that is not installed
raises :class:`ExtractorUnavailable` with the reason and how to install it; tests turn it
into a skip with :func:`pages_or_skip`. Used by ``tests/outputs/test_pdf_extractors.py``
and ``benchmarks/pdf_extractors.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

PDFJS_DIR = Path(__file__).resolve().parent / "pdfjs"
PDFJS_SCRIPT = PDFJS_DIR / "page_texts.mjs"
TOOL_TIMEOUT_S = 120  # per call of an external extractor, so a hang fails a test, not CI


class ExtractorUnavailable(RuntimeError):
    """The extractor's tool is not installed here; the message says how to get it."""


def pdfium_pages(path: str | os.PathLike[str]) -> list[str]:
    """pypdfium2's ``get_text_range()`` of each page: pdfium's text in content order, lines
    ended by ``\\r\\n`` where pdfium sees a new line."""
    try:
        import pypdfium2 as pdfium
    except ImportError:
        raise ExtractorUnavailable("pypdfium2 is not installed (pip install pypdfium2)") from None
    doc = pdfium.PdfDocument(os.fspath(path))
    try:
        texts = []
        for index in range(len(doc)):
            textpage = doc[index].get_textpage()
            try:
                texts.append(textpage.get_text_range())
            finally:
                textpage.close()
        return texts
    finally:
        doc.close()


def poppler_pages(path: str | os.PathLike[str]) -> list[str]:
    """``pdftotext -raw`` of each page (content-stream order, as poppler groups it into
    words and lines; ``-raw`` keeps the order the layer gives instead of poppler's
    physical layout)."""
    pdftotext = shutil.which("pdftotext")
    if pdftotext is None:
        raise ExtractorUnavailable("pdftotext is not installed (apt-get install poppler-utils)")
    pages = _page_count(path)
    texts = []
    for number in range(1, pages + 1):
        proc = subprocess.run(
            [
                pdftotext,
                "-raw",
                "-enc",
                "UTF-8",
                "-f",
                str(number),
                "-l",
                str(number),
                os.fspath(path),
                "-",
            ],
            capture_output=True,
            check=True,
            timeout=TOOL_TIMEOUT_S,
        )
        texts.append(proc.stdout.decode("utf-8").rstrip("\f"))
    return texts


def pdfminer_pages(path: str | os.PathLike[str]) -> list[str]:
    """``pdfminer.high_level.extract_text`` of each page with the default ``LAParams``
    (what ``pdf2txt.py`` and most Python pipelines use)."""
    try:
        from pdfminer.high_level import extract_text
        from pdfminer.layout import LAParams
    except ImportError:
        raise ExtractorUnavailable(
            "pdfminer.six is not installed (pip install pdfminer.six, or the dev extra)"
        ) from None
    return [
        extract_text(os.fspath(path), page_numbers=[index], laparams=LAParams()).rstrip("\f")
        for index in range(_page_count(path))
    ]


def pdfjs_pages(path: str | os.PathLike[str]) -> list[str]:
    """pdf.js' text of each page as Firefox's find bar and "copy all" see it: the items of
    ``getTextContent({disableNormalization: true})`` joined as given, a newline after an
    item with ``hasEOL`` and nothing else (``pdfjs/page_texts.mjs``; pdf.js from
    ``npm ci --prefix tests/outputs/pdfjs``, run by node 20 or later)."""
    node = shutil.which("node")
    if node is None:
        raise ExtractorUnavailable("node is not installed (pdf.js runs on node >= 20.19)")
    if not (PDFJS_DIR / "node_modules" / "pdfjs-dist").is_dir():
        raise ExtractorUnavailable(
            f"pdfjs-dist is not installed: npm ci --omit=optional --prefix {PDFJS_DIR}"
        )
    proc = subprocess.run(
        [node, os.fspath(PDFJS_SCRIPT), os.fspath(path)],
        capture_output=True,
        timeout=TOOL_TIMEOUT_S,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"pdf.js failed on {os.fspath(path)}: {proc.stderr.decode(errors='replace')[-2000:]}"
        )
    texts = json.loads(proc.stdout)
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise RuntimeError(f"pdf.js gave no list of page texts for {os.fspath(path)}")
    return texts


def extractor_versions() -> dict[str, str]:
    """Which version of each extractor runs here ("missing: why" where one cannot run)."""
    from importlib import metadata

    versions: dict[str, str] = {}
    try:
        from pypdfium2.version import PDFIUM_INFO, PYPDFIUM_INFO

        versions["pdfium"] = f"pypdfium2 {PYPDFIUM_INFO} (pdfium {PDFIUM_INFO})"
    except ImportError:
        versions["pdfium"] = "missing: pypdfium2 is not installed"
    pdftotext = shutil.which("pdftotext")
    if pdftotext:
        proc = subprocess.run([pdftotext, "-v"], capture_output=True, text=True)
        first = (proc.stderr or proc.stdout).splitlines()[:1]
        versions["poppler"] = first[0] if first else "pdftotext"
    else:
        versions["poppler"] = "missing: pdftotext is not installed"
    try:
        versions["pdfminer.six"] = "pdfminer.six " + metadata.version("pdfminer.six")
    except metadata.PackageNotFoundError:
        try:
            import pdfminer

            versions["pdfminer.six"] = "pdfminer.six " + str(pdfminer.__version__)
        except ImportError:
            versions["pdfminer.six"] = "missing: pdfminer.six is not installed"
    package = PDFJS_DIR / "node_modules" / "pdfjs-dist" / "package.json"
    node = shutil.which("node")
    if package.exists() and node:
        node_version = subprocess.run([node, "--version"], capture_output=True, text=True)
        pdfjs = json.loads(package.read_text())["version"]
        versions["pdf.js"] = f"pdfjs-dist {pdfjs} on node {node_version.stdout.strip()}"
    else:
        versions["pdf.js"] = "missing: node or pdfjs-dist is not installed"
    return versions


def _page_count(path: str | os.PathLike[str]) -> int:
    import pikepdf

    with pikepdf.open(os.fspath(path)) as pdf:
        return len(pdf.pages)


# The extractors by the name reports and test ids use, in the order they are shown.
EXTRACTORS: dict[str, Callable[[str | os.PathLike[str]], list[str]]] = {
    "pdfium": pdfium_pages,
    "poppler": poppler_pages,
    "pdfminer.six": pdfminer_pages,
    "pdf.js": pdfjs_pages,
}


def pages_or_skip(name: str, path: str | os.PathLike[str]) -> list[str]:
    """``EXTRACTORS[name](path)``, or a pytest skip naming what is missing."""
    import pytest

    try:
        return EXTRACTORS[name](path)
    except ExtractorUnavailable as exc:
        pytest.skip(f"{name}: {exc}")
