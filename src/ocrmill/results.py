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


@dataclass(frozen=True)
class TextLine:
    """One detected line of text: its string, confidence in [0, 1] and quadrilateral.

    ``box`` holds four ``(x, y)`` points in pixels of the decoded input image, clockwise
    from the top-left corner of the text.
    """

    text: str
    score: float
    box: Quad

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "score": round(float(self.score), 5),
            "box": [[round(float(x), 1), round(float(y), 1)] for x, y in self.box],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TextLine:
        pts = data["box"]
        if len(pts) != 4:
            raise ValueError(f"a text line box needs 4 points, got {len(pts)}")
        box = tuple((float(x), float(y)) for x, y in pts)
        return cls(text=str(data["text"]), score=float(data["score"]), box=box)  # type: ignore[arg-type]


@dataclass(frozen=True)
class PageResult:
    """The text read from one image (or one page of a PDF / TIFF)."""

    input: str
    width: int
    height: int
    lines: tuple[TextLine, ...]
    timings_ms: dict[str, float] = field(default_factory=dict)
    page: int | None = None

    ok = True

    @property
    def key(self) -> RecordKey:
        return (self.input, self.page)

    @property
    def text(self) -> str:
        """All lines in reading order, joined by newlines."""
        return "\n".join(line.text for line in self.lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "input": self.input,
            "page": self.page,
            "ok": True,
            "width": self.width,
            "height": self.height,
            "lines": [line.to_dict() for line in self.lines],
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
