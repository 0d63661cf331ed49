"""Synthetic scenes made by the tests (and the benchmarks): text-free frames -- colour
gradients, noise, textures, lit shapes -- and frames with large text -- single glyphs and
captions -- rendered with Pillow's built-in font, plus an H.264 writer for clips of them.

Every scene is a pure function of its arguments (a seed or a time), so a failing case can be
reproduced by name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

W, H = 640, 360  # 16:9 frames unless a scene is given another size

Scene = Callable[[np.random.Generator, int, int], np.ndarray]


def _grid(w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return yy, xx


def _blend(c0: np.ndarray, c1: np.ndarray, u: np.ndarray) -> np.ndarray:
    return c0 * (1 - u[..., None]) + c1 * u[..., None]


def _u8(pixels: np.ndarray) -> np.ndarray:
    return np.clip(pixels, 0, 255).astype(np.uint8)


def linear_gradient(rng: np.random.Generator, w: int = W, h: int = H) -> np.ndarray:
    """Two random colours blended along a random direction."""
    yy, xx = _grid(w, h)
    a = rng.uniform(0, 2 * np.pi)
    u = np.cos(a) * xx / w + np.sin(a) * yy / h
    u = (u - u.min()) / max(float(u.max() - u.min()), 1e-6)
    return _u8(_blend(rng.uniform(0, 255, 3), rng.uniform(0, 255, 3), u))


def radial_gradient(rng: np.random.Generator, w: int = W, h: int = H) -> np.ndarray:
    """Two random colours blended outwards from a random centre (a vignette, a lamp)."""
    yy, xx = _grid(w, h)
    u = np.hypot(xx - rng.uniform(0, w), yy - rng.uniform(0, h))
    return _u8(_blend(rng.uniform(0, 255, 3), rng.uniform(0, 255, 3), u / u.max()))


def soft_blobs(rng: np.random.Generator, w: int = W, h: int = H) -> np.ndarray:
    """A gradient with out-of-focus coloured blobs (bokeh)."""
    img = linear_gradient(rng, w, h).astype(np.float32)
    yy, xx = _grid(w, h)
    for _ in range(5):
        cx, cy, s = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.08, 0.25) * h
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * s * s))[..., None]
        img = img * (1 - blob) + rng.uniform(0, 255, 3) * blob
    return _u8(img)


def noise(rng: np.random.Generator, w: int = W, h: int = H) -> np.ndarray:
    """Grey Gaussian pixel noise (sensor noise, static)."""
    return _u8(rng.normal(128, rng.uniform(10, 60), (h, w, 3)))


def clouds(rng: np.random.Generator, w: int = W, h: int = H) -> np.ndarray:
    """Coloured noise summed over octaves: clouds, foliage, marble."""
    acc = np.zeros((h, w, 3), np.float32)
    for octave in range(1, 6):
        n = 2**octave
        small = rng.normal(0, 1, (n * 2, n * 4, 3)).astype(np.float32)
        acc += cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC) / octave
    acc = (acc - acc.min()) / max(float(acc.max() - acc.min()), 1e-6)
    return _u8(acc * 255)


def wood(rng: np.random.Generator, w: int = W, h: int = H) -> np.ndarray:
    """Warped stripes: wood grain, fabric."""
    yy, xx = _grid(w, h)
    warp = clouds(rng, w, h)[..., 0].astype(np.float32) / 255 * rng.uniform(5, 40)
    u = 0.5 + 0.5 * np.sin(rng.uniform(0.02, 0.2) * (xx * 0.95 + yy * 0.3) + warp)
    return _u8(_blend(rng.uniform(60, 200, 3), rng.uniform(60, 200, 3), u))


def lit_shapes(rng: np.random.Generator, w: int = W, h: int = H) -> np.ndarray:
    """A 'photo' of shapes: shaded spheres and a tilted box on a gradient, blurred, noisy."""
    img = linear_gradient(rng, w, h).astype(np.float32)
    yy, xx = _grid(w, h)
    for _ in range(int(rng.integers(2, 5))):
        cx, cy = rng.uniform(0.1, 0.9) * w, rng.uniform(0.15, 0.85) * h
        r = rng.uniform(0.06, 0.3) * h
        inside = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
        light = 1 - 0.7 * ((xx - cx + 0.4 * r) ** 2 + (yy - cy + 0.4 * r) ** 2) / (r * r)
        shaded = rng.uniform(40, 255, 3) * np.clip(light, 0.2, 1)[..., None]
        img[inside] = shaded[inside]
    x0, y0 = rng.uniform(0, 0.8) * w, rng.uniform(0, 0.6) * h
    bw, bh = rng.uniform(0.1, 0.3) * w, rng.uniform(0.15, 0.5) * h
    corners = [[x0, y0], [x0 + bw, y0 + 10], [x0 + bw - 10, y0 + bh], [x0 - 5, y0 + bh - 10]]
    colour = tuple(float(v) for v in rng.uniform(40, 255, 3))
    cv2.fillConvexPoly(img, np.array(corners, np.int32), colour)
    img = cv2.GaussianBlur(img, (0, 0), 1.5) + rng.normal(0, 6, img.shape)
    return _u8(img)


TEXT_FREE: dict[str, Scene] = {
    "linear_gradient": linear_gradient,
    "radial_gradient": radial_gradient,
    "soft_blobs": soft_blobs,
    "noise": noise,
    "clouds": clouds,
    "wood": wood,
    "lit_shapes": lit_shapes,
}
"""Text-free scene families, each ``scene(rng, width, height) -> RGB uint8``."""


def gradient_disc_frame(
    t: float, w: int = W, h: int = H, seed: int = 0, edge: float = 4.0
) -> np.ndarray:
    """Frame ``t`` seconds into a clip of moving colour gradients and discs (no text).

    The gradient drifts and turns; five discs cross the frame, their edges blurred over
    ``edge`` pixels (slightly out of focus). Sharp flat discs (``edge`` 1) are another
    matter: the recognizer reads them as bullets and "O"s, and so would a person.
    """
    rng = np.random.default_rng(seed)
    yy, xx = _grid(w, h)
    a = 2 * np.pi * (rng.random() + 0.05 * t)
    u = (np.cos(a) * xx / w + np.sin(a) * yy / h + 0.1 * t) % 2.0
    u = np.where(u > 1, 2 - u, u)
    img = _blend(rng.uniform(20, 235, 3), rng.uniform(20, 235, 3), u)
    for _ in range(5):
        r = rng.uniform(0.05, 0.2) * h
        cx = (rng.random() * w + rng.uniform(-60, 60) * t) % w
        cy = (rng.random() * h + rng.uniform(-40, 40) * t) % h
        inside = np.clip((r - np.hypot(xx - cx, yy - cy)) / edge + 0.5, 0, 1)
        img = _blend(img, np.broadcast_to(rng.uniform(0, 255, 3), img.shape), inside)
    return _u8(img)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def draw_text(
    pixels: np.ndarray,
    text: str,
    size: int,
    *,
    centre: tuple[float, float] | None = None,
    fill: tuple[int, int, int] = (255, 255, 255),
    outline: int = 0,
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """``text`` drawn on a copy of ``pixels`` at font ``size``, centred at ``centre`` (default:
    the middle), with a black ``outline`` of that many pixels; returns the frame and the
    text's ink box (x0, y0, x1, y1)."""
    img = Image.fromarray(pixels)
    draw, font = ImageDraw.Draw(img), _font(size)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font, stroke_width=outline)
    cx, cy = centre or (img.width / 2, img.height / 2)
    xy = (cx - (right - left) / 2 - left, cy - (bottom - top) / 2 - top)
    draw.text(xy, text, font=font, fill=fill, stroke_width=outline, stroke_fill=(0, 0, 0))
    box = draw.textbbox(xy, text, font=font, stroke_width=outline)
    return np.asarray(img), (int(box[0]), int(box[1]), int(box[2]), int(box[3]))


def caption_frame(
    background: np.ndarray, lines: Sequence[str], size: int
) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """Subtitle-style captions: white text with a black outline, centred in the lower part
    of ``background``, one line under the other; returns the frame and each line's ink box."""
    h = background.shape[0]
    pixels, boxes = background, []
    for i, line in enumerate(lines):
        y = h * 0.8 - (len(lines) - 1 - i) * size * 1.4
        pixels, box = draw_text(pixels, line, size, centre=(background.shape[1] / 2, y), outline=3)
        boxes.append(box)
    return pixels, boxes


def write_video(
    path: Path,
    frames: Sequence[np.ndarray],
    *,
    fps: int = 10,
    gop: int = 10,
    fmt: str | None = None,
    faststart: bool = False,
) -> Path:
    """Encode RGB frames with H.264 (a keyframe every ``gop`` frames, no B-frames)."""
    import av

    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", format=fmt, options=options) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.options = {"g": str(gop), "keyint_min": str(gop), "sc_threshold": "0", "bf": "0"}
        for pixels in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
