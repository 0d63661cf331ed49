"""The video text-area filter: frames through the worker pool, scores, keep decisions (parent).

Frames are decoded here (PyAV) and submitted to the shared :class:`WorkerPool` as RGB
arrays, at most ``max_frames_in_flight`` at a time (and the pool's own queue bound), so
memory stays flat however many or long the videos are; the workers batch them like any
other image. No model is ever loaded in this process.

A *sample* is a list of videos (Data-Juicer's unit): each video gets a score (the mean
text-area ratio of its sampled frames) and is *in range* when ``min_ratio <= score <=
max_ratio``; the sample is kept when any (``mode="any"``) or all (``mode="all"``) of its
videos are in range. A video that cannot be read counts as out of range; a sample with no
videos is kept (there is nothing to judge).
"""

from __future__ import annotations

import dataclasses
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ocrmill.config import Config, ReadOptions
from ocrmill.errors import ConfigError, InputError, InternalError, OcrmillError
from ocrmill.results import SCHEMA_VERSION, PageFailure, PageResult, Result
from ocrmill.runtime.worker import Task
from ocrmill.video.area import text_area_ratio
from ocrmill.video.frames import Timeline, VideoReader
from ocrmill.video.sampling import Sampling, plan_targets

if TYPE_CHECKING:
    from ocrmill.runtime.pool import WorkerPool

Mode = Literal["any", "all"]

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".flv", ".ts", ".mpg", ".mpeg")


@dataclass(frozen=True)
class FilterSettings:
    """What the filter samples, how it scores and what it keeps.

    ``min_text_score``: recognition confidence a detected line needs to count. The default
    0.0 counts every box the detector found whose crop decodes to at least one character
    (Data-Juicer counts the detector's boxes); the engine never reports boxes that read as
    an empty string, so those do not count. Raise it (e.g. 0.5) to count only text that
    was read with confidence. Whatever it is, a line much taller than text (above
    ``RecOptions.tall_line`` of the frame's shorter side) counts only when read with
    ``RecOptions.tall_line_min_score`` confidence and holding a letter or digit: the
    detector's frame-sized boxes on scenes without text do not.
    """

    sampling: Sampling = field(default_factory=Sampling)
    min_ratio: float = 0.0
    max_ratio: float = 1.0
    mode: Mode = "any"
    min_text_score: float = 0.0
    max_frames_in_flight: int = 32

    def __post_init__(self) -> None:
        if not self.min_ratio <= self.max_ratio:
            raise ConfigError(f"min_ratio {self.min_ratio} is above max_ratio {self.max_ratio}")
        if self.mode not in ("any", "all"):
            raise ConfigError(f"mode must be 'any' or 'all', got {self.mode!r}")
        if self.max_frames_in_flight < 1:
            raise ConfigError("max_frames_in_flight must be >= 1")


@dataclass
class _FrameJob:
    index: int
    time: float
    future: Future[Result]


@dataclass
class _VideoJob:
    path: str
    sample: int
    frames: list[_FrameJob] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    error: OcrmillError | None = None


@dataclass
class _SampleJob:
    index: int
    videos: list[_VideoJob] = field(default_factory=list)

    def futures(self) -> list[Future[Result]]:
        return [f.future for v in self.videos for f in v.frames]


def read_options_for(base: ReadOptions, settings: FilterSettings) -> ReadOptions:
    """``base`` with the recognition confidence floor the filter counts text at."""
    rec = dataclasses.replace(base.rec, min_score=settings.min_text_score)
    return dataclasses.replace(base, rec=rec)


def _timeline_info(
    reader: VideoReader, timeline: Timeline, shape: tuple[int, ...]
) -> dict[str, Any]:
    """What the record says about the video; ``shape``: a sampled frame's (display) shape."""
    height, width = shape[:2] if shape else (reader.height, reader.width)
    return {
        "width": width,
        "height": height,
        "fps": round(timeline.fps, 3),
        "frame_count": timeline.frame_count,
        "duration": round(timeline.duration, 3),
        "timeline": timeline.source,
    }


