"""The video text-area filter: frames through the run layer, scores, keep decisions (parent).

Frames are decoded here (PyAV), lazily, as tasks of RGB arrays for
:func:`ocrmill.batch.api.iter_results`; a worker pool reads them, at most
``max_frames_in_flight`` at a time, so memory stays flat however many or long the videos
are; the workers batch them like any other image. No model is ever loaded in this process.

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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from ocrmill.batch.api import iter_results
from ocrmill.batch.executor_spec import ExecutorSpec, start_executor
from ocrmill.batch.executors import Executor, PoolExecutor
from ocrmill.config import Config, ReadOptions, load_config
from ocrmill.errors import ConfigError, InputError, OcrmillError, as_ocrmill_error
from ocrmill.results import PageFailure, PageResult, Result
from ocrmill.tasks import Task
from ocrmill.video.area import text_area_ratio
from ocrmill.video.frames import Timeline, VideoReader
from ocrmill.video.records import (
    FrameScore,
    SampleResult,
    VideoError,
    VideoInfo,
    VideoRecord,
    VideoScore,
)
from ocrmill.video.sampling import Sampling, plan_targets

if TYPE_CHECKING:
    from ocrmill.batch.executors import WorkerPool

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
class _Frame:
    """A sampled frame: where it is in the video, and its result once read."""

    index: int
    time: float
    result: Result | None = None


@dataclass
class _Video:
    path: str
    sample: int
    frames: list[_Frame] = field(default_factory=list)
    info: VideoInfo | None = None  # once every sampled frame is decoded
    error: OcrmillError | None = None
    decoded: bool = False  # every sampled frame has been handed out (or decoding failed)

    @property
    def done(self) -> bool:
        return self.decoded and (
            self.error is not None or all(f.result is not None for f in self.frames)
        )


@dataclass
class _Sample:
    index: int
    videos: list[_Video] = field(default_factory=list)
    listed: bool = False  # every video of the sample has been opened

    @property
    def done(self) -> bool:
        return self.listed and all(v.done for v in self.videos)


def read_options_for(base: ReadOptions, settings: FilterSettings) -> ReadOptions:
    """``base`` with the recognition confidence floor the filter counts text at."""
    rec = dataclasses.replace(base.rec, min_score=settings.min_text_score)
    return dataclasses.replace(base, rec=rec)


def _video_info(reader: VideoReader, timeline: Timeline, shape: tuple[int, ...]) -> VideoInfo:
    """What the record says about the video, once its sampled frames are decoded;
    ``shape``: a sampled frame's (display) shape."""
    height, width = shape[:2] if shape else (reader.height, reader.width)
    return VideoInfo(
        width=width,
        height=height,
        fps=round(timeline.fps, 3),
        frame_count=timeline.frame_count,
        duration=round(timeline.duration, 3),
        timeline=timeline.source,
        decoder=reader.mode,
        frames_decoded=reader.frames_decoded,
    )


class _FrameTasks:
    """Decodes the sampled frames of every video, in order, as tasks (this generator runs in
    the executor's feeding thread; the consumer reads the state it builds under ``lock``)."""

    def __init__(
        self,
        samples: Iterable[list[str]],
        settings: FilterSettings,
        options: ReadOptions,
        max_pixels: int,
    ) -> None:
        self.samples = samples
        self.settings = settings
        self.options = options
        self.max_pixels = max_pixels
        self.lock = threading.Lock()
        self.open: deque[_Sample] = deque()  # samples not yielded yet, in input order
        self.frames: dict[int, _Frame] = {}  # by id() of the frame's task (held until read)

    def tasks(self) -> Iterator[Task]:
        for index, paths in enumerate(self.samples):
            sample = _Sample(index)
            with self.lock:
                self.open.append(sample)
            for path in paths:
                video = _Video(path, index)
                with self.lock:
                    sample.videos.append(video)
                yield from self._video_tasks(video)
            sample.listed = True

    def _video_tasks(self, video: _Video) -> Iterator[Task]:
        try:
            with VideoReader(video.path, max_pixels=self.max_pixels) as reader:
                timeline = reader.timeline
                targets = plan_targets(timeline.frame_count, timeline.fps, self.settings.sampling)
                shape: tuple[int, ...] = ()
                for decoded in reader.read(targets):
                    shape = decoded.pixels.shape
                    frame = _Frame(decoded.index, decoded.time)
                    task = Task(
                        id=0,
                        source=decoded.pixels,
                        name=f"{video.path}@{decoded.time:.3f}s",
                        options=self.options,
                    )
                    with self.lock:
                        video.frames.append(frame)
                        self.frames[id(task)] = frame
                    yield task
                video.info = _video_info(reader, timeline, shape)
        except InputError as exc:
            video.error = exc
        except OcrmillError:
            raise  # not this video's fault (e.g. the pool failed): the run stops
        except Exception as exc:  # a decoder bug must not stop the other videos
            video.error = as_ocrmill_error(exc, video.path)
        finally:
            video.decoded = True

    def record(self, task: Task, result: Result) -> None:
        with self.lock:
            self.frames.pop(id(task)).result = result

    def finished(
        self, settings: FilterSettings, *, all_done: bool = False
    ) -> Iterator[SampleResult]:
        """Results of the samples at the front that are complete, in input order."""
        with self.lock:
            ready = []
            while self.open and (all_done or self.open[0].done):
                ready.append(self.open.popleft())
        for sample in ready:
            yield _sample_result(sample, settings)


