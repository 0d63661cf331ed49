"""How lines read by their height, on text and on text-free images: the figures behind the
tall-line rule (``RecOptions.tall_line``, ``tall_line_min_score``; ``pipeline/textness.py``).

    python -m benchmarks.tall_lines [--sets docs,words,large_text,text_free,videos]
                                    [--limit N] [--out PATH.md]

Every image is read with the rule off and no confidence floor (every line that reads as a
character), and each line is put in a height band by its height / the image's shorter side.
Per set and band the report gives how many lines read with confidence >= 0.9 and hold a
letter or digit (what the rule asks of tall lines), what the rule keeps, and the detector's
own evidence for the same boxes: the DB box score (mean probability in the box, what
``box_thresh`` filters) and how peaked the region is: the share of its pixels above the
binarization threshold whose probability is above 0.9.

Sets: ``docs`` (../shared/data/docs/labels.jsonl; a line is text when its centre lies in a
labelled region, don't-care included), ``words`` (recog_labels.jsonl: images that are one
word, the case where a real line fills the image; text when read right), ``large_text`` and
``text_free`` (synthetic, tests/scenes.py), ``videos`` (one frame a second of
../shared/data/videos/dj_video4.mp4, which has no text, and of dj_video5.mp4 after 2 s, which
has none but unreadable specks of signage). Only numbers go into the report.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SETS = ("docs", "words", "large_text", "text_free", "videos")
BANDS = ((0.0, 0.2, "ordinary (<= 0.2)"), (0.2, 0.5, "tall (0.2-0.5)"), (0.5, 9.0, "frame (> 0.5)"))
# One image: (set, label of its lines or None to label by GT, pixels, GT polygons or None).
Item = tuple[str, str, np.ndarray, list[np.ndarray] | None]


def _rgb(path: Path) -> np.ndarray:
    from ocrmill.pipeline.decode import decode_image

    return decode_image(str(path), max_pixels=300_000_000).pixels


def docs_items(limit: int | None) -> Iterator[Item]:
    labels = [json.loads(x) for x in (DATA / "docs" / "labels.jsonl").read_text().splitlines()]
    for rec in labels[:limit]:
        polys = [np.asarray(line["points"], np.float32) for line in rec["lines"] if line["points"]]
        page_level = any(line["points"] is None for line in rec["lines"])
        yield "docs", "text" if page_level else "", _rgb(DATA / rec["image"]), polys


def word_items(limit: int | None) -> Iterator[Item]:
    lines = (DATA / "docs" / "recog_labels.jsonl").read_text().splitlines()
    for rec in map(json.loads, lines[:limit]):
        yield "words", "=" + rec["text"], _rgb(DATA / rec["image"]), None


def _scenes():  # tests/scenes.py: the same scenes the tests use
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests import scenes

    return scenes


def large_text_items(limit: int | None) -> Iterator[Item]:
    scenes = _scenes()
    backgrounds = [*scenes.TEXT_FREE.values(), lambda rng, w, h: np.full((h, w, 3), 245, np.uint8)]
    for seed, make in enumerate(backgrounds):
        bg = make(np.random.default_rng(100 + seed), 640, 360)
        for text, size in (("A", 150), ("K", 220), ("8", 280), ("R", 250), ("SALE", 120)):
            yield "large_text", "text", scenes.draw_text(bg, text, size, outline=4)[0], None
        for text, size in (("OPEN 24H", 90), ("BIG TITLE", 80), ("Hello world", 60)):
            yield "large_text", "text", scenes.draw_text(bg, text, size, outline=4)[0], None
        lines = ["We will meet again tomorrow", "at the old station, 7:45"]
        yield "large_text", "text", scenes.caption_frame(bg, lines, 30)[0], None
        if limit is not None and seed + 1 >= limit:
            return


def text_free_items(limit: int | None) -> Iterator[Item]:
    scenes = _scenes()
    seeds = range(limit or 12)
    for make in scenes.TEXT_FREE.values():
        for seed in seeds:
            w = 480 if seed % 3 == 2 else 640  # some 4:3 frames
            yield "text_free", "none", make(np.random.default_rng(seed), w, 360), None
    for seed in seeds:
        for t in (0.0, 3.0):
            yield "text_free", "none", scenes.gradient_disc_frame(t, seed=seed), None


def video_items(limit: int | None) -> Iterator[Item]:
    import av

    for name, after in (("dj_video4.mp4", 0.0), ("dj_video5.mp4", 2.0)):
        with av.open(str(DATA / "videos" / name)) as container:
            stream = container.streams.video[0]
            next_time, n = after, 0
            for frame in container.decode(stream):
                if frame.time is None or frame.time < next_time:
                    continue
                yield "videos", "none", frame.to_ndarray(format="rgb24"), None
                next_time, n = next_time + 1.0, n + 1
                if limit is not None and n >= limit:
                    break


class DetectorEvidence:
    """The DB box score and the share of the region (probability above the binarization
    threshold) that is above 0.9, for each of a page's boxes."""

    def __init__(self, engine) -> None:
        from ocrmill.backends import create_backend

        self.backend = create_backend(engine.files.det, engine.config.backend, "det")

    def __call__(self, pixels: np.ndarray, quads: np.ndarray, opts) -> np.ndarray:
        from ocrmill.pipeline import detect

        out = np.full((len(quads), 2), np.nan)
        if not len(quads) or max(pixels.shape[:2]) > opts.tile.tile_above:
            return out  # tiled pages: boxes are merged across tiles, not matched here
        tensor, geo = detect.prepare_det_input(pixels, opts.det)
        prob = self.backend.run(tensor)[0, 0]
        found, scores = detect.db_boxes(prob, opts.det)
        page = detect.boxes_to_page(found, geo)
        if not len(page):
            return out
        centres = page.mean(axis=1)
        for k, quad in enumerate(quads):
            j = int(np.argmin(np.linalg.norm(centres - quad.mean(axis=0), axis=1)))
            mask = np.zeros(prob.shape, np.uint8)
            cv2.fillPoly(mask, [np.round(found[j]).astype(np.int32)], 1)
            kernel = prob[(mask > 0) & (prob > opts.det.thresh)]  # the region DB found
            out[k] = scores[j], float((kernel > 0.9).mean()) if kernel.size else np.nan
        return out


