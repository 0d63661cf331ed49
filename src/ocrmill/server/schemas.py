"""Request options and response bodies of the HTTP API (pydantic, for validation and /docs)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from ocrmill.batch.files import EXTENSIONS
from ocrmill.config import PRESETS, ReadOptions, ReadOverrides

PresetName = Literal["fast", "balanced", "accurate"]
assert set(PRESETS) == {"fast", "balanced", "accurate"}


class ReadQuery(BaseModel):
    """Per-call read options (query parameters); unset ones keep the server's settings."""

    preset: PresetName | None = Field(None, description="speed/accuracy preset")
    det_limit: int | None = Field(
        None, ge=32, le=16384, description="detector side limit in pixels (640 ... 1280)"
    )
    det_limit_type: Literal["max", "min"] | None = Field(
        None, description="'max' shrinks the long side to det_limit; 'min' enlarges the short"
    )
    cls: bool | None = Field(None, description="run the 0/180 degree line classifier")
    layout: Literal["auto", "lines"] | None = Field(
        None, description="auto: blocks and columns in reading order; lines: plain row order"
    )
    rotation: Literal["auto", "off"] | None = Field(
        None, description="auto: read pages turned 90/180/270 degrees upright; off: as they stand"
    )
    tables: Literal["auto", "off"] | None = Field(
        None,
        description="auto: read the tables a layout model finds (when installed) row by row; "
        "off: layout from the lines alone",
    )

    def overrides(self) -> ReadOverrides:
        return ReadOverrides(
            preset=self.preset,
            det_limit=self.det_limit,
            det_limit_type=self.det_limit_type,
            cls=self.cls,
            layout=self.layout,
            rotation=self.rotation,
            tables=self.tables,
        )

    def to_options(self, default: ReadOptions) -> ReadOptions | None:
        """The options to pass with each task; None: the workers' configured defaults."""
        overrides = self.overrides()
        return None if overrides.is_empty() else overrides.apply(default)

    def stored(self) -> dict[str, Any]:
        """The options a job keeps in the store (re-applied when it resumes)."""
        return self.model_dump(exclude_none=True)


_FORMATS = "|".join(EXTENSIONS)  # pdf|hocr|alto|text


class JobQuery(ReadQuery):
    """A job's options: read options, and the documents to make per uploaded file."""

    outputs: str | None = Field(
        None,
        description="comma-separated documents to make per uploaded file, downloadable from "
        "the job when done: pdf (searchable PDF), hocr, alto, text",
        pattern=rf"^\s*({_FORMATS})\s*(,\s*({_FORMATS})\s*)*$",
    )

    def formats(self) -> tuple[str, ...]:
        """The document formats asked for, each once, in the order given."""
        if not self.outputs:
            return ()
        return tuple(dict.fromkeys(f.strip() for f in self.outputs.split(",") if f.strip()))


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


class WordBody(BaseModel):
    text: str
    score: float
    box: list[list[float]] = Field(description="4 points [x, y], clockwise from top-left")


class TextLineBody(BaseModel):
    text: str
    score: float
    box: list[list[float]] = Field(description="4 points [x, y], clockwise from top-left")
    words: list[WordBody] = Field(default_factory=list)


class TextBlockBody(BaseModel):
    box: list[list[float]]
    lines: list[int] = Field(description="indices into the record's lines, in reading order")


class ResultBody(BaseModel):
    """One result record (the core schema of ``ocrmill.results``)."""

    model_config = {"extra": "allow"}

    schema_: int = Field(alias="schema")
    input: str
    page: int | None
    ok: bool
    width: int | None = None
    height: int | None = None
    rotation: int | None = Field(
        None, description="how far the content is turned counter-clockwise (0/90/180/270)"
    )
    lines: list[TextLineBody] | None = None
    blocks: list[TextBlockBody] | None = None
    text: str | None = None
    timings_ms: dict[str, float] | None = None
    error: ErrorDetail | None = None


class JobProgress(BaseModel):
    done: int
    total: int
    failed: int


class JobCreated(BaseModel):
    id: str
    status: str
    progress: JobProgress
    links: dict[str, str]


class JobItemResult(BaseModel):
    index: int = Field(description="position of the file (or PDF page) in the upload")
    seq: int = Field(description="completion order within the job, from 1")
    file: str
    file_index: int = Field(description="position of the file in the upload")
    page: int | None
    result: ResultBody


class JobDocument(BaseModel):
    file: str
    file_index: int
    format: str
    url: str


class JobBody(BaseModel):
    id: str
    status: Literal["queued", "running", "done", "failed"]
    created_at: float
    finished_at: float | None
    expires_at: float | None
    progress: JobProgress
    options: dict[str, Any]
    error: str | None
    results: list[JobItemResult]
    documents: list[JobDocument] = Field(
        default_factory=list, description="documents made so far (job option `outputs`)"
    )
    next_since: int = Field(description="pass as ?since= to get only newer results")


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    ready: bool
    workers: int
    workers_ready: int
    error: str | None = None
