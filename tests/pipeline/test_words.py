"""Words of a read line: splitting, ink, and boxes mapped back onto the page."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from ocrmill.pipeline import words
from ocrmill.pipeline.crop import crop_quad, crop_to_page
from ocrmill.pipeline.recognize import Reading


def texts(text: str) -> list[str]:
    return [text[s:e] for s, e in words.split_words(text)]


def test_words_split_on_white_space():
    assert texts("  Total due:\t12,50 EUR ") == ["Total", "due:", "12,50", "EUR"]
    assert texts("") == [] and texts("   ") == []


def test_cjk_characters_are_words_of_their_own_and_scripts_split():
    assert texts("价格100元 OK") == ["价", "格", "100", "元", "OK"]
    assert texts("東京タワーへ行く") == list("東京タワーへ行く")
    assert texts("ABC，DEF。") == ["ABC", "，", "DEF", "。"]  # full-width punctuation
    assert texts("서울 Seoul") == ["서울", "Seoul"]  # Hangul is written with spaces


def test_is_cjk():
    assert words.is_cjk("中") and words.is_cjk("あ") and words.is_cjk("カ") and words.is_cjk("Ａ")
    assert not words.is_cjk("a") and not words.is_cjk("1") and not words.is_cjk("é")


FONT = ImageFont.load_default(size=32)


def drawn_line(text: str, pad: int = 12) -> tuple[np.ndarray, list[tuple[str, tuple]]]:
    """A crop with ``text`` and each word's glyph box (x0, y0, x1, y1) in the crop."""
    left, top, right, bottom = FONT.getbbox(text)
    img = Image.new("RGB", (right - left + 2 * pad, bottom - top + 2 * pad), (255, 255, 255))
    x, y = pad - left, pad - top
    ImageDraw.Draw(img).text((x, y), text, font=FONT, fill=(0, 0, 0))
    boxes, start = [], 0
    for word in text.split(" "):
        x0 = x + FONT.getlength(text[:start])
        gl, gt, gr, gb = FONT.getbbox(word)
        boxes.append((word, (x0 + gl, y + gt, x0 + gr, y + gb)))
        start += len(word) + 1
    return np.asarray(img), boxes


def reading_for(text: str, crop_width: int, *, step_px: float = 4.0) -> Reading:
    """A Reading whose characters fire at their glyph centres (as a CTC recognizer's do)."""
    spans, x = [], None
    pad = 12 - FONT.getbbox(text)[0]
    for i, char in enumerate(text):
        x0 = pad + FONT.getlength(text[:i])
        centre = x0 + FONT.getlength(char) / 2
        step = int(centre / step_px)
        spans.append((step, step))
        x = centre
    assert x is not None and x < crop_width
    return Reading(text, 0.95, tuple(spans), (0.95,) * len(text), step_px)


def iou(a: tuple, b: tuple) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def aabb(box: np.ndarray) -> tuple:
    return (*box.min(axis=0), *box.max(axis=0))


@pytest.mark.parametrize("flipped", [False, True])
def test_word_boxes_hug_their_glyphs_on_the_page(flipped):
    text = "Quick brown fox 42"
    crop, truth = drawn_line(text)
    h, w = crop.shape[:2]
    page = np.full((h + 100, w + 200, 3), 255, np.uint8)
    page[40 : 40 + h, 70 : 70 + w] = crop
    # Grown detector box around the line, cut as the engine cuts it.
    quad = np.array([[66, 34], [74 + w, 34], [74 + w, 46 + h], [66, 46 + h]], np.float32)
    if flipped:  # quad corners from the bottom-right: the cut comes out upside down, and
        quad = np.roll(quad, 2, axis=0)  # the recognizer read it turned back
    cut = crop_quad(page, quad)
    seen = cut[::-1, ::-1] if flipped else cut
    reading = reading_for(text, w)
    # The reading's positions are in the crop as read; shift them by the quad's margin.
    margin = 4
    reading = Reading(
        text,
        0.95,
        tuple((s + 1, e + 1) for s, e in reading.spans),
        reading.char_scores,
        reading.step_px,
        flipped,
    )
    assert seen.shape[1] == w + 2 * margin
    found, line_box = words.line_words(reading, cut, quad)
    assert [f.text for f in found] == text.split()
    for f, (word, (x0, y0, x1, y1)) in zip(found, truth):
        glyphs = (x0 + 70, y0 + 40, x1 + 70, y1 + 40)
        assert iou(aabb(f.box), glyphs) >= 0.8, (word, aabb(f.box), glyphs)
        assert f.score == pytest.approx(0.95)
        # Clockwise from the word's top-left as read (the text is upright on the page).
        assert f.box[0][0] < f.box[1][0] and f.box[0][1] < f.box[3][1]
    lx0, _ly0, lx1, _ly1 = aabb(line_box)
    assert lx0 == pytest.approx(truth[0][1][0] + 70, abs=4)
    assert lx1 == pytest.approx(truth[-1][1][2] + 70, abs=4)


def test_text_band_skips_a_neighbouring_line_cut_into_the_crop():
    mask = np.zeros((40, 100), bool)
    mask[0:3, 10:90] = True  # descenders of the line above
    mask[12:30, 5:95] = True  # this line
    assert words.text_band(mask) == (12, 30)


def test_a_crop_without_contrast_has_no_ink():
    assert words.ink_mask(np.full((20, 50, 3), 128, np.uint8)) is None
    light_on_dark = np.zeros((20, 50, 3), np.uint8)
    light_on_dark[5:15, 10:20] = 240
    mask = words.ink_mask(light_on_dark)
    assert mask is not None and mask[10, 15] and not mask[0, 0]


def test_a_reading_without_positions_gives_no_words():
    crop = np.full((20, 60, 3), 255, np.uint8)
    quad = np.array([[0, 0], [60, 0], [60, 20], [0, 20]], np.float32)
    found, box = words.line_words(Reading("abc", 0.9), crop, quad)
    assert found == [] and box.shape == (4, 2)


@pytest.mark.parametrize("flipped", [False, True])
def test_crop_to_page_inverts_crop_quad_for_tall_and_turned_crops(flipped):
    """A dot on the page lands in the crop where crop_to_page maps it back from."""
    page = np.full((300, 200, 3), 255, np.uint8)
    page[150:153, 60:63] = 0  # a dot near (61.5, 151.5)
    quad = np.array([[40, 20], [90, 20], [90, 280], [40, 280]], np.float32)  # tall: turned
    crop = crop_quad(page, quad)
    assert crop.shape[1] > crop.shape[0]
    seen = crop[::-1, ::-1] if flipped else crop
    ys, xs = np.nonzero(seen.min(axis=2) < 128)
    at = crop_to_page(quad, np.array([[xs.mean() + 0.5, ys.mean() + 0.5]]), flipped=flipped)
    np.testing.assert_allclose(at[0], [61.5, 151.5], atol=1.0)
