"""Presets and OCRMILL_* environment overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocrmill.config import PRESETS, load_config, preset, with_det_limit
from ocrmill.errors import ConfigError


def test_presets_differ_and_unknown_is_refused():
    opts = {name: preset(name) for name in PRESETS}
    assert len({repr(o) for o in opts.values()}) == len(PRESETS)
    with pytest.raises(ConfigError, match="unknown preset"):
        preset("turbo")


def test_env_overrides_nested_fields_with_types():
    cfg = load_config(
        env={
            "OCRMILL_PRESET": "fast",
            "OCRMILL_READ_DET_LIMIT_SIDE_LEN": "1_280",
            "OCRMILL_READ_CLS_ENABLED": "yes",
            "OCRMILL_READ_DET_LIMIT_TYPE": "min",
            "OCRMILL_DECODE_MAX_PIXELS": "1000",
            "OCRMILL_MODELS_REC": "/m/rec.onnx",
        }
    )
    assert cfg.read.det.limit_side_len == 1280
    assert cfg.read.det.limit_type == "min"
    assert cfg.read.cls.enabled is True  # fast disables it; the environment wins
    assert cfg.decode.max_pixels == 1000
    assert cfg.models.rec == Path("/m/rec.onnx")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OCRMILL_READ_DET_LIMIT_SIDE_LEN", "big"),
        ("OCRMILL_READ_CLS_ENABLED", "maybe"),
        ("OCRMILL_READ_DET_LIMIT_TYPE", "middle"),
    ],
)
def test_bad_env_values_name_the_variable(name, value):
    with pytest.raises(ConfigError, match=name):
        load_config(env={name: value})


def test_det_limit_validation():
    assert with_det_limit(preset("balanced"), 640).det.limit_side_len == 640
    with pytest.raises(ConfigError):
        with_det_limit(preset("balanced"), 4)


def test_table_finding_is_set_by_flag_query_and_environment():
    from ocrmill.cli.options import config_from_args
    from ocrmill.config import ReadOverrides
    from ocrmill.server.schemas import ReadQuery

    assert preset("balanced").layout.tables == "auto"
    assert ReadOverrides(tables="off").apply(preset("balanced")).layout.tables == "off"
    assert ReadQuery(tables="off").to_options(preset("balanced")).layout.tables == "off"
    with pytest.raises(ConfigError, match="tables must be auto or off"):
        ReadOverrides(tables="sometimes").apply(preset("balanced"))
    assert load_config(env={"OCRMILL_READ_LAYOUT_TABLES": "off"}).read.layout.tables == "off"
    with pytest.raises(ConfigError, match="OCRMILL_READ_LAYOUT_TABLES"):
        load_config(env={"OCRMILL_READ_LAYOUT_TABLES": "sometimes"})
    args = _parse(["--tables", "off", "--layout-model", "/m/layout.onnx", "x.png"])
    config = config_from_args(args)
    assert config.read.layout.tables == "off" and config.models.layout == Path("/m/layout.onnx")


def _parse(argv: list[str]):
    from ocrmill.cli import build_parser

    return build_parser().parse_args(["read", *argv])
