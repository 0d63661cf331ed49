"""ocrmill as an OCRmyPDF ``OcrEngine``: one engine per process, built on its first page and
reused for every page after it.

OCRmyPDF reads pages in a pool of ``--jobs`` workers: threads by default, processes with
``--no-use-threads``. With threads, the process's one engine reads one page at a time
with every CPU (the other workers rasterize, deskew and render meanwhile); with
processes, each worker's engine gets its share of the CPUs. Either way the machine is used
and not oversubscribed.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from pathlib import Path
from typing import Any

import numpy as np
from ocrmypdf.hocrtransform import OcrElement
from ocrmypdf.pluginspec import OcrEngine, OrientationConfidence

import ocrmill
from ocrmill.config import Config, load_config
from ocrmill.engine import Engine
from ocrmill.ocrmypdf.languages import LANGUAGES, charset_for
from ocrmill.ocrmypdf.tree import page_tree
from ocrmill.pipeline import rotation
from ocrmill.results import PageResult
from ocrmill.runtime.devices import usable_cpus

# OCRmyPDF turns a page when the engine's orientation confidence reaches
# --rotate-pages-threshold, 14 by default (a value on Tesseract's scale). Ours is the share
# of the page's line length running along its found axis times its character-weighted
# reading confidence, scaled so that a page just at ocrmill's own gates for a turn (three
# quarters of its lines' length along the axis, read at 0.85) scores 14.
DEFAULT_THRESHOLD = 14.0
CONFIDENCE_SCALE = DEFAULT_THRESHOLD / (rotation.SIDEWAYS_SHARE * rotation.DOUBTFUL_PAGE)


def threads_for(options: Any) -> int:
    """Inference threads of this process's engine (see the module docstring)."""
    cpus = usable_cpus()
    if getattr(options, "use_threads", True):
        return cpus
    jobs = getattr(options, "jobs", None) or cpus
    return max(1, cpus // jobs)


_engines: dict[tuple[str, int], tuple[Engine, threading.Lock]] = {}
_engines_lock = threading.Lock()


def engine_config(charset: str, threads: int) -> Config:
    """The default config (with the ``OCRMILL_*`` environment) reading ``charset`` with
    ``threads`` inference threads."""
    config = load_config()
    return dataclasses.replace(
        config,
        models=dataclasses.replace(config.models, charset=charset),  # type: ignore[arg-type]
        backend=dataclasses.replace(config.backend, threads=threads),
    )


def shared_engine(options: Any) -> tuple[Engine, threading.Lock]:
    """This process's engine for ``options`` (built once) and the lock its reads take."""
    key = (charset_for(options.languages), threads_for(options))
    with _engines_lock:
        if key not in _engines:
            _engines[key] = (Engine(engine_config(*key)), threading.Lock())
        return _engines[key]


def read_page(input_file: Path, options: Any) -> PageResult:
    engine, lock = shared_engine(options)
    with lock:
        return engine.read(str(input_file))


def page_dpi(path: Path) -> float:
    """The resolution OCRmyPDF rendered the page image at (as ocrmill reads an image's)."""
    from PIL import Image

    from ocrmill.outputs.pdf import image_dpi

    with Image.open(path) as image:
        return image_dpi(image)[0]


def orientation_confidence(result: PageResult) -> float:
    """How sure the page's orientation is, on OCRmyPDF's scale (see ``CONFIDENCE_SCALE``):
    0 for a page with too few lines or characters to tell."""
    if not result.lines:
        return 0.0
    vertical, elongated, _ = rotation.vertical_share(np.array([line.box for line in result.lines]))
    chars = np.array([len(line.text.strip()) for line in result.lines], np.float64)
    if elongated < rotation.SIDEWAYS_MIN_LINES or chars.sum() < rotation.TURN_MIN_CHARS:
        return 0.0
    along = vertical if result.rotation in (90, 270) else 1.0 - vertical
    scores = np.array([line.score for line in result.lines], np.float64)
    reading = float(np.dot(chars, scores) / chars.sum())
    return round(CONFIDENCE_SCALE * along * reading, 2)


def _text(result: PageResult) -> str:
    return result.text + "\n" if result.lines else ""


class OcrmillEngine(OcrEngine):
    """ocrmill's detector, recognizer, rotation and layout behind OCRmyPDF's engine API."""

    @staticmethod
    def version() -> str:
        return ocrmill.__version__

    @staticmethod
    def creator_tag(options: Any) -> str:
        return f"ocrmill {ocrmill.__version__}"

    def __str__(self) -> str:
        return f"ocrmill {ocrmill.__version__}"

    @staticmethod
    def languages(options: Any) -> set[str]:
        return set(LANGUAGES)

    @staticmethod
    def get_orientation(input_file: Path, options: Any) -> OrientationConfidence:
        """OCRmyPDF's angle is the clockwise turn that makes the page upright; ocrmill's
        ``rotation`` is how far the content is turned counter-clockwise."""
        result = read_page(input_file, options)
        return OrientationConfidence(
            angle=(360 - result.rotation) % 360, confidence=orientation_confidence(result)
        )

    @staticmethod
    def get_deskew(input_file: Path, options: Any) -> float:
        """Degrees to turn the image counter-clockwise to level its lines (detection only)."""
        engine, lock = shared_engine(options)
        with lock:
            return math.degrees(engine.skew(str(input_file)))

    @staticmethod
    def supports_generate_ocr() -> bool:
        return True

    @staticmethod
    def generate_ocr(
        input_file: Path, options: Any, page_number: int = 0
    ) -> tuple[OcrElement, str]:
        result = read_page(input_file, options)
        tree = page_tree(result, dpi=page_dpi(input_file), page_number=page_number)
        return tree, _text(result)

    @staticmethod
    def generate_hocr(input_file: Path, output_hocr: Path, output_text: Path, options: Any) -> None:
        from ocrmill.outputs.hocr import render_hocr

        result = read_page(input_file, options)
        software = f"ocrmill {ocrmill.__version__}"
        output_hocr.write_text(render_hocr([result], software=software), encoding="utf-8")
        output_text.write_text(_text(result), encoding="utf-8")

    @staticmethod
    def generate_pdf(input_file: Path, output_pdf: Path, output_text: Path, options: Any) -> None:
        """A text-only page the size of the image with ocrmill's own text layer (the one
        ``ocrmill pdf`` writes), for OCRmyPDF's ``sandwich`` renderer to graft."""
        from ocrmill.outputs.pdf import text_only_page
        from ocrmill.outputs.pdf_save import save_settings

        result = read_page(input_file, options)
        with text_only_page(result, page_dpi(input_file)) as pdf:
            pdf.save(output_pdf, **save_settings())
        output_text.write_text(_text(result), encoding="utf-8")