def measure(sets: list[str], limit: int | None) -> tuple[list[dict], dict[str, int]]:
    from ocrmill.config import Config, RecOptions
    from ocrmill.engine import Engine
    from ocrmill.pipeline import textness

    engine = Engine()
    evidence = DetectorEvidence(engine)
    base = Config().read
    all_lines = dataclasses.replace(base, rec=dataclasses.replace(base.rec, min_score=0.0))
    all_lines = dataclasses.replace(all_lines, rec=dataclasses.replace(all_lines.rec, tall_line=9))
    rule = RecOptions(min_score=0.0)
    sources = {
        "docs": docs_items,
        "words": word_items,
        "large_text": large_text_items,
        "text_free": text_free_items,
        "videos": video_items,
    }
    rows: list[dict] = []
    images: dict[str, int] = {}
    for name in sets:
        count = 0
        for set_name, label, pixels, polys in sources[name](limit):
            result = engine.read(pixels, options=all_lines)
            h, w = pixels.shape[:2]
            quads = np.array([line.box for line in result.lines], np.float32).reshape(-1, 4, 2)
            texts = [(line.text, line.score) for line in result.lines]
            keep = textness.keep_lines(quads, texts, pixels.shape, rule)
            det = evidence(pixels, quads, all_lines)
            heights = textness.line_heights(quads) / min(h, w)
            for k, line in enumerate(result.lines):
                if label.startswith("="):
                    kind = "text" if line.text.casefold() == label[1:].casefold() else "misread"
                elif label:
                    kind = label
                else:
                    centre = tuple(float(v) for v in quads[k].mean(axis=0))
                    inside = any(cv2.pointPolygonTest(p, centre, False) >= 0 for p in polys or [])
                    kind = "text" if inside else "unlabelled"
                rows.append(
                    {
                        "set": set_name,
                        "image": count,
                        "kind": kind,
                        "height": float(heights[k]),
                        "score": line.score,
                        "letters": textness.has_letters_or_digits(line.text),
                        "area": float(cv2.contourArea(quads[k]) / (w * h)),
                        "kept": bool(keep[k]),
                        "db_score": float(det[k, 0]),
                        "peak_share": float(det[k, 1]),
                    }
                )
            count += 1
        images[name] = count
        print(f"{name}: {count} images", file=sys.stderr)
    return rows, images


