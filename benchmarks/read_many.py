"""``Engine.read_many`` (recognition batched across images) vs separate ``Engine.read`` calls.

    python -m benchmarks.read_many [--images 20] [--repeats 3]

Uses the first SROIE and ICDAR images of ``../shared/data/docs`` (alternating), or rendered
pages when that folder is absent. Both ways run in the same process, alternating, and the
median of the repeats is reported.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from ocrmill.engine import Engine
from ocrmill.pipeline.decode import DecodedImage, decode_image

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "docs"


def sample_images(count: int) -> list[DecodedImage]:
    sroie = sorted((DATA / "sroie").glob("*.jpg"))
    icdar = sorted((DATA / "icdar2015").glob("*.jpg"), key=lambda p: int(p.stem.split("_")[1]))
    paths = [p for pair in zip(sroie, icdar) for p in pair][:count]
    if len(paths) < count:
        raise SystemExit(f"need {count} images under {DATA}")
    return [decode_image(p, max_pixels=300_000_000, name=p.name) for p in paths]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    images = sample_images(args.images)
    engine = Engine()
    engine.warmup()
    singles: list[float] = []
    batched: list[float] = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        one_by_one = [engine.read(img.pixels, name=img.name).text for img in images]
        singles.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        together = [r.text for r in engine.read_many(images) if r.ok]  # type: ignore[union-attr]
        batched.append(time.perf_counter() - t0)
        assert together == one_by_one, "read_many must read exactly what read reads"
    s, b = statistics.median(singles), statistics.median(batched)
    print(f"{args.images} images, {args.repeats} repeats (median):")
    print(f"  {args.images} x read():  {s:.2f} s  ({args.images / s:.2f} images/s)")
    print(f"  read_many():     {b:.2f} s  ({args.images / b:.2f} images/s)")
    print(f"  speed-up: {s / b:.2f}x")


if __name__ == "__main__":
    main()
