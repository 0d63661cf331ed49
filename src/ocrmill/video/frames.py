"""Video decoding with PyAV: typed open errors, the frame timeline, sampled frames by seeking.

Runs in the parent process (frames are decoded here and sent to the OCR workers as RGB
arrays). Frames are found by timestamp: ``container.seek`` goes to the nearest keyframe
before the target, then decoding runs forward to the frame at the target, so reading 3
frames of a long video decodes a few GOPs, not the whole video. Containers that cannot
seek (raw elementary streams) or whose seek lands wrong are read sequentially instead.
"""

from __future__ import annotations

import bisect
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from types import TracebackType
from typing import Any, Literal

import av
import numpy as np

from ocrmill.errors import (
    CorruptVideoError,
    EmptyInputError,
    ImageTooLargeError,
    InputError,
    InputNotFoundError,
    UnsupportedFormatError,
)
from ocrmill.video.sampling import FrameTarget

log = logging.getLogger(__name__)

FORWARD_WINDOW_S = 2.0
"""A target at most this far past the last decoded frame is reached by decoding forward
(cheaper than seeking back to its keyframe, which is usually behind the current position)."""

DEFAULT_FPS = 25.0  # nominal rate when a stream states none and has no timestamps


@dataclass(frozen=True)
class Timeline:
    """Where a video's frames are: how many, at what rate, from which time."""

    frame_count: int
    fps: float
    start: float  # time of the first frame in seconds (container time)
    source: Literal["metadata", "scan"]  # "scan": metadata was missing, packets were counted

    @property
    def duration(self) -> float:
        return self.frame_count / self.fps


@dataclass(frozen=True, eq=False)
class SampledFrame:
    """One decoded frame: nominal index, time in seconds from the first frame, RGB pixels."""

    index: int
    time: float
    pixels: np.ndarray  # H x W x 3 uint8, display orientation


def _looks_like_video(head: bytes) -> bool:
    """True when ``head`` starts like a common video container (MP4/MOV, Matroska/WebM,
    AVI, FLV, MPEG-TS/PS, Ogg, ASF): a file that fails to open is then corrupt, not alien."""
    return (
        head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip")
        or head.startswith((b"\x1a\x45\xdf\xa3", b"FLV", b"OggS", b"\x00\x00\x01\xba"))
        or head.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11")
        or (head.startswith(b"RIFF") and head[8:12] == b"AVI ")
        or (len(head) > 188 and head[0] == 0x47 and head[188] == 0x47)
    )


