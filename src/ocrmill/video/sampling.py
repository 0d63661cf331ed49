"""Which frames of a video to read: pure arithmetic on frame counts and rates (parent side).

Two ways to sample, both returning frame indices in ascending order without duplicates:

* ``frames=N`` (Data-Juicer's ``frame_sample_num`` semantics): 1 -> the middle frame;
  2 -> the first and the last frame; N > 2 -> the first, the last and N - 2 frames evenly
  spaced between them (indices rounded). A video with fewer frames than N yields every
  frame once.
* ``every=S``: one frame every S seconds from the first frame (times 0, S, 2S, ... while
  inside the video), each rounded to the nearest frame.

Indices are nominal (``index / fps`` seconds after the first frame); for variable frame
rate videos the frame actually read is the one at that time, reported with its own time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ocrmill.errors import ConfigError


@dataclass(frozen=True)
class Sampling:
    """How to pick frames: ``frames`` evenly spread, or one frame ``every`` seconds."""

    frames: int | None = 3
    every: float | None = None

    def __post_init__(self) -> None:
        if (self.frames is None) == (self.every is None):
            raise ConfigError("give exactly one of frames=N or every=S")
        if self.frames is not None and self.frames < 1:
            raise ConfigError(f"frames must be >= 1, got {self.frames}")
        if self.every is not None and not (math.isfinite(self.every) and self.every > 0):
            raise ConfigError(f"every must be a positive number of seconds, got {self.every}")

    def to_dict(self) -> dict[str, float | int]:
        return {"frames": self.frames} if self.frames is not None else {"every": self.every or 0}


@dataclass(frozen=True)
class FrameTarget:
    """One frame to read: its nominal index and time in seconds from the first frame."""

    index: int
    offset: float


def spread_frame_indices(frame_count: int, frames: int) -> list[int]:
    """``frames`` indices over ``frame_count`` frames: middle, first + last, or spread."""
    if frame_count < 1:
        return []
    last = frame_count - 1
    if frames == 1:
        return [frame_count // 2]
    if frames == 2:
        return sorted({0, last})
    step = last / (frames - 1)
    return sorted({min(last, round(i * step)) for i in range(frames)})


def every_frame_indices(frame_count: int, fps: float, every: float) -> list[int]:
    """Indices of the frames at 0, ``every``, 2 x ``every``, ... seconds (nearest frame)."""
    if frame_count < 1:
        return []
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    duration = frame_count / fps
    steps = math.ceil(duration / every - 1e-9)
    indices = {min(frame_count - 1, round(k * every * fps)) for k in range(max(1, steps))}
    return sorted(indices)


def plan_targets(frame_count: int, fps: float, sampling: Sampling) -> list[FrameTarget]:
    """The frames to read for ``sampling`` on a video of ``frame_count`` frames at ``fps``."""
    if sampling.every is not None:
        indices = every_frame_indices(frame_count, fps, sampling.every)
    else:
        indices = spread_frame_indices(frame_count, sampling.frames or 1)
    return [FrameTarget(i, i / fps) for i in indices]
