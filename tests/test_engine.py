"""End-to-end reads with the shipped PP-OCR models on text rendered by the tests."""

from __future__ import annotations

import dataclasses
import io
import threading

import numpy as np
import pytest
from PIL import Image
from rapidfuzz.distance import Levenshtein

from ocrmill.config import Config, ModelPaths, preset
from ocrmill.errors import CorruptImageError, ModelError
from ocrmill.pipeline import recognize
from ocrmill.results import PageFailure, PageResult

from . import scenes
from .conftest import WrappedBackend, render_page, render_text, wait_until

SENTENCES = [
    "Invoice 2024-117 total due 1,284.50 EUR",
    "The quick brown fox jumps over the lazy dog",
    "Call +1 (555) 010-9999 before 17:30",
    "Lorem ipsum dolor sit amet consectetur",
]


def cer(predicted: str, truth: str) -> float:
    norm = lambda s: " ".join(s.split())  # noqa: E731
    return Levenshtein.distance(norm(predicted), norm(truth)) / max(1, len(norm(truth)))


@pytest.mark.parametrize("size", [14, 20, 32, 56])
def test_reads_rendered_lines_at_several_sizes(engine, size):
    truth = "\n".join(SENTENCES)
    result = engine.read(np.asarray(render_page(SENTENCES, size=size, width=size * 26)))
    assert isinstance(result, PageResult)
    assert len(result.lines) == len(SENTENCES)
    assert cer(result.text, truth) < 0.03, result.text


@pytest.mark.parametrize("angle", [-8, 6, 90, 180, 270])
def test_reads_rotated_text(engine, angle):
    text = "Rotation test 4815162342"
    img = render_text(text, size=36, pad=40).rotate(angle, expand=True, fillcolor=(250, 250, 250))
    result = engine.read(np.asarray(img))
    assert cer(result.text, text) < 0.03, (angle, result.text)


def test_boxes_are_in_page_pixels_and_in_reading_order(engine):
    page = render_page(SENTENCES, size=28)
    result = engine.read(np.asarray(page))
    tops = [min(y for _, y in line.box) for line in result.lines]
    assert tops == sorted(tops)
    for line in result.lines:
        xs = [x for x, _ in line.box]
        ys = [y for _, y in line.box]
        assert 0 <= min(xs) < max(xs) <= page.width and 0 <= min(ys) < max(ys) <= page.height
        assert 0.5 <= line.score <= 1.0
    assert set(result.timings_ms) >= {"decode", "detect", "classify", "recognize", "total"}


def test_every_input_kind_reads_the_same(engine, tmp_path):
    img = render_text("Same text everywhere 42", size=30)
    path = tmp_path / "line.png"
    img.save(path)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    texts = {
        kind: engine.read(src).text
        for kind, src in {
            "path": str(path),
            "pathlike": path,
            "bytes": buf.getvalue(),
            "array": np.asarray(img),
            "pil": img,
        }.items()
    }
    assert set(texts.values()) == {"Same text everywhere 42"}, texts