def _failed(job: _Video, code: str, message: str) -> VideoRecord:
    return VideoRecord(
        job.path, job.sample, in_range=False, keep=False, error=VideoError(code, message)
    )


def _frame_score(frame: _Frame, result: PageResult) -> FrameScore:
    ratio = text_area_ratio([line.box for line in result.lines], result.width, result.height)
    return FrameScore(
        index=frame.index,
        time=round(frame.time, 3),
        ratio=round(ratio, 6),
        text=result.text,
        lines=tuple(result.lines),
    )


def _video_record(job: _Video, settings: FilterSettings) -> VideoRecord:
    """The record of a finished video (all its frames are read); ``keep`` is its sample's
    decision, made once every video of the sample has its record."""
    if job.error is not None:
        return _failed(job, job.error.code, job.error.message)
    frames = []
    for frame in job.frames:
        result = frame.result
        if result is None:  # the run stopped before this frame was read
            message = f"{job.path}: frame {frame.index} at {frame.time:.2f} s was not read"
            return _failed(job, "interrupted", message)
        if isinstance(result, PageFailure):
            message = f"{job.path}: frame {frame.index} at {frame.time:.2f} s: {result.message}"
            return _failed(job, result.code, message)
        frames.append(_frame_score(frame, result))
    if not frames:
        return _failed(job, "corrupt_video", f"{job.path}: no frame decoded")
    ratios = [f.ratio for f in frames]
    mean = sum(ratios) / len(ratios)
    return VideoRecord(
        job.path,
        job.sample,
        in_range=settings.min_ratio <= mean <= settings.max_ratio,
        keep=False,
        info=job.info,
        sampling=settings.sampling,
        frames=tuple(frames),
        score=VideoScore(mean=round(mean, 6), min=min(ratios), max=max(ratios)),
    )


def decide(in_range: Sequence[bool], mode: Mode) -> bool:
    """Keep a sample? ``any``/``all`` of its videos in range; an empty sample is kept."""
    if not in_range:
        return True
    return any(in_range) if mode == "any" else all(in_range)


def _sample_result(job: _Sample, settings: FilterSettings) -> SampleResult:
    videos = [_video_record(v, settings) for v in job.videos]
    keep = decide([v.in_range for v in videos], settings.mode)
    return SampleResult(job.index, keep, tuple(dataclasses.replace(v, keep=keep) for v in videos))


def _as_samples(samples: Iterable[str | Sequence[str]]) -> Iterator[list[str]]:
    for sample in samples:
        yield [sample] if isinstance(sample, str) else [str(p) for p in sample]


def iter_samples(
    samples: Iterable[str | Sequence[str]],
    pool: WorkerPool | None = None,
    settings: FilterSettings | None = None,
    *,
    executor: Executor | None = None,
    config: Config | None = None,
    stop: threading.Event | None = None,
) -> Iterator[SampleResult]:
    """Score every video of ``samples``; yield one :class:`~ocrmill.video.records.SampleResult`
    per sample, in input order, as soon as its videos are done.

    A sample is a list of video paths, or one path (a sample of one video). Frames are read
    by ``executor``, or by ``pool`` (at most ``settings.max_frames_in_flight`` frames in it
    at a time); ``config`` gives the read options (default: the pool's).
    """
    settings = settings or FilterSettings()
    if executor is None:
        if pool is None:
            raise ConfigError("iter_samples needs a pool or an executor")
        executor = PoolExecutor(pool, max_in_flight=settings.max_frames_in_flight)
    config = config or (pool.config if pool is not None else load_config())
    frames = _FrameTasks(
        _as_samples(samples),
        settings,
        read_options_for(config.read, settings),
        config.decode.max_pixels,
    )
    for task, result in iter_results(frames.tasks(), executor=executor, stop=stop):
        if task is not None:
            frames.record(task, result)
        yield from frames.finished(settings)
    yield from frames.finished(settings, all_done=True)


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
    engine_factory: str | None = None,
) -> list[SampleResult]:
    """Keep or drop samples of videos by how much of their frames text covers.

    ``samples``: video paths (each its own sample) or lists of paths (one sample each).
    Frames: ``frames`` spread over each video (1 = middle, 2 = first + last), or one frame
    ``every`` seconds when given. Returns one :class:`~ocrmill.video.records.SampleResult`
    per sample, in order (``sample``, ``keep``, ``videos``); each
    :class:`~ocrmill.video.records.VideoRecord` holds per-frame ratios and text, the score
    (mean/min/max) and ``in_range``, or ``ok`` false with an ``error``. Uses ``pool`` when
    given, else plans and starts workers as ``ocrmill run`` does (``config``, ``workers``,
    ``device``; GPUs when present and a CUDA backend is installed) and stops them after.
    """
    sampling = Sampling(frames=None, every=every) if every is not None else Sampling(frames)
    settings = FilterSettings(sampling, min_ratio, max_ratio, mode, min_text_score)
    if pool is not None:
        return list(iter_samples(samples, pool, settings))
    config = config or load_config()
    spec = ExecutorSpec(
        workers=workers,
        device=device,
        engine_factory=engine_factory,
        max_in_flight=settings.max_frames_in_flight,
    )
    executor = start_executor(spec, config)
    try:
        return list(iter_samples(samples, settings=settings, executor=executor, config=config))
    finally:
        executor.close()


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
