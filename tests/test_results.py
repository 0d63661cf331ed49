"""Result records: JSON round-trip and the stable field names."""

from __future__ import annotations

import json

import pytest

from ocrmill.errors import ImageTooLargeError
from ocrmill.results import (
    SCHEMA_VERSION,
    PageFailure,
    PageResult,
    TextLine,
    result_from_dict,
    result_from_json,
    result_to_json,
)


def sample_page() -> PageResult:
    lines = (
        TextLine("Total 12,50 €", 0.97, ((1.0, 2.0), (50.5, 2.0), (50.5, 20.0), (1.0, 20.0))),
        TextLine("東京", 0.81, ((3.0, 30.0), (40.0, 30.0), (40.0, 50.0), (3.0, 50.0))),
    )
    return PageResult("a/b.png", 640, 480, lines, {"decode": 1.5, "total": 9.25}, page=2)


def test_page_json_has_the_documented_fields():
    data = json.loads(result_to_json(sample_page()))
    assert list(data) == [
        "schema",
        "input",
        "page",
        "ok",
        "width",
        "height",
        "lines",
        "text",
        "timings_ms",
    ]
    assert data["schema"] == SCHEMA_VERSION and data["ok"] is True
    assert data["text"] == "Total 12,50 €\n東京"
    assert data["lines"][0] == {
        "text": "Total 12,50 €",
        "score": 0.97,
        "box": [[1.0, 2.0], [50.5, 2.0], [50.5, 20.0], [1.0, 20.0]],
    }
    assert "東京" in result_to_json(sample_page())  # UTF-8 kept, not \\u-escaped


def test_page_round_trip():
    page = sample_page()
    assert result_from_json(result_to_json(page)) == page


def test_failure_round_trip_and_error_type():
    fail = PageFailure.from_error("huge.png", ImageTooLargeError("huge.png: 9 MP over the cap"))
    data = fail.to_dict()
    assert data == {
        "schema": 1,
        "input": "huge.png",
        "page": None,
        "ok": False,
        "error": {"code": "image_too_large", "message": "huge.png: 9 MP over the cap"},
    }
    back = result_from_dict(data)
    assert back == fail
    assert isinstance(back.to_error(), ImageTooLargeError)


def test_newer_schema_is_refused():
    data = sample_page().to_dict()
    data["schema"] = SCHEMA_VERSION + 1
    with pytest.raises(ValueError, match="schema"):
        result_from_dict(data)
