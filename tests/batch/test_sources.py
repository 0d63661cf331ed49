"""Tests of lazy input enumeration into tasks (ocrmill.batch.sources)."""

from __future__ import annotations

import io
import itertools
import os
from pathlib import Path
from typing import TextIO, cast

import numpy as np
import pypdfium2 as pdfium
import pytest
from PIL import Image

from ocrmill.batch.sources import iter_tasks
from ocrmill.tasks import Task


def touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def make_pdf(path: Path, pages: int) -> Path:
    doc = pdfium.PdfDocument.new()
    for _ in range(pages):
        doc.new_page(200, 300)
    doc.save(str(path))
    doc.close()
    return path


def names(items: list[Task]) -> list[str]:
    return [item.name for item in items]


def kind(task: Task) -> str:
    """``error`` for a task that only carries a failure, else the task's kind."""
    return "error" if task.failure is not None else task.kind


def code(task: Task) -> str | None:
    return task.failure.code if task.failure is not None else None


def test_directory_recursion(tmp_path: Path) -> None:
    root = tmp_path / "scans"
    touch(root / "a.png")
    touch(root / "UPPER.JPG")
    touch(root / "notes.txt")
    touch(root / "sub" / "b.tiff")
    touch(root / "sub" / "deeper" / "c.WebP")
    touch(root / ".hidden.png")
    touch(root / ".cache" / "d.png")
    touch(root / "sub" / "README")
    items = list(iter_tasks([str(root)]))
    assert all(kind(item) == "image" and item.page is None for item in items)
    assert sorted(names(items)) == sorted(
        os.path.join(str(root), p)
        for p in ["a.png", "UPPER.JPG", "sub/b.tiff", "sub/deeper/c.WebP"]
    )
    # A directory's own files come before its subdirectories' files.
    order = names(items)
    assert max(order.index(os.path.join(str(root), n)) for n in ["a.png", "UPPER.JPG"]) < min(
        order.index(os.path.join(str(root), p)) for p in ["sub/b.tiff", "sub/deeper/c.WebP"]
    )


def test_directory_symlink_loop_not_followed(tmp_path: Path) -> None:
    touch(tmp_path / "d" / "a.png")
    os.symlink(tmp_path / "d", tmp_path / "d" / "loop")
    assert names(list(iter_tasks([str(tmp_path / "d")]))) == [str(tmp_path / "d" / "a.png")]


def test_directory_walk_is_lazy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(3):
        touch(tmp_path / f"dir{i}" / "inner" / "x.png")
    touch(tmp_path / "top.png")
    calls: list[str] = []
    real_scandir = os.scandir

    def counting_scandir(path: str) -> object:
        calls.append(path)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", counting_scandir)
    gen = iter_tasks([str(tmp_path)])
    assert next(gen).name == str(tmp_path / "top.png")
    assert calls == [str(tmp_path)]  # no subdirectory listed yet
    assert len(list(gen)) == 3


def test_explicit_file_yielded_whatever_extension(tmp_path: Path) -> None:
    path = touch(tmp_path / "page.scan", b"not a pdf")
    assert list(iter_tasks([str(path)])) == [Task(0, str(path), str(path), "image", pages=1)]


def test_missing_path_is_an_error_item_and_others_go_on(tmp_path: Path) -> None:
    good = touch(tmp_path / "a.png")
    missing = str(tmp_path / "nope.png")
    items = list(iter_tasks([missing, str(good)]))
    assert [kind(item) for item in items] == ["error", "image"]
    assert items[0].name == missing
    assert code(items[0]) == "input_not_found"
    assert items[0].page is None


def test_glob(tmp_path: Path) -> None:
    touch(tmp_path / "a.png")
    touch(tmp_path / "b.txt")
    touch(tmp_path / "sub" / "c.jpg")
    (tmp_path / "dir.png").mkdir()
    flat = names(list(iter_tasks([str(tmp_path / "*")])))
    assert flat == [str(tmp_path / "a.png")]
    deep = names(list(iter_tasks([str(tmp_path / "**" / "*")])))
    assert sorted(deep) == [str(tmp_path / "a.png"), str(tmp_path / "sub" / "c.jpg")]


def test_glob_without_match_is_an_error_item(tmp_path: Path) -> None:
    touch(tmp_path / "b.txt")
    pattern = str(tmp_path / "*.png")
    (item,) = iter_tasks([pattern])
    assert kind(item) == "error"
    assert item.name == pattern
    assert code(item) == "input_not_found"
    assert f"no files match {pattern}" in item.failure.message


def test_existing_file_with_glob_characters_is_taken_literally(tmp_path: Path) -> None:
    path = touch(tmp_path / "scan[1].png")
    touch(tmp_path / "scan1.png")
    assert names(list(iter_tasks([str(path)]))) == [str(path)]


def test_list_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    touch(tmp_path / "a.png")
    touch(tmp_path / "dir" / "b.jpg")
    listing = tmp_path / "inputs.txt"
    listing.write_text("# scans\n\na.png\n   \n  # indented comment\ndir\nmissing.png\n")
    items = list(iter_tasks(["@inputs.txt"]))
    assert names(items) == ["a.png", os.path.join("dir", "b.jpg"), "missing.png"]
    assert [kind(item) for item in items] == ["image", "image", "error"]


