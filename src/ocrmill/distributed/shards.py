"""The shards of a sharded Ray run: where each chunk's records go, and the manifest that says
a shard is complete and what it holds (pure: no Ray here).

``OUT/shards/SSSS-PPPPPP/CCCCCCCC.jsonl`` holds the records of chunk ``SSSS-PPPPPP-CCCCCCCC``
(see :mod:`ocrmill.distributed.listing`), one JSON line each, exactly as ``ocrmill run``
writes them; ``CCCCCCCC.json`` beside it is its manifest. A chunk read again loses its
manifest first; its shard is written under a temporary name and renamed, then the manifest
is written (also atomically): a manifest names a complete shard, and a chunk without one is
read again on resume. ``OUT/plan.json`` holds what the chunks were made from (the inputs as
given and the shard size), which a resumed run must repeat; ``OUT/run.json`` sums up the
last run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ocrmill.atomic import write_text_atomically
from ocrmill.errors import is_transient

DEFAULT_CHUNK_SIZE = 256  # inputs per chunk, and so per shard
SHARDS = "shards"
RUN_SUMMARY = "run.json"
PLAN = "plan.json"
MANIFEST_VERSION = 2


def shard_path(out_dir: str | os.PathLike[str], chunk_id: str) -> Path:
    """The JSONL shard of chunk ``chunk_id`` (``SSSS-PPPPPP-CCCCCCCC``)."""
    unit, _, number = chunk_id.rpartition("-")
    return Path(out_dir) / SHARDS / unit / f"{number}.jsonl"


def manifest_path(shard: Path) -> Path:
    return shard.with_suffix(".json")


def temporary_files(shard: Path) -> list[Path]:
    """What tries to write ``shard`` that died left: its temporary file, the one a resumed
    try's rewrite made of that, and its manifest's (a try killed while it sealed the
    shard)."""
    folder, name = shard.parent, shard.name
    return [
        *folder.glob(f".{name}.*.tmp"),
        *folder.glob(f"..{name}.*.tmp.*.tmp"),
        *folder.glob(f".{manifest_path(shard).name}.*.tmp"),
    ]


def drop_chunks_from(out_dir: str | os.PathLike[str], unit_label: str, count: int) -> int:
    """Remove the shards, manifests and temporary files of unit ``unit_label``'s chunks
    numbered ``count`` and above: a listing that now makes fewer chunks leaves none of its
    old records behind. Returns how many files went."""
    folder = Path(out_dir) / SHARDS / unit_label
    if not folder.is_dir():
        return 0
    dropped = 0
    for path in folder.iterdir():
        number = path.name.lstrip(".").split(".", 1)[0]
        if number.isdigit() and int(number) >= count:
            path.unlink(missing_ok=True)
            dropped += 1
    return dropped


def drop_units_except(out_dir: str | os.PathLike[str], labels: Iterable[str]) -> int:
    """Remove the shard folders of units the plan no longer has (a list file that
    shrank); returns how many folders went."""
    import shutil

    root = Path(out_dir) / SHARDS
    keep = set(labels)
    if not root.is_dir():
        return 0
    dropped = 0
    for folder in root.iterdir():
        if folder.is_dir() and folder.name not in keep:
            shutil.rmtree(folder)
            dropped += 1
    return dropped


def check_plan(out_dir: str | os.PathLike[str], plan: Mapping[str, object], resume: bool) -> None:
    """Write ``plan`` (inputs as given, shard size) to ``OUT/plan.json``, or, resuming,
    check that it is the plan the shards were made with: chunk ids follow from it, so a
    resume with other inputs or another shard size would leave old shards beside new ones.
    Raises :class:`~ocrmill.errors.ConfigError` naming the difference."""
    from ocrmill.errors import ConfigError

    path = Path(out_dir) / PLAN
    wanted = json.loads(json.dumps(dict(plan)))  # as it reads back
    if resume and path.exists():
        try:
            held = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            held = None
        if held != wanted:
            raise ConfigError(
                f"{out_dir} was written with {_plan_text(held)}; resume it with the same "
                f"inputs and --shard-size (asked: {_plan_text(wanted)})"
            )
        return
    write_text_atomically(path, json.dumps(wanted, indent=1, sort_keys=True) + "\n")


def _plan_text(plan: object) -> str:
    if not isinstance(plan, dict):
        return "an unreadable plan.json"
    inputs = " ".join(str(i) for i in plan.get("inputs", []))
    return f"inputs {inputs!r} and --shard-size {plan.get('shard_size')}"


@dataclass(frozen=True)
class Manifest:
    """What a complete shard holds: the chunk it was made from (``digest`` of its input
    names, see :meth:`~ocrmill.distributed.listing.Chunk.digest`), how many inputs and
    records, and its failures by error code."""

    chunk: str
    digest: str
    inputs: int
    records: int
    failed: dict[str, int] = field(default_factory=dict)
    documents: dict[str, str] = field(default_factory=dict)  # format -> folder written
    version: int = MANIFEST_VERSION

    def holds(self, digest: str, documents: Mapping[str, str], *, retry_failed: bool) -> bool:
        """Is the chunk with ``digest`` done for good: made from the same listing, its
        documents written into the same folders, and no failure left to read again
        (transient ones; every one with ``retry_failed``)?"""
        if digest != self.digest or self.version != MANIFEST_VERSION:
            return False
        if dict(documents) != self.documents:
            return False
        return not any(retry_failed or is_transient(code) for code in self.failed)


def read_manifest(path: Path) -> Manifest | None:
    """The manifest at ``path``; None when it is missing or not one (the shard is redone)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Manifest(**data)
    except (OSError, ValueError, TypeError):
        return None


def write_manifest(path: Path, manifest: Manifest) -> None:
    write_text_atomically(path, json.dumps(asdict(manifest), sort_keys=True) + "\n")


def shards(out_dir: str | os.PathLike[str]) -> Iterator[Path]:
    """Every complete shard in ``out_dir`` (one with a manifest), in chunk order."""
    root = Path(out_dir) / SHARDS
    if not root.is_dir():
        return
    for unit in sorted(p for p in root.iterdir() if p.is_dir()):
        for manifest in sorted(unit.glob("*.json")):
            shard = manifest.with_suffix(".jsonl")
            if shard.exists():
                yield shard


def has_shards(out_dir: str | os.PathLike[str]) -> bool:
    """Does ``out_dir`` hold anything of an earlier sharded run?"""
    root = Path(out_dir) / SHARDS
    return root.is_dir() and any(root.iterdir())


def write_run_summary(out_dir: str | os.PathLike[str], summary: Mapping[str, object]) -> None:
    text = json.dumps(dict(summary), indent=1, sort_keys=True) + "\n"
    write_text_atomically(Path(out_dir) / RUN_SUMMARY, text)
