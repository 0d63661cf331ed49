"""``ocrmill video-filter``: score videos by how much of their frames text covers, and keep
or drop each sample (Data-Juicer's text-area filter) through the run layer."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, TextIO

from ocrmill.cli.options import (
    add_device_options,
    add_engine_options,
    add_pool_options,
    add_verbosity_options,
    config_from_args,
    executor_from_args,
    positive_int,
    ratio,
)
from ocrmill.errors import ExitCode

if TYPE_CHECKING:
    from ocrmill.video.records import SampleResult, VideoRecord

log = logging.getLogger("ocrmill")


def add_parser(sub: argparse._SubParsersAction) -> None:
    video = sub.add_parser(
        "video-filter", help="keep or drop videos by how much of their frames text covers"
    )
    video.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="video files, or directories (recursive)"
    )
    video.add_argument("-o", "--output", required=True, help="JSONL output file ('-' = stdout)")
    how = video.add_mutually_exclusive_group()
    how.add_argument(
        "--frames",
        type=positive_int,
        default=3,
        metavar="N",
        help="frames per video: 1 = middle, 2 = first + last, N = spread (default 3)",
    )
    how.add_argument("--every", type=float, metavar="S", help="one frame every S seconds")
    video.add_argument(
        "--min-ratio", type=ratio, default=0.0, metavar="A", help="lowest score kept (0)"
    )
    video.add_argument(
        "--max-ratio", type=ratio, default=1.0, metavar="B", help="highest score kept (1)"
    )
    mode = video.add_mutually_exclusive_group()
    mode.add_argument(
        "--any",
        dest="mode",
        action="store_const",
        const="any",
        help="keep a sample when any of its videos is in range (default)",
    )
    mode.add_argument(
        "--all",
        dest="mode",
        action="store_const",
        const="all",
        help="keep a sample only when all its videos are in range",
    )
    video.set_defaults(mode="any")
    video.add_argument(
        "--one-sample",
        action="store_true",
        help="all INPUTs form one sample (--any/--all apply across them); default: each "
        "video is its own sample",
    )
    video.add_argument(
        "--min-text-score",
        type=ratio,
        default=0.0,
        metavar="S",
        help="recognition confidence a detected line needs to count (default 0: every box "
        "that reads as a character; lines taller than 0.2 of the frame need 0.9 regardless)",
    )
    add_verbosity_options(video, quiet_help="no per-video lines, plan or summary on stderr")
    add_pool_options(video)
    add_device_options(video)
    add_engine_options(video)
    video.set_defaults(func=cmd_video_filter)


def cmd_video_filter(args: argparse.Namespace) -> int:
    """Score videos by the share of their frames text covers; keep or drop each sample."""
    import time

    from ocrmill.video.filter import FilterSettings, iter_samples, video_paths
    from ocrmill.video.sampling import Sampling

    sampling = Sampling(None, args.every) if args.every is not None else Sampling(args.frames)
    settings = FilterSettings(
        sampling, args.min_ratio, args.max_ratio, args.mode, args.min_text_score
    )
    paths = video_paths(args.inputs)
    samples: list[list[str]] = [paths] if args.one_sample else [[p] for p in paths]
    config = config_from_args(args)
    executor = executor_from_args(args, config, max_in_flight=settings.max_frames_in_flight)
    started = time.monotonic()
    try:
        with _output_stream(args.output) as out:
            records = iter_samples(samples, settings=settings, executor=executor, config=config)
            videos, failed, kept, frames = _write_video_records(records, out, args.quiet)
    finally:
        executor.close()
    elapsed = max(time.monotonic() - started, 1e-9)
    log.info(
        "%d videos (%d failed), %d of %d samples kept, %d frames in %.1f s (%.2f frames/s)",
        videos,
        failed,
        kept,
        len(samples),
        frames,
        elapsed,
        frames / elapsed,
    )
    return ExitCode.SOME_INPUTS_FAILED if failed else ExitCode.OK


def _write_video_records(
    samples: Iterator[SampleResult], out: TextIO, quiet: bool
) -> tuple[int, int, int, int]:
    """One JSONL line per video as each sample completes; returns (videos, failed, kept
    samples, frames read)."""
    videos = failed = kept = frames = 0
    for sample in samples:
        kept += sample.keep
        for record in sample.videos:
            videos += 1
            failed += not record.ok
            frames += len(record.frames)
            out.write(record.to_json() + "\n")
            out.flush()
            if not quiet:
                log.info("%s", _video_line(record))
    return videos, failed, kept, frames


def _output_stream(path: str) -> contextlib.AbstractContextManager[TextIO]:
    if path == "-":
        return contextlib.nullcontext(sys.stdout)
    return open(path, "w", encoding="utf-8")


def _video_line(record: VideoRecord) -> str:
    if record.error is not None:
        return f"{record.input}: {record.error.code}: {record.error.message}"
    score = record.score
    assert score is not None  # a video read without an error has a score
    verdict = "keep" if record.keep else "drop"
    return (
        f"{record.input}: text area {score.mean:.4f} (min {score.min:.4f}, "
        f"max {score.max:.4f}, {len(record.frames)} frames): {verdict}"
    )
