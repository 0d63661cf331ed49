"""Result records: frozen dataclasses with a stable, versioned JSON form.

Every input produces exactly one record: a :class:`PageResult` (``ok: true``) or a
:class:`PageFailure` (``ok: false``). Later layers (batch runner, server, Ray stage) and
users' tools depend on these field names; bump :data:`SCHEMA_VERSION` when they change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Union

from ocrmill.errors import OcrmillError, as_ocrmill_error, error_from_code

SCHEMA_VERSION = 1

RecordKey = tuple[str, Union[int, None]]  # noqa: UP007 - a runtime alias on Python 3.10
"""A record's identity in an output: its ``input`` name and 0-based ``page`` (or None)."""

Point = tuple[float, float]
Quad = tuple[Point, Point, Point, Point]


def _point(x: float, y: float) -> Point:
    return (round(float(x), 1), round(float(y), 1))


def make_quad(points: Any) -> Quad:
    """Four ``(x, y)`` points at the precision records keep (0.1 pixel), so that a record
    built from them survives the JSON round trip unchanged."""
    pts = [_point(x, y) for x, y in points]
    if len(pts) != 4:
        raise ValueError(f"a box needs 4 points, got {len(pts)}")
    return (pts[0], pts[1], pts[2], pts[3])


def make_score(score: float) -> float:
    """A confidence at the precision records keep (5 decimals)."""
    return round(float(score), 5)


def _quad_list(box: Quad) -> list[list[float]]:
    return [[round(float(x), 1), round(float(y), 1)] for x, y in box]


@dataclass(frozen=True)
class Word:
    """One word of a line: its text, confidence and box (4 points in input pixels,
    clockwise from the word's top-left as read). CJK characters are words of their own."""

    text: str
    score: float
    box: Quad

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "score": make_score(self.score), "box": _quad_list(self.box)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Word:
        return cls(text=str(data["text"]), score=float(data["score"]), box=make_quad(data["box"]))


@dataclass(frozen=True)
class TextLine:
    """One detected line of text: its string, confidence in [0, 1], quadrilateral and words.

    ``box`` holds four ``(x, y)`` points in pixels of the decoded input image, clockwise
    from the top-left corner of the text (as read: on a turned page or an upside-down line
    that is not the top-left corner of the image). ``words`` is empty in records written
    before words existed.
    """

    text: str
    score: float
    box: Quad
    words: tuple[Word, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "score": make_score(self.score),
            "box": _quad_list(self.box),
            "words": [w.to_dict() for w in self.words],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TextLine:
        return cls(
            text=str(data["text"]),
            score=float(data["score"]),
            box=make_quad(data["box"]),
            words=tuple(Word.from_dict(w) for w in data.get("words", ())),
        )


@dataclass(frozen=True)
class TextBlock:
    """A block of lines read together (a paragraph, a column's run of text, a heading, a
    footer): its box (4 points in input pixels, clockwise from its top-left as read) and
    the indices of its lines in ``PageResult.lines``, in reading order."""

    box: Quad
    lines: tuple[int, ...]
    # title, heading, paragraph, list_item, caption, header or footer; None where the page
    # does not show it plainly (and in records written before kinds existed).
    kind: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"box": _quad_list(self.box), "lines": list(self.lines), "kind": self.kind}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TextBlock:
        kind = data.get("kind")
        return cls(
            box=make_quad(data["box"]),
            lines=tuple(int(i) for i in data["lines"]),
            kind=None if kind is None else str(kind),
        )


@dataclass(frozen=True)
class PageResult:
    """The text read from one image (or one page of a PDF / TIFF)."""

    input: str
    width: int
    height: int
    lines: tuple[TextLine, ...]
    timings_ms: dict[str, float] = field(default_factory=dict)
    page: int | None = None
    # How far the content is turned counter-clockwise from upright (0, 90, 180, 270).
    rotation: int = 0
    # Blocks in reading order; empty in the ``lines`` layout mode and in older records.
    blocks: tuple[TextBlock, ...] = ()

    ok = True

    @property
    def key(self) -> RecordKey:
        return (self.input, self.page)

    @property
    def text(self) -> str:
        """All lines in reading order, one per line, with a blank line between blocks."""
        if not self.blocks:
            return "\n".join(line.text for line in self.lines)
        return "\n\n".join(
            "\n".join(self.lines[i].text for i in block.lines) for block in self.blocks
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "input": self.input,
            "page": self.page,
            "ok": True,
            "width": self.width,
            "height": self.height,
            "rotation": self.rotation,
            "lines": [line.to_dict() for line in self.lines],
            "blocks": [block.to_dict() for block in self.blocks],
            "text": self.text,
            "timings_ms": {k: round(float(v), 2) for k, v in self.timings_ms.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PageResult:
        return cls(
            input=str(data["input"]),
            page=data.get("page"),
            width=int(data["width"]),
            height=int(data["height"]),
            lines=tuple(TextLine.from_dict(d) for d in data["lines"]),
            timings_ms={str(k): float(v) for k, v in data.get("timings_ms", {}).items()},
            rotation=int(data.get("rotation", 0)),
            blocks=tuple(TextBlock.from_dict(b) for b in data.get("blocks", ())),
        )


@dataclass(frozen=True)
class PageFailure:
    """An input that could not be read, with the reason as a stable code and a message."""

    input: str
    code: str
    message: str
    page: int | None = None

    ok = False

    @property
    def key(self) -> RecordKey:
        return (self.input, self.page)

    @classmethod
    def from_error(cls, input: str, error: OcrmillError, page: int | None = None) -> PageFailure:
        return cls(input=input, code=error.code, message=error.message, page=page)

    @classmethod
    def from_exception(
        cls, input: str, exc: BaseException, page: int | None = None, context: str = ""
    ) -> PageFailure:
        """The record of any exception: an :class:`OcrmillError` keeps its code and message;
        anything else becomes ``internal`` naming the exception (see ``as_ocrmill_error``)."""
        return cls.from_error(input, as_ocrmill_error(exc, context), page)

    def to_error(self) -> OcrmillError:
        return error_from_code(self.code, self.message)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "input": self.input,
            "page": self.page,
            "ok": False,
            "error": {"code": self.code, "message": self.message},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PageFailure:
        err = data["error"]
        return cls(
            input=str(data["input"]),
            page=data.get("page"),
            code=str(err["code"]),
            message=str(err["message"]),
        )


Result = Union[PageResult, PageFailure]  # noqa: UP007 - a runtime alias on Python 3.10


def result_from_dict(data: dict[str, Any]) -> Result:
    """Parse either record kind; rejects records from a newer schema."""
    schema = data.get("schema")
    if schema != SCHEMA_VERSION:
        raise ValueError(
            f"unsupported result schema {schema!r} (this ocrmill reads {SCHEMA_VERSION})"
        )
    if data.get("ok"):
        return PageResult.from_dict(data)
    return PageFailure.from_dict(data)


def result_to_json(result: Result) -> str:
    """One compact JSON line (UTF-8 characters kept as they are)."""
    return json.dumps(result.to_dict(), ensure_ascii=False, separators=(",", ":"))


def result_from_json(line: str) -> Result:
    return result_from_dict(json.loads(line))