class _FrameSubmitter:
    """Decodes one video's sampled frames and submits them, bounded by a semaphore."""

    def __init__(self, pool: WorkerPool, settings: FilterSettings, options: ReadOptions) -> None:
        self.pool = pool
        self.settings = settings
        self.options = options
        self.max_pixels = pool.config.decode.max_pixels
        self._slots = threading.BoundedSemaphore(settings.max_frames_in_flight)

    def _release(self, _future: Future[Result]) -> None:
        self._slots.release()

    def _submit(self, job: _VideoJob, index: int, time: float, pixels: Any) -> None:
        self._slots.acquire()
        task = Task(
            id=self.pool.new_task_id(),
            source=pixels,
            name=f"{job.path}@{time:.3f}s",
            options=self.options,
        )
        try:
            future = self.pool.submit(task)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(self._release)
        job.frames.append(_FrameJob(index, time, future))

    def video(self, path: str, sample: int) -> _VideoJob:
        job = _VideoJob(path, sample)
        try:
            with VideoReader(path, max_pixels=self.max_pixels) as reader:
                timeline = reader.timeline
                targets = plan_targets(timeline.frame_count, timeline.fps, self.settings.sampling)
                shape: tuple[int, ...] = ()
                for frame in reader.read(targets):
                    shape = frame.pixels.shape
                    self._submit(job, frame.index, frame.time, frame.pixels)
                job.info = _timeline_info(reader, timeline, shape)
                job.info["decoder"] = reader.mode
                job.info["frames_decoded"] = reader.frames_decoded
        except InputError as exc:
            job.error = exc
        except OcrmillError:
            raise  # the pool failed or was closed: not this video's fault
        except Exception as exc:  # a decoder bug must not stop the other videos
            job.error = InternalError(f"{path}: {type(exc).__name__}: {exc}")
        if job.error is not None:
            for frame_job in job.frames:
                frame_job.future.cancel()
        return job


def _error_record(path: str, sample: int, code: str, message: str) -> dict[str, Any]:
    return {
        "schema": SCHEMA_VERSION,
        "kind": "video",
        "input": path,
        "sample": sample,
        "ok": False,
        "error": {"code": code, "message": message},
        "in_range": False,
    }


def _frame_record(frame: _FrameJob, result: PageResult) -> dict[str, Any]:
    ratio = text_area_ratio([line.box for line in result.lines], result.width, result.height)
    return {
        "index": frame.index,
        "time": round(frame.time, 3),
        "ratio": round(ratio, 6),
        "text": result.text,
        "lines": [line.to_dict() for line in result.lines],
    }


def _video_record(job: _VideoJob, settings: FilterSettings) -> dict[str, Any]:
    """One output record for a finished video (all its frame futures are done)."""
    if job.error is not None:
        return _error_record(job.path, job.sample, job.error.code, job.error.message)
    frames = []
    for frame in job.frames:
        result = frame.future.result()  # raises only when the pool failed as a whole
        if isinstance(result, PageFailure):
            message = f"{job.path}: frame {frame.index} at {frame.time:.2f} s: {result.message}"
            return _error_record(job.path, job.sample, result.code, message)
        frames.append(_frame_record(frame, result))
    if not frames:
        return _error_record(job.path, job.sample, "corrupt_video", f"{job.path}: no frame decoded")
    ratios = [f["ratio"] for f in frames]
    mean = sum(ratios) / len(ratios)
    record: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "kind": "video",
        "input": job.path,
        "sample": job.sample,
        "ok": True,
        **job.info,
        "sampling": settings.sampling.to_dict(),
        "frames": frames,
        "score": {"mean": round(mean, 6), "min": min(ratios), "max": max(ratios)},
        "in_range": settings.min_ratio <= mean <= settings.max_ratio,
    }
    return record


def decide(in_range: Sequence[bool], mode: Mode) -> bool:
    """Keep a sample? ``any``/``all`` of its videos in range; an empty sample is kept."""
    if not in_range:
        return True
    return any(in_range) if mode == "any" else all(in_range)


