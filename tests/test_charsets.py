"""Recognizers restricted to a charset: which classes stay, what the rewritten head
computes, and an engine that reads with it."""

from __future__ import annotations

import numpy as np
import pytest

from ocrmill.charsets import class_subset
from ocrmill.config import BackendConfig, Config, ModelPaths
from ocrmill.errors import ConfigError, ModelError
from ocrmill.models import SHIPPED_REC, resolve_models, restrict_recognizer, shipped_model_dir
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