def _open_error(path: str, exc: Exception) -> InputError:
    """Classify a failure to open ``path`` as a video."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(200)
    except OSError as os_exc:
        return InputError(f"{path}: cannot be read: {os_exc.strerror or os_exc}")
    if not head:
        return EmptyInputError(f"{path}: the file is empty")
    if _looks_like_video(head):
        return CorruptVideoError(f"{path}: damaged or truncated video file ({exc})")
    return UnsupportedFormatError(f"{path}: not a video file FFmpeg can read ({exc})")


def _check_path(path: str) -> None:
    if not os.path.exists(path):
        raise InputNotFoundError(f"{path}: no such file")
    if os.path.isdir(path):
        raise InputError(f"{path}: is a directory, not a video file")
    if os.path.getsize(path) == 0:
        raise EmptyInputError(f"{path}: the file is empty")


def _seconds(value: int | None, time_base: Fraction | None) -> float | None:
    if value is None or time_base is None:
        return None
    return float(value * time_base)


class VideoReader:
    """Reads sampled frames of one video file. Use as a context manager; not thread-safe.

    ``frames_decoded`` counts the frames the decoder produced (a measure of the work done);
    ``mode`` is ``"seek"`` or ``"sequential"`` (after a seek failed or landed wrong).
    """

    def __init__(self, path: str | os.PathLike[str], *, max_pixels: int) -> None:
        self.path = os.fspath(path)
        _check_path(self.path)
        self.max_pixels = max_pixels
        self.frames_decoded = 0
        self.mode: Literal["seek", "sequential"] = "seek"
        self._container: Any = None
        self._iter: Iterator[Any] | None = None
        self._last_time: float | None = None  # container time of the last decoded frame
        self._last_frame: Any = None
        self._next_index = 0  # sequential mode: index of the next frame to decode
        self._open()
        self.timeline = self._find_timeline()

    # -- opening --------------------------------------------------------------------

    def _open(self) -> None:
        try:
            self._container = av.open(self.path, mode="r", metadata_errors="ignore")
        except av.error.FFmpegError as exc:
            raise _open_error(self.path, exc) from None
        if not self._container.streams.video:
            self.close()
            raise UnsupportedFormatError(f"{self.path}: has no video stream")
        self._stream = self._container.streams.video[0]
        ctx = self._stream.codec_context
        if ctx.width and ctx.height and ctx.width * ctx.height > self.max_pixels:
            self.close()
            raise ImageTooLargeError(
                f"{self.path}: frames of {ctx.width} x {ctx.height} pixels exceed max_pixels "
                f"({self.max_pixels})"
            )
        self._iter, self._last_time, self._last_frame, self._next_index = None, None, None, 0
        tb = self._stream.time_base
        entries = getattr(self._stream, "index_entries", None) or ()  # PyAV >= 15
        self._keyframes = sorted(float(e.timestamp * tb) for e in entries if e.is_keyframe and tb)

    def _reopen(self) -> None:
        self.close()
        self._open()

    @property
    def width(self) -> int:
        return int(self._stream.codec_context.width)

    @property
    def height(self) -> int:
        return int(self._stream.codec_context.height)

    # -- timeline -------------------------------------------------------------------

    def _stated_fps(self) -> float:
        for rate in (self._stream.average_rate, self._stream.guessed_rate):
            if rate and float(rate) > 0:
                return float(rate)
        return 0.0

    def _find_timeline(self) -> Timeline:
        stream, tb = self._stream, self._stream.time_base
        fps = self._stated_fps()
        start = _seconds(stream.start_time, tb) or 0.0
        count = int(stream.frames or 0)
        if count <= 0 and fps > 0:
            duration = _seconds(stream.duration, tb)
            if duration is None and self._container.duration:
                duration = self._container.duration / av.time_base
            count = round(duration * fps) if duration else 0
        if count > 0 and fps > 0:
            return Timeline(count, fps, start, "metadata")
        log.warning("%s: no frame count or duration in the metadata; counting packets", self.path)
        return self._scan_timeline(fps)

    def _scan_timeline(self, fps: float) -> Timeline:
        """Count the stream's packets (demux only, no decoding), then rewind."""
        count, first, last = 0, None, None
        try:
            for packet in self._container.demux(self._stream):
                if packet.size:
                    count += 1
                    t = _seconds(packet.pts, packet.time_base)
                    if t is not None:
                        first = t if first is None else min(first, t)
                        last = t if last is None else max(last, t)
        except av.error.FFmpegError as exc:
            raise CorruptVideoError(f"{self.path}: damaged video data ({exc})") from None
        if count == 0:
            raise CorruptVideoError(f"{self.path}: the video stream holds no frames")
        if first is not None and last is not None and last > first and count > 1:
            fps = (count - 1) / (last - first)
        else:
            self.mode = "sequential"  # no timestamps to seek by
        self._reopen()
        return Timeline(count, fps or DEFAULT_FPS, first or 0.0, "scan")

    # -- reading --------------------------------------------------------------------

    def read(self, targets: list[FrameTarget]) -> Iterator[SampledFrame]:
        """Yield the frame at each target (ascending); a frame reached twice is yielded once."""
        previous: Any = None
        for target in targets:
            try:
                frame = self._frame_for(target)
            except av.error.FFmpegError as exc:
                raise CorruptVideoError(
                    f"{self.path}: damaged video data before {target.offset:.2f} s ({exc})"
                ) from None
            if _same_frame(frame, previous):
                continue
            previous = frame
            yield SampledFrame(
                target.index, self._frame_offset(frame, target.index), _to_rgb(frame)
            )

    def _frame_offset(self, frame: Any, index: int) -> float:
        if frame.time is None:
            return index / self.timeline.fps
        return max(0.0, float(frame.time) - self.timeline.start)

    def _frame_for(self, target: FrameTarget) -> Any:
        if self.mode == "seek":
            frame = self._seek_frame(self.timeline.start + target.offset)
            if frame is not None:
                return frame
            log.info(
                "%s: seek failed near %.2f s; decoding from the start", self.path, target.offset
            )
            self.mode = "sequential"
            self._iter = None  # _sequential_frame reopens and starts from frame 0
        return self._sequential_frame(target.index)

    def _seek_frame(self, when: float) -> Any:
        """The first frame at/after ``when`` (half a frame of rounding allowed); None when
        the container cannot seek, the seek overshoots or reaches no decodable frame."""
        half = 0.5 / self.timeline.fps
        fresh = self._must_seek(when - half)
        if fresh:
            try:
                offset = (
                    int((when - half) / self._stream.time_base) if self._stream.time_base else 0
                )
                self._container.seek(max(offset, 0), stream=self._stream, backward=True)
            except (av.error.FFmpegError, OSError):
                return None
            self._iter, self._last_time = self._container.decode(self._stream), None
        assert self._iter is not None
        for frame in self._iter:
            self.frames_decoded += 1
            if frame.time is None or (fresh and frame.time > when + half):
                return None  # no timestamps, or the seek landed past the target
            fresh = False
            self._last_time, self._last_frame = float(frame.time), frame
            if frame.time >= when - half:
                return frame
        self._iter = None  # end of stream before the target
        end = self._last_frame
        if end is not None and end.time is not None and when - end.time <= self._end_slack():
            return end
        return None

    def _must_seek(self, when: float) -> bool:
        """Seek, or decode forward from the current position to ``when``?

        With a seek index (MP4, MKV cues), seek only when a keyframe lies between the current
        position and the target (a seek lands on the last indexed keyframe before it); without
        one, seek when the target is more than :data:`FORWARD_WINDOW_S` ahead.
        """
        last = self._last_time
        if self._iter is None or last is None or when < last:
            return True
        if self._keyframes:
            i = bisect.bisect_right(self._keyframes, when)
            return i > 0 and self._keyframes[i - 1] > last
        return when - last > FORWARD_WINDOW_S

    def _sequential_frame(self, index: int) -> Any:
        """Decode from the start, counting frames, to frame ``index``."""
        if self._iter is None or index < self._next_index:
            self._reopen()
            self._iter = self._container.decode(self._stream)
        for frame in self._iter:
            self.frames_decoded += 1
            self._next_index += 1
            self._last_frame = frame
            if self._next_index - 1 == index:
                return frame
        self._iter = None
        missing = index - (self._next_index - 1)
        if self._last_frame is not None and missing / self.timeline.fps <= self._end_slack():
            return self._last_frame
        raise CorruptVideoError(
            f"{self.path}: the video ends after {self._next_index} frames "
            f"({self._next_index / self.timeline.fps:.2f} s), before frame {index} "
            f"({index / self.timeline.fps:.2f} s) that its metadata promises"
        )

    def _end_slack(self) -> float:
        """How far past the last frame a target may be (stated durations round up)."""
        return 2.0 / self.timeline.fps + 0.25

    # -- lifetime -------------------------------------------------------------------

    def close(self) -> None:
        self._iter = None
        self._last_frame = None
        if self._container is not None:
            self._container.close()
            self._container = None

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _same_frame(frame: Any, previous: Any) -> bool:
    if previous is None:
        return False
    return bool(frame is previous or (frame.pts is not None and frame.pts == previous.pts))


def _to_rgb(frame: Any) -> np.ndarray:
    """RGB uint8 pixels in display orientation (the stream's rotation metadata applied)."""
    pixels = frame.to_ndarray(format="rgb24")
    turns = round(float(getattr(frame, "rotation", 0) or 0) / 90) % 4
    if turns:
        pixels = np.rot90(pixels, k=turns)  # counter-clockwise, as the display matrix says
    return np.ascontiguousarray(pixels)