def test_cmyk_jpeg_and_16bit_png_are_read(engine):
    img = render_text("CMYK and sixteen bit", size=32)
    cmyk = io.BytesIO()
    img.convert("CMYK").save(cmyk, format="JPEG", quality=95)
    gray16 = (np.asarray(img.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    png16 = io.BytesIO()
    Image.fromarray(gray16).save(png16, format="PNG")
    for data in (cmyk.getvalue(), png16.getvalue()):
        assert cer(engine.read(data).text, "CMYK and sixteen bit") < 0.05


def test_blank_image_is_ok_with_no_lines(engine):
    result = engine.read(np.full((200, 300, 3), 255, np.uint8))
    assert result.ok and result.lines == () and result.text == ""


FILTER_FLOOR = dataclasses.replace(
    Config().read, rec=dataclasses.replace(Config().read.rec, min_score=0.0)
)
"""Read options as the video filter uses them: every line that reads as a character counts."""


@pytest.mark.parametrize("options", [None, FILTER_FLOOR], ids=["default", "no-floor"])
def test_text_free_scenes_give_no_lines(engine, options):
    """Gradients, noise, textures and lit shapes, at 16:9 and 4:3: the detector finds 'text'
    in most of these (usually one box over the whole frame); none of it may be reported."""
    frames, names = [], []
    for name, scene in scenes.TEXT_FREE.items():
        for seed, (w, h) in enumerate([(640, 360), (640, 360), (480, 360)]):
            frames.append(scene(np.random.default_rng(seed), w, h))
            names.append(f"{name}:{seed}")
    for t in (0.0, 2.5, 5.0):
        frames.append(scenes.gradient_disc_frame(t))
        names.append(f"gradient_discs@{t}")
    results = engine.read_many(frames, options=options, names=names)
    found = {r.input: [(line.text, round(line.score, 2)) for line in r.lines] for r in results}
    assert {k: v for k, v in found.items() if v} == {}


@pytest.mark.parametrize("options", [None, FILTER_FLOOR], ids=["default", "no-floor"])
def test_large_glyphs_titles_and_captions_are_found(engine, options):
    """Text much taller than a text line -- single glyphs up to 60 % of the frame height, a
    title, subtitles -- on plain, gradient and busy backgrounds is still read."""
    rng = np.random.default_rng(3)
    white = np.full((360, 640, 3), 245, np.uint8)
    cases = [
        (white, "A", 150),
        (scenes.linear_gradient(rng), "K", 220),
        (scenes.soft_blobs(rng), "8", 280),
        (scenes.radial_gradient(rng), "SALE", 120),
        (scenes.clouds(rng), "OPEN 24H", 90),
    ]
    frames = [scenes.draw_text(bg, text, size, outline=4)[0] for bg, text, size in cases]
    captions = ["We will meet again tomorrow", "at the old station, 7:45"]
    frames.append(scenes.caption_frame(scenes.gradient_disc_frame(1.0), captions, 30)[0])
    results = engine.read_many(frames, options=options)
    squeeze = lambda s: "".join(s.split())  # noqa: E731  (a space read or not is not the point)
    expected = [text for _, text, _ in cases] + ["".join(captions)]
    assert [squeeze(r.text) for r in results] == [squeeze(t) for t in expected]


def test_read_many_matches_read_and_keeps_failures_in_place(engine):
    imgs = [np.asarray(render_text(s, size=28)) for s in SENTENCES]
    inputs = [imgs[0], b"\xff\xd8\xff\xe0 broken jpeg", imgs[1], imgs[2], imgs[3]]
    results = engine.read_many(inputs, names=["a", "bad.jpg", "b", "c", "d"])
    assert [r.ok for r in results] == [True, False, True, True, True]
    failure = results[1]
    assert isinstance(failure, PageFailure) and failure.input == "bad.jpg"
    assert failure.code in {"corrupt_image", "unsupported_format"}
    singles = [engine.read(img).text for img in imgs]
    assert [r.text for r in results if r.ok] == singles


def _three_pages() -> list[np.ndarray]:
    return [np.asarray(render_text(s, size=28)) for s in SENTENCES[:3]]


def _helpers_alive() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "ocrmill-detect-ahead"]


def test_read_many_detects_the_next_page_while_this_one_is_read(engine, monkeypatch):
    """On a CPU the pages of one call are a pipeline: page k+1 is found while page k is
    read. Each page's reading here waits until the next page has been detected, which in
    turn (every page detected, then every page read) could not happen."""
    imgs = _three_pages()
    singles = [engine.read(img).text for img in imgs]
    detected = [threading.Event() for _ in imgs]
    next_was_found: list[bool] = []
    real_detect, real_read = engine._detect_pages, engine._read_detected

    def detect(slots, opts):
        out = real_detect(slots, opts)
        detected[sum(e.is_set() for e in detected)].set()
        return out

    def read(slots, opts):
        k = len(next_was_found)
        next_was_found.append(k + 1 == len(imgs) or detected[k + 1].wait(timeout=20))
        return real_read(slots, opts)

    monkeypatch.setattr(engine, "_detect_pages", detect)
    monkeypatch.setattr(engine, "_read_detected", read)
    results = engine.read_many(imgs)
    assert next_was_found == [True, True, True]
    assert [r.text for r in results] == singles
    assert not _helpers_alive()


@pytest.mark.parametrize(
    ("stage", "failing_call"),
    [("_read_detected", 1), ("_detect_pages", 2)],
    ids=["reading-the-first-page", "detecting-the-second-page-ahead"],
)
def test_read_many_raises_in_the_callers_thread_and_stops_its_detecting_thread(
    engine, monkeypatch, stage, failing_call
):
    real = getattr(engine, stage)
    calls: list[int] = []

    def failing(slots, opts):
        calls.append(1)
        if len(calls) == failing_call:
            raise RuntimeError(f"{stage} failed on purpose")
        return real(slots, opts)

    monkeypatch.setattr(engine, stage, failing)
    with pytest.raises(RuntimeError, match="on purpose"):
        engine.read_many(_three_pages())
    assert not _helpers_alive()


def test_release_memory_waits_for_a_model_in_use_and_pages_read_the_same_after(engine, monkeypatch):
    imgs = _three_pages()
    before = [r.text for r in engine.read_many(imgs)]
    released: list[str] = []
    loaded = {"det": engine._det, "rec": engine._rec, "cls": engine._cls}
    for role, backend in loaded.items():

        def release(role=role, real=backend.release_memory):
            released.append(role)
            real()

        monkeypatch.setattr(backend, "release_memory", release)
    with engine._model_locks["rec"]:  # the recognizer is busy with another call
        releasing = threading.Thread(target=engine.release_memory)
        releasing.start()
        wait_until(lambda: released == ["det"])
        assert releasing.is_alive()
    releasing.join(timeout=30)
    assert released == ["det", "rec", "cls"]
    assert [r.text for r in engine.read_many(imgs)] == before


def test_read_raises_typed_error_for_bad_input(engine):
    with pytest.raises(CorruptImageError):
        engine.read(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, name="cut.png")


def test_per_call_options_do_not_stick(engine):
    img = np.asarray(render_page(SENTENCES[:2], size=12, width=400))
    before = engine.read(img).text
    tiny = dataclasses.replace(
        preset("balanced"), det=dataclasses.replace(preset("balanced").det, limit_side_len=64)
    )
    engine.read(img, options=tiny)
    assert engine.read(img).text == before
    assert engine.config.read == Config().read


def test_missing_model_file_is_named(tmp_path):
    from ocrmill.engine import Engine

    missing = tmp_path / "nope_det.onnx"
    with pytest.raises(ModelError, match=r"nope_det\.onnx"):
        Engine(Config(models=ModelPaths(det=missing)))


def test_garbage_model_file_is_named(tmp_path):
    from ocrmill.engine import Engine

    bad = tmp_path / "bad_rec.onnx"
    bad.write_bytes(b"not a model at all")
    with pytest.raises(ModelError, match=r"bad_rec\.onnx"):
        Engine(Config(models=ModelPaths(rec=bad)))


def test_user_dictionary_must_fit_the_model(engine, tmp_path):
    from ocrmill.engine import Engine

    chars = engine.vocabulary[1:-1]  # without blank and the trailing space
    good = tmp_path / "dict.txt"
    good.write_text("\n".join(chars) + "\n", encoding="utf-8")
    other = Engine(Config(models=ModelPaths(rec_dict=good)))
    assert other.vocabulary == engine.vocabulary
    short = tmp_path / "short.txt"
    short.write_text("a\nb\nc\n", encoding="utf-8")
    with pytest.raises(ModelError, match=r"short\.txt"):
        Engine(Config(models=ModelPaths(rec_dict=short)))


def test_providers_are_reported(engine):
    # auto on the CPU: per model, the backend measured fastest here (see backends/choice).
    from ocrmill.backends.base import cache_root
    from ocrmill.backends.choice import cached_choice
    from ocrmill.backends.factory import cpu_candidates

    names = {
        "onnxruntime": "CPUExecutionProvider",
        "openvino": "OpenVINO:CPU",
        "openvino-bf16": "OpenVINO:CPU:bf16",
        "openvino-int8": "OpenVINO:CPU:int8",
    }
    backend = engine.config.backend
    for role, path in (
        ("det", engine.files.det),
        ("rec", engine.files.rec),
        ("cls", engine.files.cls),
    ):
        choice = cached_choice(
            role, path, backend, cache_root(backend), cpu_candidates(backend, role, path)
        )
        expected = choice.backend if choice else "onnxruntime"  # only ONNX Runtime installed
        assert engine.providers[role] == (names[expected],)


def test_backends_read_the_same_text(engine):
    from ocrmill.config import BackendConfig
    from ocrmill.engine import Engine

    ort_only = Engine(Config(backend=BackendConfig(name="onnxruntime")))
    page = np.asarray(render_page(SENTENCES, size=28))
    expected = ort_only.read(page)
    got = engine.read(page)
    assert got.text == expected.text
    assert Levenshtein.normalized_distance(got.text, "\n".join(SENTENCES)) < 0.03


def test_given_name_wins_over_a_decoded_image_name(engine):
    from ocrmill.pipeline.decode import DecodedImage

    pixels = np.asarray(render_text("Named page", size=30))
    decoded = DecodedImage(pixels=pixels, name="/srv/uploads/7f3a.pdf", page=2)
    (result,) = engine.read_many([decoded], names=["report.pdf"])
    assert result.input == "report.pdf" and result.page == 2


def test_batched_detection_reads_like_page_by_page(engine):
    """GPU engines batch detection (inputs padded to shared buckets); the text must not
    change. Exercised on the CPU by switching the engine's batching on."""
    pages = [
        np.asarray(render_page(SENTENCES[:2], size=28, width=700)),
        np.asarray(render_page(SENTENCES, size=22, width=900)),
        np.asarray(render_page(SENTENCES[1:3], size=30, width=760)),
        np.asarray(render_page(SENTENCES[:1], size=20, width=500)),
    ]
    expected = [r.text for r in engine.read_many(pages)]
    engine._batch_detection = True
    try:
        got = engine.read_many([*pages, b"not an image"], names=["a", "b", "c", "d", "bad"])
    finally:
        engine._batch_detection = False
    assert [r.text for r in got[:4]] == expected
    assert not got[4].ok and got[4].code == "unsupported_format"
    assert all(r.timings_ms["detect"] > 0 for r in got[:4])


def test_gpu_style_warmup_runs_full_batches(engine, monkeypatch):
    """A batching (GPU) engine warms up on DET_MAX_BATCH full-size pages in one detector call."""
    from ocrmill import engine as engine_module

    calls: list[tuple[int, ...]] = []
    real = engine._det

    def spy(batch):
        calls.append(batch.shape)
        return real.run(batch)

    monkeypatch.setattr(engine_module, "DET_MAX_BATCH", 2)  # keep the CPU test small
    engine._det, engine._batch_detection = WrappedBackend(real, spy), True
    try:
        engine.warmup()
    finally:
        engine._det, engine._batch_detection = real, False
    assert calls and calls[0][0] == 2 and max(calls[0][2:]) >= 1280


@pytest.mark.parametrize("per_shape", [False, True])
def test_a_recognizer_that_keeps_memory_per_shape_gets_one_line_per_call(engine, per_shape):
    """OpenVINO's CPU plugin keeps kernels and buffers for every input shape it sees: it
    is given one line per call, so batch sizes do not multiply its shapes, padded to a
    coarser grid of widths. The text is the same either way."""
    page = np.asarray(render_page([f"line number {i} of the page" for i in range(8)], size=24))
    real = engine._rec
    calls: list[int] = []

    widths: set[int] = set()

    def spy(batch):
        calls.append(len(batch))
        widths.add(batch.shape[3])
        return real.run(batch)

    wrapped = WrappedBackend(real, spy)
    wrapped.memory_per_shape = per_shape
    engine._rec = wrapped
    try:
        text = engine.read(page).text
    finally:
        engine._rec = real
    assert "line number 7 of the page" in text
    assert len(calls) >= 8 or not per_shape
    assert (max(calls) == 1) == per_shape
    steps = 4 if per_shape else 8
    assert widths <= {recognize.width_bucket(w, 16, steps) for w in range(16, 3201)}
