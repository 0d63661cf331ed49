"""The recognizer restricted to a charset (see :mod:`ocrmill.charsets`), written once to
the model cache: the restricted model (``backends.rec_head``), and for charset ``auto`` the
whole head beside it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from ocrmill.errors import ModelError
from ocrmill.models import (
    ModelFiles,
    ctc_vocabulary,
    file_digest,
    parse_character_list,
    read_dict_file,
)

# Bump when restricted recognizers are built differently: old cache files are then ignored.
_RESTRICTED_FORMAT = 1


def restrict_recognizer(files: ModelFiles, charset: str, cache_dir: Path) -> ModelFiles:
    """``files`` with the recognizer restricted to ``charset`` (see :mod:`ocrmill.charsets`).

    The restricted model is written once to ``cache_dir/rec/`` (keyed by the model and
    dictionary contents) with its own character list in its metadata, and reused from then
    on. ``charset="all"`` returns ``files`` unchanged. ``charset="auto"``: the Latin head,
    which also outputs the head's input, and beside it the whole head and dictionary
    (``rec_head``), with which the engine reads again the lines the Latin head reads
    doubtfully.
    """
    from ocrmill.charsets import check_charset

    if check_charset(charset) == "all":
        return files
    key = hashlib.sha256(
        f"{file_digest(files.rec)}|{file_digest(files.rec_dict) if files.rec_dict else '-'}"
        f"|{charset}|{_RESTRICTED_FORMAT}".encode()
    ).hexdigest()[:24]
    path = cache_dir / "rec" / f"{files.rec.stem}-{charset}-{key}.onnx"
    head = path.with_name(f"{path.stem}-head.onnx") if charset == "auto" else None
    if not path.is_file() or (head is not None and not head.is_file()):
        _write_restricted(files, charset, path, head)
    return dataclasses.replace(files, rec=path, rec_dict=None, rec_head=head)


def _write_restricted(files: ModelFiles, charset: str, path: Path, head: Path | None) -> None:
    try:
        import onnx
    except ImportError:
        raise ModelError(
            "restricting the recognizer's charset needs onnx (pip install onnx)"
        ) from None
    from ocrmill.atomic import write_atomically
    from ocrmill.backends.rec_head import restrict_classes, whole_head_model
    from ocrmill.charsets import class_subset

    try:
        model = onnx.load(str(files.rec))
    except Exception as exc:  # onnx raises DecodeError and friends
        raise ModelError(f"cannot read recognition model {files.rec}: {exc}") from None
    if files.rec_dict is not None:
        chars, source = read_dict_file(files.rec_dict), str(files.rec_dict)
    else:
        meta = {p.key: p.value for p in model.metadata_props}
        if not meta.get("character"):
            raise ModelError(
                f"recognition model {files.rec} has no 'character' metadata; "
                "pass its dictionary file with --rec-dict"
            )
        chars, source = parse_character_list(meta["character"]), f"{files.rec} metadata"
    num_classes = _head_classes(model)
    vocabulary = ctc_vocabulary(chars, num_classes, source)
    keep = class_subset(vocabulary, "latin" if charset == "auto" else charset)
    if head is not None:
        metadata = {
            "ocrmill_vocabulary": json.dumps(vocabulary, ensure_ascii=False),
            "ocrmill_keep": ",".join(map(str, keep)),
        }
        whole = whole_head_model(model, metadata)
        write_atomically(head, lambda tmp: onnx.save(whole, str(tmp)))
    restricted = restrict_classes(model, keep, features=head is not None)
    # The kept characters (the blank is implicit) as the model's own dictionary.
    kept_chars = "\n".join(vocabulary[i] for i in keep[1:])
    del restricted.metadata_props[:]
    restricted.metadata_props.add(key="character", value=kept_chars)
    restricted.metadata_props.add(key="ocrmill_charset", value=charset)
    write_atomically(path, lambda tmp: onnx.save(restricted, str(tmp)))


def _head_classes(model: Any) -> int:
    """The class count a recognizer's output declares."""
    dims = model.graph.output[0].type.tensor_type.shape.dim
    if dims and dims[len(dims) - 1].HasField("dim_value"):
        return int(dims[len(dims) - 1].dim_value)
    raise ModelError("recognition model does not declare its number of classes")
