"""Recognizers restricted to a charset: which classes stay, what the rewritten head
computes, and an engine that reads with it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ocrmill.backends.restricted import restrict_recognizer
from ocrmill.charsets import class_subset
from ocrmill.config import BackendConfig, Config, ModelPaths
from ocrmill.errors import ConfigError, ModelError
from ocrmill.models import SHIPPED_REC, resolve_models, shipped_model_dir
from tests.conftest import render_text

onnx = pytest.importorskip("onnx")


def test_latin_keeps_the_blank_latin_letters_punctuation_and_currency():
    vocabulary = ["", "a", "Z", "7", " ", "é", "ß", "€", "£", "“", "中", "ア", "한", "ab", "a中"]
    kept = [vocabulary[i] for i in class_subset(vocabulary, "latin")]
    assert kept == ["", "a", "Z", "7", " ", "é", "ß", "€", "£", "“", "ab"]
    assert class_subset(vocabulary, "all") == list(range(len(vocabulary)))
    with pytest.raises(ConfigError, match="unknown charset 'greek'"):
        class_subset(vocabulary, "greek")


def _session(model):
    import onnxruntime as ort

    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def test_restricted_head_is_the_softmax_over_the_kept_logits():
    from ocrmill.backends.rec_head import restrict_classes

    model = onnx.load(str(shipped_model_dir() / SHIPPED_REC))
    keep = [0, 5, 17, 100, 18709]
    x = np.random.default_rng(3).random((2, 3, 48, 160), dtype=np.float32)
    full = _session(model).run(None, {"x": x})[0]
    restricted = _session(restrict_classes(model, keep)).run(None, {"x": x})[0]
    assert restricted.shape == (*full.shape[:2], len(keep))
    expected = full[..., keep] / full[..., keep].sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(restricted, expected, rtol=1e-3, atol=1e-6)


def test_a_graph_without_a_softmax_head_is_refused():
    from onnx import TensorProto, helper

    from ocrmill.backends.rec_head import restrict_classes

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "no-head",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    with pytest.raises(ModelError, match="not a softmax"):
        restrict_classes(helper.make_model(graph), [0, 1])


@pytest.fixture(scope="module")
def latin_engine(tmp_path_factory):
    from ocrmill.engine import Engine

    cache = tmp_path_factory.mktemp("cache")
    config = Config(models=ModelPaths(charset="latin"), backend=BackendConfig(cache_dir=cache))
    return Engine(config)


def test_latin_engine_reads_latin_text_like_the_full_one(latin_engine, engine):
    text = "Invoice 2024-117: total 42.50 EUR"
    image = np.asarray(render_text(text, size=36))
    assert latin_engine.read(image).text == engine.read(image).text == text
    assert 600 < len(latin_engine.vocabulary) < 800
    assert not any("\u4e00" <= ch <= "\u9fff" for token in latin_engine.vocabulary for ch in token)


def test_the_restricted_model_is_written_once_and_reused(latin_engine):
    path = latin_engine.files.rec
    assert path.is_file() and "latin" in path.name
    written = path.stat().st_mtime_ns
    cache = latin_engine.config.backend.cache_dir
    again = restrict_recognizer(resolve_models(ModelPaths()), "latin", cache)
    assert again.rec == path and again.rec_dict is None
    assert path.stat().st_mtime_ns == written
    # "all" leaves the shipped files alone.
    files = resolve_models(ModelPaths())
    assert restrict_recognizer(files, "all", cache) is files


def test_charset_comes_from_the_command_line_and_the_environment():
    from ocrmill.cli import build_parser
    from ocrmill.cli.options import config_from_args
    from ocrmill.config import load_config

    args = build_parser().parse_args(["read", "x.png", "--charset", "latin"])
    assert config_from_args(args).models.charset == "latin"
    assert load_config(env={"OCRMILL_MODELS_CHARSET": "latin"}).models.charset == "latin"
    with pytest.raises(ConfigError, match="OCRMILL_MODELS_CHARSET"):
        load_config(env={"OCRMILL_MODELS_CHARSET": "klingon"})


# -- charset auto: the Latin head first, the whole head for doubtful lines ------------------


def test_the_head_input_and_the_whole_head_give_the_model_output():
    from ocrmill.backends.rec_head import FEATURES_OUTPUT, head_weights, restrict_classes

    model = onnx.load(str(shipped_model_dir() / SHIPPED_REC))
    keep = [0, 5, 17, 100, 18709]
    x = np.random.default_rng(5).random((2, 3, 48, 160), dtype=np.float32)
    full = _session(model).run(None, {"x": x})[0]
    session = _session(restrict_classes(model, keep, features=True))
    assert [o.name for o in session.get_outputs()][1] == FEATURES_OUTPUT
    probs, features = session.run(None, {"x": x})
    assert probs.shape == (*full.shape[:2], len(keep))
    weight, bias = head_weights(model)
    logits = features @ weight + bias
    whole = np.exp(logits - logits.max(axis=-1, keepdims=True))
    whole /= whole.sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(whole, full, rtol=1e-3, atol=1e-5)


def test_line_scores_are_the_scores_of_the_decoded_lines():
    from ocrmill.pipeline.recognize import decode_readings, line_scores

    rng = np.random.default_rng(8)
    idx = rng.integers(0, 4, size=(6, 12))
    idx[0] = 0  # a line with nothing kept scores 0
    best = rng.random((6, 12)).astype(np.float32)
    readings = decode_readings(idx, best, ["", "a", "b", "c"], [1.0] * 6)
    np.testing.assert_allclose(line_scores(idx, best), [r.score for r in readings], rtol=1e-6)


def test_latin_first_rescores_only_the_doubtful_rows_with_the_whole_head():
    from ocrmill.pipeline.latin_first import LatinFirst

    seen: list[np.ndarray] = []

    def whole_head(features):
        seen.append(features)
        return np.full(features.shape[:2], 4), np.full(features.shape[:2], 0.75, np.float32)

    head = LatinFirst(whole_head, np.array([0, 2, 5]), ["", "a", "b", "c", "d", "e"])
    features = np.random.default_rng(11).normal(size=(3, 5, 4)).astype(np.float32)
    latin = np.full((3, 5, 3), 0.005, np.float32)
    latin[0, :, 1] = 0.99  # row 0: Latin class 1 (whole class 2) read with confidence
    latin[1, :, 2] = 0.5  # row 1: doubtful
    latin[2, :, 0] = 0.99  # row 2: nothing read (score 0): doubtful
    idx, best = head.top1(latin, features, below=0.9)
    assert idx[0].tolist() == [2] * 5 and np.allclose(best[0], 0.99)
    assert idx[1:].tolist() == [[4] * 5] * 2 and np.allclose(best[1:], 0.75)
    assert len(seen) == 1 and np.array_equal(seen[0], features[1:])


def test_the_whole_head_model_gives_the_best_class_of_the_model_output(tmp_path):
    from ocrmill.backends.onnx import OnnxBackend
    from ocrmill.backends.rec_head import restrict_classes, whole_head_model

    model = onnx.load(str(shipped_model_dir() / SHIPPED_REC))
    x = np.random.default_rng(6).random((2, 3, 48, 192), dtype=np.float32)
    full = _session(model).run(None, {"x": x})[0]
    _, features = _session(restrict_classes(model, [0, 1, 2], features=True)).run(None, {"x": x})
    path = tmp_path / "head.onnx"
    onnx.save(whole_head_model(model, {"k": "v"}), str(path))
    head = OnnxBackend(path, BackendConfig())
    idx, best = head.run_all(features)
    assert head.metadata() == {"k": "v"}
    assert np.array_equal(idx, full.argmax(axis=-1))
    np.testing.assert_allclose(best, full.max(axis=-1), rtol=1e-4, atol=1e-6)


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    from ocrmill.engine import Engine

    cache = tmp_path_factory.mktemp("cache")

    # At f32: the two recognizers are different files, each timed on its own, and one at
    # int8 or bf16 beside one at f32 would read the same text at other scores.
    backend = BackendConfig(cache_dir=cache, openvino_precision="f32")

    def make(charset: str) -> Engine:
        return Engine(Config(models=ModelPaths(charset=charset), backend=backend))

    return make("auto"), make("all")


def test_auto_is_the_latin_head_with_the_whole_head_beside_it(engines):
    auto, whole = engines
    assert auto.files.rec_head is not None and auto.files.rec_head.is_file()
    assert "auto" in auto.files.rec.name
    assert auto.vocabulary == whole.vocabulary  # decoded in the whole head's classes
    text = "Invoice 2024-117: total 42.50 EUR"
    image = np.asarray(render_text(text, size=36))
    assert auto.read(image).text == whole.read(image).text == text


def test_auto_reads_every_line_like_all_when_every_line_is_doubtful(engines):
    import dataclasses

    from ocrmill.config import RecOptions

    auto, whole = engines
    crops = [
        np.asarray(render_text(t, size=s))
        for t, s in [("Total 12.50", 30), ("grüße aus Köln", 40), ("x", 24), ("#42/7 ok", 28)]
    ]
    opts = dataclasses.replace(RecOptions(), latin_first_below=1.01)
    got = auto._read_crops(crops, opts)
    expected = whole._read_crops(crops, opts)
    assert [r.text for r in got] == [r.text for r in expected]
    np.testing.assert_allclose([r.score for r in got], [r.score for r in expected], atol=1e-4)


SROIE_000 = Path(__file__).resolve().parents[2] / "shared/data/docs/sroie/sroie_train_000.jpg"


@pytest.mark.skipif(not SROIE_000.is_file(), reason="needs ../shared/data (SROIE receipt 000)")
def test_auto_reads_the_chinese_lines_of_a_receipt(engines):
    auto, whole = engines
    image = np.asarray(Image.open(SROIE_000).convert("RGB"))
    text = auto.read(image).text
    assert "谢谢" in text and "谢谢" in whole.read(image).text  # read by the whole head
    assert "TAN WOON YANN" in text.upper()


def test_charset_auto_takes_its_vocabulary_from_the_whole_head_alone(tmp_path, monkeypatch):
    """The Latin recognizer's file is not parsed for its character list (the whole head's
    metadata names every class), and the two must agree on the Latin classes."""
    from ocrmill import engine as engine_module
    from ocrmill.pipeline.latin_first import LatinFirst

    real_create = engine_module.create_backend
    asked: list[str] = []

    def create(path, config, role="det"):
        backend = real_create(path, config, role)
        if role == "rec":
            real_metadata = backend.metadata

            def metadata():
                asked.append(role)
                return real_metadata()

            backend.metadata = metadata
        return backend

    monkeypatch.setattr(engine_module, "create_backend", create)
    config = Config(backend=BackendConfig(name="onnxruntime", cache_dir=tmp_path))
    engine = engine_module.Engine(config)
    assert engine._latin_first is not None and asked == []
    assert engine.vocabulary == engine._latin_first.vocabulary

    real_from = LatinFirst.from_metadata

    def one_class_short(whole_head, metadata):
        found = real_from(whole_head, metadata)
        return LatinFirst(whole_head, found.keep[:-1], found.vocabulary)

    monkeypatch.setattr(LatinFirst, "from_metadata", staticmethod(one_class_short))
    with pytest.raises(ModelError, match="classes"):
        engine_module.Engine(config)