def _pct(values: list[float]) -> str:
    v = np.array([x for x in values if x == x])
    if not v.size:
        return ""
    return " / ".join(f"{x:.2f}" for x in np.percentile(v, [10, 50, 90]))


def report(rows: list[dict], images: dict[str, int], args: argparse.Namespace) -> str:
    from ocrmill.config import RecOptions

    opts = RecOptions()
    out = [
        "# Tall lines: how lines read by their height, on text and on text-free images",
        "",
        f"{dt.datetime.now().isoformat(timespec='seconds')}; {platform.platform()}; "
        f"{os.cpu_count()} CPUs; Python {platform.python_version()}. Command: "
        f"`python -m benchmarks.tall_lines --sets {','.join(args.sets)}"
        f"{f' --limit {args.limit}' if args.limit else ''}`.",
        "",
        "Every line read with no confidence floor and the rule off. Height = the line's "
        "height / the image's shorter side. *confident* = read with confidence >= "
        f"{opts.tall_line_min_score} and holding a letter or digit; *kept* = what the rule keeps "
        f"(tall_line {opts.tall_line}, tall_line_min_score {opts.tall_line_min_score}, no floor). "
        "DB box score and peak share (of the region above the binarization threshold, the "
        "share above 0.9): the detector's evidence for the same box (p10 / p50 / p90). kind: text, misread (a word image read wrong), unlabelled (no GT region at its "
        "centre), none (an image with no text).",
        "",
        "| set | kind | height band | lines | confident | kept | DB box score | peak share |",
        "|---|---|---|---|---|---|---|---|",
    ]
    keys = sorted({(r["set"], r["kind"]) for r in rows}, key=lambda k: (SETS.index(k[0]), k[1]))
    for set_name, kind in keys:
        for lo, hi, band in BANDS:
            sel = [
                r
                for r in rows
                if r["set"] == set_name and r["kind"] == kind and lo < r["height"] <= hi
            ]
            if not sel:
                continue
            confident = sum(r["score"] >= opts.tall_line_min_score and r["letters"] for r in sel)
            kept = sum(r["kept"] for r in sel)
            out.append(
                f"| {set_name} | {kind} | {band} | {len(sel)} | "
                f"{100 * confident / len(sel):.0f} % | {100 * kept / len(sel):.0f} % | "
                f"{_pct([r['db_score'] for r in sel])} | {_pct([r['peak_share'] for r in sel])} |"
            )
    out += [
        "",
        "Area: the summed box area of the lines as a share of their image, averaged over all "
        "images of the set, with the rule off and on (the video filter's ratio counts the "
        "union, so overlapping boxes count once there); lines the rule drops.",
        "",
        "| set | kind | images in set | with such lines | area per image, rule off | rule on "
        "| lines dropped |",
        "|---|---|---|---|---|---|---|",
    ]
    for set_name, kind in keys:
        sel = [r for r in rows if r["set"] == set_name and r["kind"] == kind]
        n = images[set_name]
        off = sum(r["area"] for r in sel) / n
        on = sum(r["area"] for r in sel if r["kept"]) / n
        dropped = sum(not r["kept"] for r in sel)
        with_lines = len({r["image"] for r in sel})
        out.append(
            f"| {set_name} | {kind} | {n} | {with_lines} | {off:.4f} | {on:.4f} | {dropped} |"
        )
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=lambda s: s.split(","), default=list(SETS))
    parser.add_argument("--limit", type=int, help="images per set (scenes per family)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    unknown = set(args.sets) - set(SETS)
    if unknown:
        raise SystemExit(f"unknown sets {sorted(unknown)}; have {', '.join(SETS)}")
    needs_data = {"docs", "words", "videos"} & set(args.sets)
    if needs_data and not DATA.is_dir():
        raise SystemExit(f"{DATA} not found: the sets {sorted(needs_data)} need ../shared/data")
    text = report(*measure(args.sets, args.limit), args)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = args.out or ROOT / "benchmarks" / "results" / f"tall_lines_{stamp}.md"
    path.write_text(text)
    print(text)
    print(f"written: {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
