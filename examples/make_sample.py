"""Renders ``sample.png``, the page the README's first command reads.

The page is ours: text written for it, drawn with Pillow's built-in font (Aileron, SIL Open
Font License); the PNG is under the project's licence (Apache-2.0). Run from the repository
root to re-create it: ``python examples/make_sample.py``.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

TITLE = "The Mill Gazette"
LEFT = [
    "Scans become text in",
    "two commands: install",
    "ocrmill, then read a page.",
    "Columns are read in order.",
]
RIGHT = [
    "Batches of a million files",
    "run on every core, and a",
    "bad file never stops the",
    "rest of the run.",
]
FOOTER = "Page 1 of 1"


def render() -> Image.Image:
    width, height = 1240, 640
    page = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(page)
    draw.text((80, 50), TITLE, font=ImageFont.load_default(size=56), fill=0)
    body = ImageFont.load_default(size=30)
    for column, x in ((LEFT, 80), (RIGHT, 660)):
        for i, line in enumerate(column):
            draw.text((x, 180 + i * 56), line, font=body, fill=0)
    draw.text((80, 560), FOOTER, font=ImageFont.load_default(size=24), fill=0)
    return page


if __name__ == "__main__":
    out = Path(__file__).with_name("sample.png")
    render().save(out, optimize=True)
    print(out)
