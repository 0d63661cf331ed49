"""The video text-area filter on real and synthetic clips: ratio per clip, frames/s, peak RSS.

    python -m benchmarks.video_filter [--videos ../shared/data/videos] [--frames 5]
                                      [--workers auto] [--no-synthetic] [--out PATH.md]

Besides the real clips, two synthetic ones are made here (``tests/scenes.py``): 6 s of moving
colour gradients and discs with no text (the detector's false positives; the score should be
about 0), and the same clip with two subtitle lines (about 12 % of the frame in line boxes).
``OCRMILL_*`` environment overrides reach the workers and are listed in the report, e.g.
``OCRMILL_READ_REC_TALL_LINE=9`` to measure without the tall-line rule.

Runs ``ocrmill video-filter VIDEOS... --frames N`` once as its own process tree and samples
the RSS of the whole tree (parent + workers, summed) every 50 ms. Frames/s is reported two
ways: over the filter run (the command's own summary, workers already warm) and over the
whole command (start-up and model loading included). Separately, in this process, each clip's
sampled frames are decoded alone (no OCR) to show what seeking costs. Only numbers go into the
report: no frames and no recognized text (the clips are for internal testing only).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.proc_memory import run_measured

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VIDEOS = ROOT.parent / "shared" / "data" / "videos"
SUBTITLES = ("We will meet again tomorrow", "at the old station, 7:45")


def synthetic_clips(folder: Path) -> list[Path]:
    """Write the two synthetic clips (640 x 360, 6 s at 10 fps) into ``folder``."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.scenes import caption_frame, gradient_disc_frame, write_video

    frames = [gradient_disc_frame(i / 10) for i in range(60)]
    captioned = [caption_frame(f, SUBTITLES, 30)[0] for f in frames]
    return [
        write_video(folder / "synthetic_gradients_discs.mp4", frames, fps=10),
        write_video(folder / "synthetic_subtitles.mp4", captioned, fps=10),
    ]


def run_filter(videos: list[Path], frames: int, workers: str, out: Path) -> dict[str, object]:
    cmd = [sys.executable, "-m", "ocrmill", "video-filter", *map(str, videos), "-o", str(out)]
    cmd += ["--frames", str(frames), "--workers", workers, "--device", "cpu", "-q"]
    m = run_measured(cmd, ROOT)
    err = m.stderr
    match = re.search(r"(\d+) frames in ([\d.]+) s", err)
    return {
        "wall_s": m.wall_s,
        "peak_rss_mib": m.peak_rss_mib,
        "frames": int(match.group(1)) if match else 0,
        "filter_s": float(match.group(2)) if match else float("nan"),
        "exit": m.returncode,
        "plan": next((line for line in err.splitlines() if "workers:" in line), ""),
    }


def decode_only(path: Path, frames: int) -> tuple[float, int]:
    """Seconds to decode the sampled frames of ``path`` alone, and frames decoded."""
    from ocrmill.video.frames import VideoReader
    from ocrmill.video.sampling import Sampling, plan_targets

    started = time.perf_counter()
    with VideoReader(path, max_pixels=10**9) as reader:
        tl = reader.timeline
        for _ in reader.read(plan_targets(tl.frame_count, tl.fps, Sampling(frames))):
            pass
        decoded = reader.frames_decoded
    return time.perf_counter() - started, decoded


def clip_row(record: dict, decode_s: float) -> str:
    name = Path(record["input"]).name
    if not record["ok"]:
        return f"| {name} | error: {record['error']['code']} | | | | | | |"
    ratios = " ".join(f"{f['time']:.1f}s:{f['ratio']:.3f}" for f in record["frames"])
    lines = sum(len(f["lines"]) for f in record["frames"])
    score = record["score"]
    size = f"{record['width']}x{record['height']}, {record['duration']:.1f} s"
    return (
        f"| {name} | {size} | {score['mean']:.4f} | {score['min']:.4f} / {score['max']:.4f} | "
        f"{ratios} | {lines} | {record['frames_decoded']} of {record['frame_count']} | "
        f"{decode_s * 1000:.0f} |"
    )


def report(args: argparse.Namespace, run: dict, records: list[dict], decode: dict) -> str:
    frames, filter_s, wall = run["frames"], run["filter_s"], run["wall_s"]
    env = {k: v for k, v in os.environ.items() if k.startswith("OCRMILL_")}
    out = [
        f"# Video text-area filter: {len(records)} clips, --frames {args.frames}",
        "",
        f"{dt.datetime.now().isoformat(timespec='seconds')}; {platform.platform()}; "
        f"{os.cpu_count()} CPUs; Python {platform.python_version()}; `{run['plan'].strip()}`; "
        f"OCRMILL_* env: {env or 'none'}",
        "",
        f"Command: `ocrmill video-filter {args.videos}/*.mp4"
        f"{'' if args.no_synthetic else ' SYNTHETIC_CLIPS'} --frames {args.frames} "
        f"--workers {args.workers} --device cpu` (exit {run['exit']}).",
        "",
        "| clip | size | score (mean ratio) | min / max | per-frame time:ratio | lines | frames "
        "decoded | decode-only ms |",
        "|---|---|---|---|---|---|---|---|",
        *(clip_row(r, decode.get(r["input"], (0.0, 0))[0]) for r in records),
        "",
        f"- frames read: {frames}; filter run (workers warm): {filter_s:.1f} s = "
        f"**{frames / filter_s:.2f} frames/s**; whole command incl. start-up: {wall:.1f} s = "
        f"{frames / wall:.2f} frames/s",
        f"- peak RSS of the process tree (parent + workers): **{run['peak_rss_mib']:.0f} MiB**",
        "- ratio = area of the union of the reported lines' boxes / frame area (min text score "
        "0: every line that reads as a character counts, except, by default, tall lines -- "
        "taller than `tall_line` of the frame's shorter side -- read below "
        "`tall_line_min_score` or as punctuation only; see README, video section).",
        "- synthetic_*: made by this script (tests/scenes.py): 6 s of moving colour gradients "
        "and discs, no text; the same with two subtitle lines (~12 % of the frame in boxes).",
        "- decode-only: the same sampled frames decoded by seeking in one process, no OCR.",
    ]
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=Path, default=DEFAULT_VIDEOS)
    parser.add_argument("--frames", type=int, default=5)
    parser.add_argument("--workers", default="auto")
    parser.add_argument("--no-synthetic", action="store_true", help="real clips only")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    videos = sorted(args.videos.glob("*.mp4"))
    if not videos and args.no_synthetic:
        raise SystemExit(f"no .mp4 files in {args.videos} (the data lives in ../shared/data)")
    with tempfile.TemporaryDirectory() as tmp:
        if not args.no_synthetic:
            videos += synthetic_clips(Path(tmp))
        out = Path(tmp) / "video_filter.jsonl"
        run = run_filter(videos, args.frames, args.workers, out)
        records = [json.loads(line) for line in out.read_text().splitlines()]
        decode = {str(v): decode_only(v, args.frames) for v in videos}
    text = report(args, run, records, decode)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = args.out or ROOT / "benchmarks" / "results" / f"video_filter_{stamp}.md"
    path.write_text(text)
    print(text)
    print(f"written: {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
