"""The shards of a sharded Ray run: where each chunk's records go, and the manifest that says
a shard is complete and what it holds (pure: no Ray here).

``OUT/shards/SSSS-PPPPPP/CCCCCC.jsonl`` holds the records of chunk ``SSSS-PPPPPP-CCCCCC`` (see
:mod:`ocrmill.distributed.listing`), one JSON line each, exactly as ``ocrmill run`` writes
them; ``CCCCCC.json`` beside it is its manifest. A shard is written under a temporary name
and renamed, then its manifest is written (also atomically): a manifest names a complete
shard, and a shard without one is read again on resume. ``OUT/run.json`` sums up the last
run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ocrmill.atomic import write_text_atomically
from ocrmill.errors import is_transient

DEFAULT_CHUNK_SIZE = 256  # inputs per chunk, and so per shard
SHARDS = "shards"
RUN_SUMMARY = "run.json"
MANIFEST_VERSION = 1


def shard_path(out_dir: str | os.PathLike[str], chunk_id: str) -> Path:
    """The JSONL shard of chunk ``chunk_id`` (``SSSS-PPPPPP-CCCCCC``)."""
    unit, _, number = chunk_id.rpartition("-")
    return Path(out_dir) / SHARDS / unit / f"{number}.jsonl"


def manifest_path(shard: Path) -> Path:
    return shard.with_suffix(".json")


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
    version: int = MANIFEST_VERSION

    def holds(self, digest: str, *, retry_failed: bool) -> bool:
        """Is the chunk with ``digest`` done for good: made from the same listing, and no
        failure left to read again (transient ones; every one with ``retry_failed``)?"""
        if digest != self.digest or self.version != MANIFEST_VERSION:
            return False
        return not any(retry_failed or is_transient(code) for code in self.failed)

    def kept_failures(self) -> dict[str, int]:
        """The failures this shard keeps when its chunk is skipped."""
        return dict(self.failed)


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
    root = Path(out_dir) / SHARDS
    return root.is_dir() and any(root.iterdir())


def write_run_summary(out_dir: str | os.PathLike[str], summary: Mapping[str, object]) -> None:
    text = json.dumps(dict(summary), indent=1, sort_keys=True) + "\n"
    write_text_atomically(Path(out_dir) / RUN_SUMMARY, text)