def _sample_result(job: _SampleJob, settings: FilterSettings) -> dict[str, Any]:
    videos = [_video_record(v, settings) for v in job.videos]
    keep = decide([v["in_range"] for v in videos], settings.mode)
    for v in videos:
        v["keep"] = keep
    return {"sample": job.index, "keep": keep, "videos": videos}


def _as_samples(samples: Iterable[str | Sequence[str]]) -> Iterator[list[str]]:
    for sample in samples:
        yield [sample] if isinstance(sample, str) else [str(p) for p in sample]


def iter_samples(
    samples: Iterable[str | Sequence[str]],
    pool: WorkerPool,
    settings: FilterSettings | None = None,
) -> Iterator[dict[str, Any]]:
    """Score every video of ``samples`` through ``pool``; yield one result per sample, in
    input order, as soon as its videos are done: ``{"sample", "keep", "videos": [records]}``.

    A sample is a list of video paths, or one path (a sample of one video).
    """
    settings = settings or FilterSettings()
    submitter = _FrameSubmitter(pool, settings, read_options_for(pool.config.read, settings))
    pending: deque[_SampleJob] = deque()

    def finished(block: bool) -> Iterator[dict[str, Any]]:
        while pending:
            futures = pending[0].futures()
            if block:
                wait_futures(futures)
            elif not all(f.done() for f in futures):
                return
            yield _sample_result(pending.popleft(), settings)

    for index, paths in enumerate(_as_samples(samples)):
        job = _SampleJob(index)
        for path in paths:
            job.videos.append(submitter.video(path, index))
            yield from finished(block=False)  # earlier samples only: this one is not queued
        pending.append(job)
    yield from finished(block=True)


def filter_videos(
    samples: Iterable[str | Sequence[str]],
    *,
    frames: int | None = 3,
    every: float | None = None,
    min_ratio: float = 0.0,
    max_ratio: float = 1.0,
    mode: Mode = "any",
    min_text_score: float = 0.0,
    pool: WorkerPool | None = None,
    config: Config | None = None,
    workers: str | int = "auto",
    device: str = "auto",
) -> list[dict[str, Any]]:
    """Keep or drop samples of videos by how much of their frames text covers.

    ``samples``: video paths (each its own sample) or lists of paths (one sample each).
    Frames: ``frames`` spread over each video (1 = middle, 2 = first + last), or one frame
    ``every`` seconds when given. Returns one ``{"sample", "keep", "videos"}`` dict per
    sample, in order; each video record holds per-frame ratios and text, the score
    (mean/min/max) and ``in_range``, or ``ok: False`` with an error. Uses ``pool`` when
    given, else starts one (``config``, ``workers``, ``device``) and stops it afterwards.
    """
    sampling = Sampling(frames=None, every=every) if every is not None else Sampling(frames)
    settings = FilterSettings(sampling, min_ratio, max_ratio, mode, min_text_score)
    if pool is not None:
        return list(iter_samples(samples, pool, settings))
    own = _start_pool(config, workers, device)
    try:
        return list(iter_samples(samples, own, settings))
    finally:
        own.shutdown(wait=False, kill=True)


def _start_pool(config: Config | None, workers: str | int, device: str) -> WorkerPool:
    from ocrmill.config import load_config
    from ocrmill.runtime.devices import probe
    from ocrmill.runtime.plan import plan_workers
    from ocrmill.runtime.pool import WorkerPool

    plan = plan_workers(probe(), device=device, workers=workers)
    return WorkerPool(plan, config or load_config()).start()


def video_paths(specs: Iterable[str]) -> list[str]:
    """Files as given; directories walked (sorted) for files with a video extension."""
    import os
    from pathlib import Path

    out: list[str] = []
    for spec in specs:
        if os.path.isdir(spec):
            found = (str(p) for p in Path(spec).rglob("*") if p.is_file())
            out.extend(sorted(p for p in found if p.lower().endswith(VIDEO_EXTENSIONS)))
        else:
            out.append(spec)
    return out
