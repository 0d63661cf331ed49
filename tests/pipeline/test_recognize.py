"""CTC decoding and recognition batching."""

from __future__ import annotations

import numpy as np
import pytest

from ocrmill.config import RecOptions
from ocrmill.pipeline import recognize

VOCAB = ["", "a", "b", "c", " "]


def one_hot(rows: list[list[int]], probs: float = 0.9) -> np.ndarray:
    t = max(len(r) for r in rows)
    out = np.full((len(rows), t, len(VOCAB)), (1 - probs) / (len(VOCAB) - 1), np.float32)
    for b, row in enumerate(rows):
        for s in range(t):
            out[b, s, row[s] if s < len(row) else 0] = probs
    return out


def test_ctc_collapses_repeats_and_drops_blanks():
    probs = one_hot([[1, 1, 0, 1, 2, 2, 0, 0, 4, 3], [0, 0, 0, 0], [3, 0, 3, 3]])
    decoded = recognize.ctc_greedy_decode(probs, VOCAB)
    assert [t for t, _ in decoded] == ["aab c", "", "cc"]
    assert decoded[0][1] == pytest.approx(0.9, abs=1e-6)
    assert decoded[1][1] == 0.0


def test_ctc_score_is_mean_of_kept_steps():
    probs = one_hot([[1, 2]])
    probs[0, 0, 1] = 0.5
    probs[0, 1, 2] = 1.0
    ((text, score),) = recognize.ctc_greedy_decode(probs, VOCAB)
    assert text == "ab" and score == pytest.approx(0.75)


def test_rec_width_follows_aspect_ratio_on_a_bucket_grid():
    opts = RecOptions(width_step=16, min_width=16, max_width=800)
    assert recognize.rec_width(np.zeros((24, 100, 3), np.uint8), opts) == 208  # 200 -> 208
    assert recognize.rec_width(np.zeros((48, 10, 3), np.uint8), opts) == 16
    assert recognize.rec_width(np.zeros((10, 1000, 3), np.uint8), opts) == 800


@pytest.mark.parametrize("per_octave", [8, 4, 2])
@pytest.mark.parametrize("width", [1, 17, 95, 100, 129, 300, 511, 700, 1500, 3000])
def test_width_bucket_bounds_padding(width, per_octave):
    bucket = recognize.width_bucket(width, 16, per_octave)
    assert bucket >= width
    assert bucket - width < max(16, bucket / per_octave)


@pytest.mark.parametrize("per_octave", [8, 4])
def test_a_coarser_grid_has_about_as_many_widths_per_doubling_as_asked(per_octave):
    widths = {recognize.width_bucket(w, 16, per_octave) for w in range(1024, 2048)}
    assert len(widths) == per_octave + 1  # 1024 itself, then per_octave steps up to 2048


def test_steps_per_octave_must_be_a_power_of_two():
    from ocrmill.errors import ConfigError

    with pytest.raises(ConfigError, match="power of two"):
        RecOptions(steps_per_octave=6)
    with pytest.raises(ValueError, match="power of two"):
        recognize.width_bucket(100, 16, 3)


def test_batches_hold_one_width_and_respect_caps():
    widths = [96, 400, 96, 320, 96, 800, 96, 320, 96]
    opts = RecOptions(max_batch_size=3, max_batch_pixels=48 * 1000)
    batches = recognize.plan_rec_batches(widths, opts)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(len(widths)))  # every crop exactly once
    for b in batches:
        ws = {widths[i] for i in b}
        assert len(ws) == 1
        assert len(b) <= 3
        assert len(b) == 1 or len(b) * max(ws) * 48 <= opts.max_batch_pixels
    assert [len(b) for b in batches] == [3, 2, 2, 1, 1]


def test_rec_batch_pads_with_grey_and_keeps_bgr():
    crop = np.zeros((24, 24, 3), np.uint8)
    crop[..., 2] = 255  # blue in RGB
    batch = recognize.rec_batch([crop], width=96)
    assert batch.shape == (1, 3, 48, 96)
    assert batch[0, 0, :, :48].mean() == pytest.approx(1.0)  # B plane first
    assert np.all(batch[0, :, :, 48:] == 0.0)


def test_reading_spans_map_characters_to_their_steps():
    # steps:     0  1  2  3  4  5  6  7  8  9 10 11
    probs = one_hot([[0, 1, 1, 0, 4, 4, 2, 0, 0, 3, 3, 3]])
    (reading,) = recognize.decode_readings(*recognize.top1(probs), VOCAB, step_px=[2.0])
    assert reading.text == "a bc"
    assert reading.spans == ((1, 2), (4, 5), (6, 6), (9, 11))
    assert reading.char_scores == pytest.approx((0.9,) * 4)
    assert reading.step_px == 2.0 and not reading.flipped
    assert reading.score == pytest.approx(recognize.ctc_greedy_decode(probs, VOCAB)[0][1])


def test_step_px_maps_time_steps_onto_the_crop(engine):
    """A character's time step times step_px lands on the character in the crop."""
    from tests.conftest import render_text

    crop = np.asarray(render_text("WORD        7", size=40, pad=10))
    (reading,) = engine._read_crops([crop], engine.config.read.rec)
    assert reading.text.replace(" ", "") == "WORD7"
    ink = np.flatnonzero((crop.min(axis=2) < 128).any(axis=0))
    gaps = np.flatnonzero(np.diff(ink) > 1)
    glyphs = list(zip(ink[np.r_[0, gaps + 1]], ink[np.r_[gaps, len(ink) - 1]]))  # column runs
    first, last = reading.spans[0], reading.spans[-1]
    x_first = (first[0] + first[1] + 1) / 2 * reading.step_px
    x_last = (last[0] + last[1] + 1) / 2 * reading.step_px
    assert glyphs[0][0] <= x_first <= glyphs[0][1]  # inside the W
    assert glyphs[-1][0] - 4 <= x_last <= glyphs[-1][1] + 4  # on the 7