def test_missing_list_file_is_one_error_item(tmp_path: Path) -> None:
    spec = "@" + str(tmp_path / "nope.txt")
    (item,) = iter_tasks([spec])
    assert kind(item) == "error"
    assert item.name == spec
    assert code(item) == "input_not_found"


def test_stdin(tmp_path: Path) -> None:
    a = touch(tmp_path / "a.png")
    b = touch(tmp_path / "b.bmp")
    stdin = io.StringIO(f"{a}\n\n# comment\n{b}\n")
    assert names(list(iter_tasks(["-"], stdin=stdin))) == [str(a), str(b)]


class EndlessStdin:
    """A stdin that never ends: the same path on every line."""

    def __init__(self, line: str) -> None:
        self.line = line
        self.lines_read = 0

    def __iter__(self) -> EndlessStdin:
        return self

    def __next__(self) -> str:
        self.lines_read += 1
        return self.line


def test_iter_inputs_is_lazy_on_an_endless_source(tmp_path: Path) -> None:
    path = touch(tmp_path / "a.png")
    stdin = EndlessStdin(f"{path}\n")
    gen = iter_tasks(["-"], stdin=cast(TextIO, stdin))
    items = list(itertools.islice(gen, 5))
    assert len(items) == 5 and all(item.name == str(path) for item in items)
    assert stdin.lines_read == 5


def test_list_file_is_read_lazily(tmp_path: Path) -> None:
    path = touch(tmp_path / "a.png")
    listing = tmp_path / "many.txt"
    with listing.open("w") as fh:
        fh.writelines(f"{path}\n" for _ in range(50_000))
    gen = iter_tasks(["@" + str(listing)])
    assert [item.name for item in itertools.islice(gen, 3)] == [str(path)] * 3


def test_pdf_expanded_to_pages(tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "doc.PDF", 3)
    items = list(iter_tasks([str(pdf)], pdf_dpi=150))
    assert items == [Task(0, str(pdf), str(pdf), "pdf", page, 150, pages=3) for page in range(3)]
    assert all(item.pdf_dpi == 150 for item in iter_tasks([str(pdf)], pdf_dpi=150))


def test_pdf_found_in_directory(tmp_path: Path) -> None:
    make_pdf(tmp_path / "doc.pdf", 2)
    touch(tmp_path / "a.png")
    items = list(iter_tasks([str(tmp_path)]))
    assert sorted((kind(item), item.page) for item in items) == [
        ("image", None),
        ("pdf", 0),
        ("pdf", 1),
    ]


def test_broken_pdf_is_one_error_item(tmp_path: Path) -> None:
    bad = touch(tmp_path / "bad.pdf", b"this is not a pdf at all")
    good = touch(tmp_path / "a.png")
    items = list(iter_tasks([str(bad), str(good)]))
    assert [kind(item) for item in items] == ["error", "image"]
    assert items[0].name == str(bad) and items[0].page is None
    assert code(items[0]) == "corrupt_image"


def test_pdf_without_extension_is_sniffed(tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "download", 2)
    items = list(iter_tasks([str(pdf)]))
    assert [(kind(item), item.page) for item in items] == [("pdf", 0), ("pdf", 1)]


def test_image_extension_is_not_sniffed(tmp_path: Path) -> None:
    # A PDF named .png is the decoder's business: enumeration trusts known image extensions.
    pdf = make_pdf(tmp_path / "odd.png", 2)
    assert [kind(item) for item in iter_tasks([str(pdf)])] == ["image"]


def test_pdf_without_pages_is_one_error_item(tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "empty.pdf", 0)
    (item,) = iter_tasks([str(pdf)])
    # PDFium refuses a document without pages; either way it is one error item.
    assert kind(item) == "error" and item.failure.code in ("corrupt_image", "empty_input")
    assert item.name == str(pdf) and item.page is None


def test_objects_become_tasks_named_by_kind_and_position(tmp_path: Path) -> None:
    png = touch(tmp_path / "a.png")
    array = np.zeros((8, 8, 3), np.uint8)
    ready = Task(7, b"ok:x", "mine")
    tasks = list(
        iter_tasks([b"\x89PNG...", str(png), array, Image.new("RGB", (4, 4)), ready, object()])
    )
    assert [t.name for t in tasks] == [
        "<bytes 0>",
        str(png),
        "<array 2>",
        "<array 3>",
        "mine",
        "<object 5>",
    ]
    assert tasks[0].source == b"\x89PNG..." and tasks[2].source.shape == (8, 8, 3)
    assert isinstance(tasks[3].source, np.ndarray) and tasks[3].source.shape == (4, 4, 3)
    assert tasks[4] is ready
    assert code(tasks[5]) == "input_error" and "not an image" in tasks[5].failure.message


def test_a_single_spec_string_is_one_input(tmp_path: Path) -> None:
    png = touch(tmp_path / "a.png")
    assert names(list(iter_tasks(str(png)))) == [str(png)]
    assert names(list(iter_tasks(png))) == [str(png)]
