"""Result records: JSON round-trip and the stable field names."""

from __future__ import annotations

import json

import pytest

from ocrmill.errors import ImageTooLargeError
from ocrmill.results import (
    SCHEMA_VERSION,
    PageFailure,
    PageResult,
    TextBlock,
    TextLine,
    Word,
    make_quad,
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


def sample_layout_page() -> PageResult:
    """A page with words, two blocks and a rotation: every new field set."""
    words = (
        Word("Total", 0.99, ((1.0, 2.0), (20.0, 2.0), (20.0, 20.0), (1.0, 20.0))),
        Word("12,50", 0.95123, ((25.0, 2.0), (45.0, 2.0), (45.0, 20.0), (25.0, 20.0))),
    )
    lines = (
        TextLine("Total 12,50", 0.97, make_quad([(1, 2), (50.5, 2), (50.5, 20), (1, 20)]), words),
        TextLine("東京", 0.81, ((3.0, 30.0), (40.0, 30.0), (40.0, 50.0), (3.0, 50.0))),
        TextLine("footer", 0.9, ((3.0, 90.0), (40.0, 90.0), (40.0, 99.0), (3.0, 99.0))),
    )
    blocks = (
        TextBlock(((1.0, 2.0), (50.5, 2.0), (50.5, 50.0), (1.0, 50.0)), (0, 1)),
        TextBlock(((3.0, 90.0), (40.0, 90.0), (40.0, 99.0), (3.0, 99.0)), (2,), "footer"),
    )
    return PageResult("c.png", 100, 120, lines, {"layout": 0.5}, rotation=90, blocks=blocks)


def test_page_json_has_the_documented_fields():
    data = json.loads(result_to_json(sample_page()))
    assert list(data) == [
        "schema",
        "input",
        "page",
        "ok",
        "width",
        "height",
        "rotation",
        "lines",
        "blocks",
        "text",
        "timings_ms",
    ]
    assert data["schema"] == SCHEMA_VERSION and data["ok"] is True
    assert data["text"] == "Total 12,50 €\n東京"
    assert data["lines"][0] == {
        "text": "Total 12,50 €",
        "score": 0.97,
        "box": [[1.0, 2.0], [50.5, 2.0], [50.5, 20.0], [1.0, 20.0]],
        "words": [],
    }
    assert data["rotation"] == 0 and data["blocks"] == []
    assert "東京" in result_to_json(sample_page())  # UTF-8 kept, not \\u-escaped


def test_page_round_trip():
    page = sample_page()
    assert result_from_json(result_to_json(page)) == page


def test_layout_fields_round_trip_and_text_has_blank_lines_between_blocks():
    page = sample_layout_page()
    data = page.to_dict()
    assert data["rotation"] == 90
    assert data["blocks"] == [
        {
            "box": [[1.0, 2.0], [50.5, 2.0], [50.5, 50.0], [1.0, 50.0]],
            "lines": [0, 1],
            "kind": None,
        },
        {
            "box": [[3.0, 90.0], [40.0, 90.0], [40.0, 99.0], [3.0, 99.0]],
            "lines": [2],
            "kind": "footer",
        },
    ]
    assert data["lines"][0]["words"][1] == {
        "text": "12,50",
        "score": 0.95123,
        "box": [[25.0, 2.0], [45.0, 2.0], [45.0, 20.0], [25.0, 20.0]],
    }
    assert data["text"] == "Total 12,50\n東京\n\nfooter"
    assert result_from_dict(data) == page
    assert result_from_json(result_to_json(page)) == page


def test_records_written_before_block_kinds_read_with_none():
    data = sample_layout_page().to_dict()
    for block in data["blocks"]:
        del block["kind"]
    assert [block.kind for block in result_from_dict(data).blocks] == [None, None]


def test_record_without_layout_fields_still_reads():
    """Records written before words, blocks and rotation existed."""
    data = sample_page().to_dict()
    for key in ("rotation", "blocks"):
        del data[key]
    for line in data["lines"]:
        del line["words"]
    page = result_from_dict(data)
    assert page.rotation == 0 and page.blocks == () and page.lines[0].words == ()
    assert page.text == "Total 12,50 €\n東京"


def test_make_quad_keeps_the_record_precision():
    quad = make_quad([(1.04, 2.06), (3, 4), (5.55, 6), (7, 8.25)])
    assert TextLine.from_dict(TextLine("a", 0.5, quad).to_dict()).box == quad
    with pytest.raises(ValueError, match="4 points"):
        make_quad([(0, 0), (1, 1)])


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
