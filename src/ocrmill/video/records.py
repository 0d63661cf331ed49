"""The video filter's records: frozen values for a video (its frames, its score) and a sample,
and the JSON line each video is written as (the format of the README's "Video: text-area
filter": keys in this order, ratios rounded to 6 decimals, times, fps and durations to 3).
Built in the parent by :mod:`ocrmill.video.filter`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ocrmill.results import SCHEMA_VERSION, TextLine
from ocrmill.video.sampling import Sampling

RECORD_KIND = "video"  # the "kind" of every video record (page records have none)


@dataclass(frozen=True)
class VideoInfo:
    """What a video's container and its decoded frames say about it."""

    width: int  # of a sampled frame as displayed (turned by its rotation)
    height: int
    fps: float  # rounded to 3 decimals
    frame_count: int
    duration: float  # seconds, rounded to 3 decimals
    timeline: str  # where frame count and duration come from ("metadata", or a packet scan)
    decoder: str  # how frames were found ("seek", or decoding from the start)
    frames_decoded: int  # frames decoded to reach the sampled ones

    def to_dict(self) -> dict[str, Any]:
        return {
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
            "frame_count": self.frame_count,
            "duration": self.duration,
            "timeline": self.timeline,
            "decoder": self.decoder,
            "frames_decoded": self.frames_decoded,
        }


@dataclass(frozen=True)
class FrameScore:
    """One sampled frame: where it is, its text-area ratio and what was read in it."""

    index: int  # nominal frame index
    time: float  # the decoded frame's own time in seconds, rounded to 3 decimals
    ratio: float  # text-area ratio, rounded to 6 decimals
    text: str
    lines: tuple[TextLine, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "time": self.time,
            "ratio": self.ratio,
            "text": self.text,
            "lines": [line.to_dict() for line in self.lines],
        }


@dataclass(frozen=True)
class VideoScore:
    """A video's score: the mean of its frames' ratios (rounded to 6 decimals), and the
    smallest and largest of them."""

    mean: float
    min: float
    max: float

    def to_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "min": self.min, "max": self.max}


@dataclass(frozen=True)
class VideoError:
    """Why a video has no score: an error code (see the README) and a message naming it."""

    code: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class VideoRecord:
    """One video of a sample: its frames and score (``ok``), or the ``error`` it failed with.

    ``in_range``: ``min_ratio <= score.mean <= max_ratio`` (never for a failed video);
    ``keep``: its sample's decision. A failed video has no ``info``, ``sampling``,
    ``frames`` or ``score``.
    """

    input: str
    sample: int
    in_range: bool
    keep: bool
    info: VideoInfo | None = None
    sampling: Sampling | None = None
    frames: tuple[FrameScore, ...] = ()
    score: VideoScore | None = None
    error: VideoError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready data, keys in the documented order."""
        out: dict[str, Any] = {
            "schema": SCHEMA_VERSION,
            "kind": RECORD_KIND,
            "input": self.input,
            "sample": self.sample,
            "ok": self.ok,
        }
        if self.error is not None:
            out["error"] = self.error.to_dict()
        else:
            if self.info is not None:
                out.update(self.info.to_dict())
            if self.sampling is not None:
                out["sampling"] = self.sampling.to_dict()
            out["frames"] = [frame.to_dict() for frame in self.frames]
            if self.score is not None:
                out["score"] = self.score.to_dict()
        out["in_range"] = self.in_range
        out["keep"] = self.keep
        return out

    def to_json(self) -> str:
        """The record as one JSON line (no newline), as ``ocrmill video-filter`` writes it."""
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class SampleResult:
    """A sample's decision (``keep``) and the records of its videos, in input order."""

    sample: int
    keep: bool
    videos: tuple[VideoRecord, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "sample": self.sample,
            "keep": self.keep,
            "videos": [video.to_dict() for video in self.videos],
        }
