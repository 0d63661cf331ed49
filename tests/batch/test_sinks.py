"""Tests of the JSONL sink and resume support (ocrmill.batch.sinks)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocrmill.batch.sinks import JsonlSink, read_done_keys
from ocrmill.errors import CorruptImageError
from ocrmill.results import PageFailure, PageResult, Result, TextLine, result_from_json

BOX = ((0.0, 0.0), (10.0, 0.0), (10.0, 5.0), (0.0, 5.0))


def ok(name: str, page: int | None = None, text: str = "hello") -> PageResult:
    return PageResult(input=name, width=10, height=5, lines=(TextLine(text, 0.9, BOX),), page=page)


def failed(name: str, page: int | None = None) -> PageFailure:
    return PageFailure.from_error(name, CorruptImageError(f"{name}: broken"), page)


def test_round_trip_of_keys(tmp_path: Path) -> None:
    out = tmp_path / "nested" / "dir" / "out.jsonl"
    results: list[Result] = [ok("a.png"), failed("b.png"), ok("doc.pdf", 0), failed("doc.pdf", 1)]
    with JsonlSink(out, append=False) as sink:
        for result in results:
            sink.write(result)
    assert sink.written == 4
    lines = out.read_text(encoding="utf-8").splitlines()
    assert [result_from_json(line) for line in lines] == results
    keys, unreadable = read_done_keys(out)
    assert unreadable == 0
    assert keys == {
        ("a.png", None),
        ("b.png", None),
        ("doc.pdf", 0),
        ("doc.pdf", 1),
    }


def test_each_record_is_flushed_at_once(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    sink = JsonlSink(out, append=False)
    sink.write(ok("a.png", text="ünïcode 文字"))
    assert out.read_bytes().endswith(b"\n")
    assert "文字" in out.read_text(encoding="utf-8")
    sink.close()
    sink.close()  # idempotent
    with pytest.raises(ValueError):
        sink.write(ok("b.png"))


def test_missing_file_has_no_keys(tmp_path: Path) -> None:
    assert read_done_keys(tmp_path / "none.jsonl") == (set(), 0)


def test_torn_last_line_ignored_and_cut_on_append(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with JsonlSink(out, append=False) as sink:
        sink.write(ok("a.png"))
        sink.write(failed("b.png"))
    torn = '{"schema":1,"input":"c.png","page":null,"ok":tr'
    with out.open("a", encoding="utf-8") as fh:
        fh.write(torn)
    keys, unreadable = read_done_keys(out)
    assert keys == {("a.png", None), ("b.png", None)}
    assert unreadable == 1
    with JsonlSink(out, append=True) as sink:
        assert sink.torn_bytes == len(torn)
        sink.write(ok("c.png"))
    lines = out.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["input"] for line in lines] == ["a.png", "b.png", "c.png"]
    assert read_done_keys(out) == ({("a.png", None), ("b.png", None), ("c.png", None)}, 0)


def test_complete_record_without_newline_is_not_done(tmp_path: Path) -> None:
    # Killed between the record and its newline: cut off and read again, never half-counted.
    out = tmp_path / "out.jsonl"
    out.write_text(json.dumps(ok("a.png").to_dict()), encoding="utf-8")
    assert read_done_keys(out) == (set(), 1)
    with JsonlSink(out, append=True) as sink:
        assert sink.torn_bytes > 0
    assert out.read_bytes() == b""


def test_invalid_lines_counted(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    good = json.dumps(ok("a.png").to_dict())
    newer = json.dumps({**ok("z.png").to_dict(), "schema": 99})
    out.write_bytes(
        b"\n".join([good.encode(), b"", b"not json", b"[1, 2]", b"\xff\xfe", newer.encode()])
        + b"\n"
    )
    assert read_done_keys(out) == ({("a.png", None)}, 4)


def test_append_keeps_clean_file(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with JsonlSink(out, append=False) as sink:
        sink.write(ok("a.png"))
    before = out.read_bytes()
    with JsonlSink(out, append=True) as sink:
        assert sink.torn_bytes == 0
        sink.write(ok("b.png"))
    assert out.read_bytes().startswith(before)
    assert read_done_keys(out).keys == {("a.png", None), ("b.png", None)}


def test_append_false_truncates(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text("old stuff\nmore", encoding="utf-8")
    with JsonlSink(out, append=False) as sink:
        sink.write(failed("x.png", 2))
    assert read_done_keys(out) == ({("x.png", 2)}, 0)
    assert len(out.read_text(encoding="utf-8").splitlines()) == 1


def test_append_creates_missing_file(tmp_path: Path) -> None:
    out = tmp_path / "new" / "out.jsonl"
    with JsonlSink(out, append=True) as sink:
        sink.write(ok("a.png"))
    assert read_done_keys(out) == ({("a.png", None)}, 0)


def test_undecodable_file_name_round_trips(tmp_path: Path) -> None:
    name = "scan-\udcff.png"  # a non-UTF-8 byte in a file name, as os.fsdecode gives it
    out = tmp_path / "out.jsonl"
    with JsonlSink(out, append=False) as sink:
        sink.write(failed(name))
    out.read_bytes().decode("utf-8")  # the file stays valid UTF-8
    assert read_done_keys(out) == ({(name, None)}, 0)


def test_dash_writes_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    with JsonlSink("-", append=True) as sink:
        sink.write(ok("a.png", 0))
        sink.write(failed("b.png"))
    assert sink.written == 2
    lines = capsys.readouterr().out.splitlines()
    assert [result_from_json(line) for line in lines] == [ok("a.png", 0), failed("b.png")]


def test_long_torn_line_cut_back_to_last_newline(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with JsonlSink(out, append=False) as sink:
        sink.write(ok("a.png"))
    clean = out.read_bytes()
    with out.open("ab") as fh:
        fh.write(b'{"schema":1,"input":"' + b"x" * 200_000)
    with JsonlSink(out, append=True) as sink:
        assert sink.torn_bytes == 200_000 + 21
    assert out.read_bytes() == clean
