"""Shared fixtures: one engine per test session, and text images rendered with Pillow."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from ocrmill.backends.base import InferenceBackend


def render_text(
    text: str,
    size: int = 32,
    *,
    pad: int = 20,
    fg: tuple[int, int, int] = (20, 20, 20),
    bg: tuple[int, int, int] = (250, 250, 250),
) -> Image.Image:
    """One line of ``text`` in Pillow's built-in FreeType font (no system fonts needed)."""
    font = ImageFont.load_default(size=size)
    left, top, right, bottom = font.getbbox(text)
    img = Image.new("RGB", (right - left + 2 * pad, bottom - top + 2 * pad), bg)
    ImageDraw.Draw(img).text((pad - left, pad - top), text, font=font, fill=fg)
    return img


def render_page(
    lines: list[str], size: int = 28, *, width: int = 900, gap: float = 1.8
) -> Image.Image:
    """Several left-aligned lines on a white page."""
    font = ImageFont.load_default(size=size)
    height = int(len(lines) * size * gap + 2 * size)
    img = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        draw.text((size, size + i * size * gap), line, font=font, fill=(0, 0, 0))
    return img


def write_text_pdf(path, texts=("First page text", "Second page text")) -> None:
    """A PDF with one page per text (rendered text on a page with margins), at 150 dpi."""
    pages = []
    for text in texts:
        img = render_text(text, size=40, pad=60)
        canvas = Image.new("RGB", (img.width + 200, img.height + 400), (255, 255, 255))
        canvas.paste(img, (100, 200))
        pages.append(canvas)
    pages[0].save(path, save_all=True, append_images=pages[1:], resolution=150)


class WrappedBackend(InferenceBackend):
    """A real backend whose ``run`` is replaced (to spy on batches or fake failures);
    ``run_top1`` is the protocol's, from that ``run``."""

    def __init__(self, real, run) -> None:
        self.model_path, self.providers = real.model_path, real.providers
        self.run, self.metadata = run, real.metadata
        self.real = real

    def run_all(self, batch):  # charset auto's recognizer: its other outputs as they are
        return [self.run(batch), *self.real.run_all(batch)[1:]]


def three_page_tiff(path) -> None:
    """A three-page TIFF, each page a dark square in another place (what the box engine of
    tests/fault/engines.py reads as one line)."""
    pages = []
    for i in range(3):
        page = Image.new("RGB", (120, 80), (255, 255, 255))
        page.paste((0, 0, 0), (10 + 20 * i, 20, 40 + 20 * i, 50))
        pages.append(page)
    pages[0].save(path, save_all=True, append_images=pages[1:], dpi=(100, 100))


@pytest.fixture(scope="session")
def engine():
    from ocrmill.engine import Engine

    return Engine()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def pytest_configure(config):
    # Worker processes import fault engines as ``tests.fault.engines``: make the repository
    # root importable for them (spawned children inherit ``sys.path``).
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[1])
    if root not in sys.path:
        sys.path.insert(0, root)


def wait_until(predicate, timeout: float = 30):
    """Poll ``predicate`` until it returns something truthy (and return it); fail after
    ``timeout`` s. For states to reach, never for timing assertions."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"not reached within {timeout} s")
